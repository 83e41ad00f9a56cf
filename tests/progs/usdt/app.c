/* A program with USDT probes (sys/sdt.h) for tests/test_usdt.py: it waits for a line on
 * stdin (the test attaches meanwhile), prints whether the semaphores are set, fires every
 * probe once and exits. Built by the test (gcc); `make -C tests/progs/usdt` builds it too. */
#include <stdint.h>
#include <stdio.h>
#include <sys/sdt.h>

int sema_active(void);
void fire_sema(const char *s, int v);
int lib_sema_active(void);
void lib_fire(const char *s, int v, unsigned long long u);
void lib_fire_sema(const char *s, short v);

__attribute__((noinline)) void fire(const char *s, int8_t a, uint16_t b, int32_t c, int64_t d)
{
	STAP_PROBE6(corebpf_test, args, s, a, b, c, d, 42);
}

int main(void)
{
	char line[16];

	printf("ready %d %d\n", sema_active(), lib_sema_active());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	printf("%d %d\n", sema_active(), lib_sema_active());
	fflush(stdout);
	fire("hello", -5, 65000, -123456, -1234567890123LL);
	fire_sema("sema", -77);
	lib_fire("lib", -99, 0xfedcba9876543210ULL);
	lib_fire_sema("libsema", -300);
	return 0;
}
