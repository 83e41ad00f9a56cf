/* libbpf's side of bench_btf.py: parse a BTF file and find one type, N times; prints the
 * median and minimum wall time in milliseconds. Build: cc -O2 btf_open.c -lbpf */
#include <bpf/btf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "/sys/kernel/btf/vmlinux";
	const char *name = argc > 2 ? argv[2] : "task_struct";
	int runs = argc > 3 ? atoi(argv[3]) : 21;
	double *t = calloc(runs, sizeof(*t));
	int i, id = -1;

	for (i = 0; i < runs; i++) {
		double start = now_ms();
		struct btf *btf = btf__parse(path, NULL);

		if (!btf) {
			perror("btf__parse");
			return 1;
		}
		id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
		t[i] = now_ms() - start;
		btf__free(btf);
	}
	qsort(t, runs, sizeof(*t), cmp);
	printf("%d %.3f %.3f\n", id, t[runs / 2], t[0]);
	return 0;
}
