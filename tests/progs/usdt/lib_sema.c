/* A probe with a semaphore in a shared library. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

__extension__ unsigned short corebpf_lib_libsema_semaphore
	__attribute__((unused)) __attribute__((section(".probes")));

int lib_sema_active(void)
{
	return *(volatile unsigned short *)&corebpf_lib_libsema_semaphore;
}

__attribute__((noinline)) void lib_fire_sema(const char *s, short v)
{
	if (lib_sema_active())
		STAP_PROBE2(corebpf_lib, libsema, s, v);
}
