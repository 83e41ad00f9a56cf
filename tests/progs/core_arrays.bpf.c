/* CO-RE accesses through arrays: a flexible array (cgroup.ancestors), a multi-dimensional
 * local array, a pointer used as an array, and enum64 values (perf_callchain_context). */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct cgroup {
	int level;
	struct cgroup *ancestors[];
} __attribute__((preserve_access_index));

struct kernel_cpustat {
	unsigned long long cpustat[10];
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	unsigned long long utime;
} __attribute__((preserve_access_index));

struct grid___local {
	int cell[3][4];
} __attribute__((preserve_access_index));

enum perf_callchain_context : unsigned long long {
	PERF_CONTEXT_HV = 0xffffffffffffffe0ULL,
	PERF_CONTEXT_USER = 0xfffffffffffffe00ULL,
};

__u64 out[16];

SEC("raw_tp/sys_enter")
int arrays(void *ctx)
{
	struct cgroup *cg = (void *)ctx;
	struct kernel_cpustat *ks = (void *)ctx;
	struct task_struct *tasks = (void *)ctx;
	struct grid___local *g = (void *)ctx;

	out[0] = bpf_core_field_offset(cg->ancestors[2]);
	out[1] = bpf_core_field_size(cg->ancestors[0]);
	out[2] = bpf_core_field_offset(ks->cpustat[7]);
	out[3] = bpf_core_field_offset(tasks[3].utime);
	out[4] = bpf_core_field_offset(g->cell[2][1]);
	out[5] = bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_HV);
	out[6] = bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_USER);
	out[7] = bpf_core_enum_value_exists(enum perf_callchain_context, PERF_CONTEXT_USER);
	out[8] = bpf_core_field_exists(cg->ancestors);
	out[9] = BPF_CORE_READ(cg, level);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
