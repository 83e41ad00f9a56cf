/* libbpf's side of bench_loader.py: a C skeleton (bpftool gen skeleton of the same
 * object) that opens, loads, attaches and destroys it, like a libbpf-tools start-up. */
#include <stdio.h>
#include "skel.h"

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
	execsnoop_bpf__destroy(skel);
	return 0;
}
