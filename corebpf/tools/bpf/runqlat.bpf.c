/* runqlat: run queue latency, the time from a task's wakeup (or its preemption while
 * still runnable) to it running again, as log2 histograms in `hists`.
 * Two sets of programs on the same scheduler tracepoints; user space loads one:
 *   *_btf: tp_btf (5.5+, BTF-typed arguments),
 *   *_raw: raw_tp (4.17+), the fallback where tp_btf is missing.
 * Options as libbpf-tools' runqlat: targ_ms (-m), targ_per_process (-P),
 * targ_per_thread (-L), targ_per_pidns (--pidnss), targ_tgid (-p), filter_cg (-c: the
 * cgroup's fd goes in cgroup_map[0]). */
#include "common.bpf.h"

#define MAX_ENTRIES 10240
#define TASK_RUNNING 0
/* libbpf-tools' runqlat keeps 26 slots (not MAX_SLOTS): latencies past the last one
 * are counted in it. */
#define RUNQLAT_SLOTS 26

struct pid_namespace;

struct upid {
	int nr;
	struct pid_namespace *ns;
} __attribute__((preserve_access_index));

struct pid {
	unsigned int level;
	struct upid numbers[1];
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct pid_namespace {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	char comm[TASK_COMM_LEN];
	struct pid *thread_pid;
} __attribute__((preserve_access_index));

/* task_struct::state became ::__state in 5.14. */
struct task_struct___o {
	volatile long state;
} __attribute__((preserve_access_index));

struct task_struct___x {
	unsigned int __state;
} __attribute__((preserve_access_index));

/* One histogram; comm is the first task counted in it. */
struct hist {
	__u32 slots[RUNQLAT_SLOTS];
	char comm[TASK_COMM_LEN];
};

const volatile bool targ_per_process = false;
const volatile bool targ_per_thread = false;
const volatile bool targ_per_pidns = false;
const volatile bool targ_ms = false;
const volatile __u32 targ_tgid = 0;

COREBPF_CGROUP_FILTER;

/* When each thread (by tid) became runnable, in ns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

/* Histograms by tgid (-P), tid (-L), pid namespace inode (--pidnss), else one under
 * key 0xffffffff. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

static __always_inline long task_state(struct task_struct *t)
{
	struct task_struct___x *x = (void *)t;

	if (bpf_core_field_exists(x->__state))
		return BPF_CORE_READ(x, __state);
	return BPF_CORE_READ((struct task_struct___o *)t, state);
}

static __always_inline bool cgroup_wanted(void)
{
	return in_target_cgroup();
}

static __always_inline int enqueue(__u32 tgid, __u32 tid)
{
	__u64 ts;

	if (!tid)
		return 0;
	if (targ_tgid && targ_tgid != tgid)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

static __always_inline __u32 pidns_inum(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid;

	bpf_core_read(&upid, sizeof(upid), &pid->numbers[level]);
	return BPF_CORE_READ(upid.ns, ns.inum);
}

static __always_inline int wakeup(struct task_struct *p)
{
	if (!cgroup_wanted())
		return 0;
	return enqueue(BPF_CORE_READ(p, tgid), BPF_CORE_READ(p, pid));
}

static __always_inline int switched(struct task_struct *prev, struct task_struct *next)
{
	static const struct hist zero;
	struct hist *histp;
	__u32 tid, key;
	__u64 *tsp, slot;
	__s64 delta;

	if (!cgroup_wanted())
		return 0;
	/* preempted while runnable: back in the queue from now */
	if (task_state(prev) == TASK_RUNNING)
		enqueue(BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, pid));

	tid = BPF_CORE_READ(next, pid);
	tsp = bpf_map_lookup_elem(&start, &tid);
	if (!tsp)
		return 0;
	delta = bpf_ktime_get_ns() - *tsp;
	if (delta < 0)
		goto cleanup;

	if (targ_per_process)
		key = BPF_CORE_READ(next, tgid);
	else if (targ_per_thread)
		key = tid;
	else if (targ_per_pidns)
		key = pidns_inum(next);
	else
		key = (__u32)-1;
	histp = bpf_map_lookup_elem(&hists, &key);
	if (!histp) {
		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		histp = bpf_map_lookup_elem(&hists, &key);
		if (!histp)
			goto cleanup;
	}
	if (!histp->comm[0])
		BPF_CORE_READ_STR_INTO(&histp->comm, next, comm);
	slot = log2_u64((__u64)delta / (targ_ms ? 1000000U : 1000U));
	if (slot >= RUNQLAT_SLOTS)
		slot = RUNQLAT_SLOTS - 1;
	__sync_fetch_and_add(&histp->slots[slot], 1);

cleanup:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup_btf, struct task_struct *p)
{
	return wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_btf, struct task_struct *p)
{
	return wakeup(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(prev, next);
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(sched_wakeup_raw, struct task_struct *p)
{
	return wakeup(p);
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new_raw, struct task_struct *p)
{
	return wakeup(p);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return switched(prev, next);
}
