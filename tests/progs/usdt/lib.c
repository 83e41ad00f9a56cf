/* Probes in a shared library (libusdtlib.so), without a semaphore. */
#include <sys/sdt.h>

__attribute__((noinline)) void lib_fire(const char *s, int v, unsigned long long u)
{
	STAP_PROBE3(corebpf_lib, libargs, s, v, u);
}
