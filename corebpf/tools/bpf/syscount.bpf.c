/* syscount: system calls counted (and, with measure_latency, timed) per syscall number
 * or per process, in `data`. raw_syscalls tracepoints (4.7+ for BPF) see every syscall
 * of every architecture's table without one program per call. User space attaches
 * sys_enter_tp only with -L (it only feeds latencies), reads and clears `data` each
 * interval, and names the numbers itself.
 * Options as libbpf-tools' syscount: filter_pid (-p), filter_failed (-x), filter_errno
 * (-e, positive errno), measure_latency (-L), count_by_process (-P), filter_cg (-c: the
 * cgroup's fd in cgroup_map[0]). */
#include "common.bpf.h"

#define MAX_ENTRIES 8192

struct task_struct {
	struct task_struct *group_leader;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_enter {
	long id;
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_exit {
	long id;
	long ret;
} __attribute__((preserve_access_index));

/* comm: the process's (group leader's) name, kept only with count_by_process. */
struct data_t {
	__u64 count;
	__u64 total_ns;
	char comm[TASK_COMM_LEN];
};

const volatile bool count_by_process = false;
const volatile bool measure_latency = false;
const volatile bool filter_failed = false;
const volatile int filter_errno = 0;
const volatile __u32 filter_pid = 0;

COREBPF_CGROUP_FILTER;

/* When each thread (by tid) entered its current syscall, in ns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

/* Counts by syscall number, or by tgid with count_by_process. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct data_t);
} data SEC(".maps");

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter_tp(struct trace_event_raw_sys_enter *args)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	__u64 ts;

	if (!in_target_cgroup())
		return 0;
	if (filter_pid && (id >> 32) != filter_pid)
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sys_exit_tp(struct trace_event_raw_sys_exit *args)
{
	static const struct data_t zero;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id, key;
	long nr = args->id, ret = args->ret;
	__u64 *start_ts, lat = 0;
	struct data_t *val;

	if (!in_target_cgroup())
		return 0;
	/* -1: not a syscall (e.g. the exit of a signal's restart) */
	if (nr == -1)
		return 0;
	if (filter_pid && pid != filter_pid)
		return 0;
	if (filter_failed && ret >= 0)
		return 0;
	if (filter_errno && ret != -filter_errno)
		return 0;
	if (measure_latency) {
		start_ts = bpf_map_lookup_elem(&start, &tid);
		if (!start_ts)
			return 0;
		lat = bpf_ktime_get_ns() - *start_ts;
	}

	key = count_by_process ? pid : (__u32)nr;
	val = bpf_map_lookup_elem(&data, &key);
	if (!val) {
		bpf_map_update_elem(&data, &key, &zero, BPF_NOEXIST);
		val = bpf_map_lookup_elem(&data, &key);
		if (!val)
			return 0;
	}
	__sync_fetch_and_add(&val->count, 1);
	if (count_by_process) {
		struct task_struct *task = (void *)bpf_get_current_task();

		BPF_CORE_READ_STR_INTO(&val->comm, task, group_leader, comm);
	}
	if (measure_latency)
		__sync_fetch_and_add(&val->total_ns, lat);
	return 0;
}
