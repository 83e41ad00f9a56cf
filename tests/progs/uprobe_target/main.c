/* The program tests/test_uprobe.py probes: it waits for a line on stdin (the test
 * attaches meanwhile), then calls target_func(), which the uprobes read. Built by the
 * test with gcc as PIE and non-PIE; `make -C tests/progs/uprobe_target` builds it too. */
#include <stdio.h>

long twin_a(void);
long twin_b(void);
long weak_or_local_b(void);

__attribute__((noinline)) long target_func(long x)
{
	return x * 2 + 1;
}

/* a static function whose name other.c also uses: ambiguous in .symtab */
static __attribute__((noinline)) long twin(void)
{
	return 1;
}

long twin_a(void)
{
	return twin();
}

/* local here, weak in other.c: the local (non-weak) one is the match */
static __attribute__((noinline)) long weak_or_local(void)
{
	return 3;
}

int main(void)
{
	char line[16];

	printf("ready\n");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	printf("%ld\n", target_func(20) + twin_a() + twin_b() + weak_or_local() +
	       weak_or_local_b());
	return 0;
}
