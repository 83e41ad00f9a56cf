/* An execsnoop-sized tool: every execve as a ring buffer event, with CO-RE reads of the
 * parent's tgid and the task's comm; filters set through read-only globals. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define MAX_FILENAME 128

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	char comm[TASK_COMM_LEN];
	unsigned int flags;
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_enter {
	long int id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

struct event {
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	__s32 retval;
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME];
};

/* puts struct event in the object's BTF, so that readers (corebpf run) can decode records */
const struct event *unused_event __attribute__((unused));

const volatile __u32 target_uid = (__u32)-1;
const volatile int ignore_failed = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} execs_by_uid SEC(".maps");

__u64 total_events = 0;
__u64 dropped = 0;

SEC("tp/syscalls/sys_enter_execve")
int tracepoint__syscalls__sys_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	struct event *e;
	__u64 one = 1, *n;

	if (target_uid != (__u32)-1 && uid != target_uid)
		return 0;
	n = bpf_map_lookup_elem(&execs_by_uid, &uid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&execs_by_uid, &uid, &one, BPF_ANY);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = uid;
	e->retval = 0;
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
	bpf_probe_read_user_str(e->filename, sizeof(e->filename), (const char *)ctx->args[0]);
	__sync_fetch_and_add(&total_events, 1);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
