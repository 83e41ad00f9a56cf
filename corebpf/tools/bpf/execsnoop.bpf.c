/* execsnoop: every execve() with its parent, uid, return value and argv (up to
 * max_args arguments of ARGSIZE bytes each, NUL-separated in args[]). The event is
 * started at sys_enter_execve (argv is readable there only) and sent at
 * sys_exit_execve, once the result and the new comm are known. Our own code; the
 * facts (limits, filters, the "one more argument" marker) follow libbpf-tools. */
#include "common.bpf.h"

#define ARGSIZE 128
#define TOTAL_MAX_ARGS 60
#define DEFAULT_MAXARGS 20
#define FULL_MAX_ARGS_ARR (TOTAL_MAX_ARGS * ARGSIZE)
#define LAST_ARG (FULL_MAX_ARGS_ARR - ARGSIZE)
#define INVALID_UID ((__u32)-1)

struct task_struct {
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_enter {
	long id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_exit {
	long id;
	long ret;
} __attribute__((preserve_access_index));

/* args_count is max_args + 1 when argv had more than max_args entries (the C tool
 * prints " ..." then); only the first args_size bytes of args[] are sent. */
struct event {
	__s32 pid;
	__s32 ppid;
	__u32 uid;
	__s32 retval;
	__s32 args_count;
	__u32 args_size;
	char comm[TASK_COMM_LEN];
	char args[FULL_MAX_ARGS_ARR];
};

#define BASE_EVENT_SIZE ((__u64)__builtin_offsetof(struct event, args))

const volatile bool ignore_failed = true;
const volatile __u32 targ_uid = INVALID_UID;
const volatile int max_args = DEFAULT_MAXARGS;

COREBPF_CGROUP_FILTER;

/* exec in flight, by thread id: enter fills it, exit sends and deletes it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __s32);
	__type(value, struct event);
} execs SEC(".maps");

COREBPF_EVENTS_MAP(struct event);
/* the source an execs entry is created from (a hash update copies a whole value) */
COREBPF_HEAP_MAP(struct event);

static __always_inline bool traced(__u32 uid)
{
	if (!in_target_cgroup())
		return false;
	return targ_uid == INVALID_UID || targ_uid == uid;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int tracepoint__syscalls__sys_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	const char *const *argv = (const char *const *)ctx->args[1];
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__u64 id = bpf_get_current_pid_tgid();
	__s32 tid = (__s32)id;
	struct task_struct *task;
	struct event *e;
	const char *argp;
	__u32 size, zero = 0;
	long ret;
	int i;

	if (!traced(uid))
		return 0;
	e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		return 0;
	e->args_count = 0;
	e->args_size = 0;
	if (bpf_map_update_elem(&execs, &tid, e, BPF_NOEXIST))
		return 0;
	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return 0;

	task = (struct task_struct *)bpf_get_current_task();
	e->pid = id >> 32;
	e->uid = uid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->retval = 0;

	/* argv[0] as the file name the caller passed; an unreadable one is "" */
	ret = bpf_probe_read_user_str(e->args, ARGSIZE, (const char *)ctx->args[0]);
	if (ret > 0 && ret <= ARGSIZE) {
		size = ret;
	} else {
		e->args[0] = '\0';
		size = 1;
	}
	e->args_count = 1;
	e->args_size = size;

	/* unrolled: kernels before 5.3 have no bounded loops */
#pragma unroll
	for (i = 1; i < TOTAL_MAX_ARGS && i < max_args; i++) {
		if (bpf_probe_read_user(&argp, sizeof(argp), &argv[i]) || !argp)
			return 0;
		if (size > LAST_ARG)
			return 0;
		ret = bpf_probe_read_user_str(&e->args[size], ARGSIZE, argp);
		if (ret < 0 || ret > ARGSIZE)
			return 0;
		size += ret;
		e->args_count++;
		e->args_size = size;
	}
	/* a non-NULL argv[max_args]: there were more, which the C tool marks with " ..." */
	if (bpf_probe_read_user(&argp, sizeof(argp), &argv[max_args]) || !argp)
		return 0;
	e->args_count++;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tracepoint__syscalls__sys_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	__u32 uid = (__u32)bpf_get_current_uid_gid();
	__s32 tid = (__s32)bpf_get_current_pid_tgid();
	struct event *e;
	__u64 len;
	int ret;

	if (!traced(uid))
		return 0;
	e = bpf_map_lookup_elem(&execs, &tid);
	if (!e)
		return 0;
	ret = ctx->ret;
	if (ignore_failed && ret < 0)
		goto cleanup;
	e->retval = ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	len = BASE_EVENT_SIZE + e->args_size;
	if (len <= sizeof(*e))
		submit_event(ctx, e, len);
cleanup:
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}
