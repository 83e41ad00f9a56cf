/* An object built from the tools' shared header (corebpf/tools/bpf/common.bpf.h): its
 * `events` map is a ring buffer, or a perf event array once user space changes its type
 * and clears the frozen .rodata flag use_ringbuf (the verifier prunes the other branch). */
#include "../../corebpf/tools/bpf/common.bpf.h"

struct event {
	__u32 pid;
	__u32 seq;
	char comm[TASK_COMM_LEN];
};

COREBPF_EVENTS_MAP(struct event);

const volatile __u32 target_pid = 0;
__u32 seq = 0;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct event e = {};

	e.pid = bpf_get_current_pid_tgid() >> 32;
	if (e.pid != target_pid)
		return 0;
	e.seq = seq++;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	submit_event(ctx, &e, sizeof(e));
	return 0;
}
