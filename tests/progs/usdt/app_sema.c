/* A probe with a semaphore: it fires only while a tracer (the kernel's ref_ctr_offset
 * counting) has set corebpf_test_sema_semaphore. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

__extension__ unsigned short corebpf_test_sema_semaphore
	__attribute__((unused)) __attribute__((section(".probes")));

int sema_active(void)
{
	return *(volatile unsigned short *)&corebpf_test_sema_semaphore;
}

__attribute__((noinline)) void fire_sema(const char *s, int v)
{
	if (sema_active())
		STAP_PROBE2(corebpf_test, sema, s, v);
}
