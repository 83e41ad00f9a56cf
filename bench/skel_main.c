/* libbpf's side of bench_loader.py: a C skeleton (bpftool gen skeleton of the same
 * object) that opens, loads, attaches and destroys it, like a libbpf-tools start-up.
 * On stderr, CLOCK_MONOTONIC once attached and once destroyed (the bench splits the
 * process's wall time at those points). */
#include <stdio.h>
#include <time.h>
#include "skel.h"

static void stamp(const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	fprintf(stderr, "%s %lld.%09ld\n", what, (long long)ts.tv_sec, ts.tv_nsec);
}

int main(void)
{
	struct execsnoop_bpf *skel = execsnoop_bpf__open();

	if (!skel) {
		perror("open");
		return 1;
	}
	if (execsnoop_bpf__load(skel)) {
		fprintf(stderr, "load failed\n");
		return 1;
	}
	if (execsnoop_bpf__attach(skel)) {
		fprintf(stderr, "attach failed\n");
		return 1;
	}
	stamp("attached");
	execsnoop_bpf__destroy(skel);
	stamp("closed");
	return 0;
}
