/* exitsnoop: every process (or, with trace_by_process off, thread) that exits, with
 * its exit code or killing signal and its age. sched:sched_process_exit runs in the
 * exiting task after do_exit() has stored task->exit_code, so the task's own
 * fields are read there. Our own code; the facts follow libbpf-tools. */
#include "common.bpf.h"

struct task_struct {
	int tgid;
	int exit_code;
	__u64 start_time;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

/* exit_code is the status' high byte (exit(2) argument), sig its low byte: the
 * signal number in bits 0-6, 0x80 when a core was dumped. Age is
 * exit_time - start_time (both CLOCK_MONOTONIC ns). */
struct event {
	__u64 start_time;
	__u64 exit_time;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 sig;
	__s32 exit_code;
	char comm[TASK_COMM_LEN];
};

const volatile __s32 target_pid = 0;
const volatile bool trace_failed_only = false;
const volatile bool trace_by_process = true;

COREBPF_CGROUP_FILTER;

COREBPF_EVENTS_MAP(struct event);

SEC("tracepoint/sched/sched_process_exit")
int sched_process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	struct task_struct *task;
	struct event e = {};
	int exit_code;

	if (!in_target_cgroup())
		return 0;
	if (target_pid && target_pid != pid)
		return 0;
	if (trace_by_process && pid != tid)
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	exit_code = BPF_CORE_READ(task, exit_code);
	if (trace_failed_only && exit_code == 0)
		return 0;

	e.start_time = BPF_CORE_READ(task, start_time);
	e.exit_time = bpf_ktime_get_ns();
	e.pid = pid;
	e.tid = tid;
	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	e.sig = exit_code & 0xff;
	e.exit_code = exit_code >> 8;
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	submit_event(ctx, &e, sizeof(e));
	return 0;
}
