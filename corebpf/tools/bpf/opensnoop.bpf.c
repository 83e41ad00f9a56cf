/* opensnoop: open(), openat() and openat2() with their result. The entry tracepoint
 * keeps the path pointer and flags by thread id; the exit tracepoint reads the path
 * (user memory still mapped then) and sends the event. Our own code; the facts
 * (filters, field set) follow libbpf-tools. */
#include "common.bpf.h"

#define NAME_MAX 255
#define INVALID_UID ((__u32)-1)

#ifndef O_CREAT
#define O_CREAT 00000100
#endif
#ifndef O_TMPFILE
#define O_TMPFILE 020200000
#endif

struct trace_event_raw_sys_enter {
	long id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_exit {
	long id;
	long ret;
} __attribute__((preserve_access_index));

/* openat2's third argument (user memory), as the uapi defines it */
struct open_how_user {
	__u64 flags;
	__u64 mode;
	__u64 resolve;
};

struct args_t {
	const char *fname;
	__s32 flags;
	__u32 mode;
};

/* ret is the fd, or -errno; mode only when flags create a file (O_CREAT, O_TMPFILE) */
struct event {
	__s32 pid;
	__s32 tid;
	__u32 uid;
	__s32 ret;
	__s32 flags;
	__u32 mode;
	char comm[TASK_COMM_LEN];
	char fname[NAME_MAX];
};

const volatile __s32 targ_pid = 0;	/* thread id (-t) */
const volatile __s32 targ_tgid = 0;	/* process id (-p) */
const volatile __u32 targ_uid = INVALID_UID;
const volatile bool targ_failed = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct args_t);
} start SEC(".maps");

COREBPF_EVENTS_MAP(struct event);
COREBPF_HEAP_MAP(struct event);

static __always_inline bool trace_allowed(__u32 tgid, __u32 pid)
{
	if (targ_tgid && targ_tgid != tgid)
		return false;
	if (targ_pid && targ_pid != pid)
		return false;
	if (targ_uid != INVALID_UID && targ_uid != (__u32)bpf_get_current_uid_gid())
		return false;
	return true;
}

static __always_inline int trace_enter(const char *fname, int flags, __u32 mode)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, pid = (__u32)id;
	struct args_t args = {};

	if (!trace_allowed(tgid, pid))
		return 0;
	args.fname = fname;
	args.flags = flags;
	args.mode = mode;
	bpf_map_update_elem(&start, &pid, &args, BPF_ANY);
	return 0;
}

static __always_inline int trace_exit(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = (__u32)id, zero = 0;
	struct args_t *ap;
	struct event *e;

	ap = bpf_map_lookup_elem(&start, &pid);
	if (!ap)
		return 0;	/* entry not seen (or filtered out) */
	if (targ_failed && ret >= 0)
		goto cleanup;
	e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		goto cleanup;
	e->pid = id >> 32;
	e->tid = pid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ret = ret;
	e->flags = ap->flags;
	if ((ap->flags & O_CREAT) || (ap->flags & O_TMPFILE) == O_TMPFILE)
		e->mode = ap->mode;
	else
		e->mode = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	if (bpf_probe_read_user_str(&e->fname, sizeof(e->fname), ap->fname) < 0)
		e->fname[0] = '\0';
	submit_event(ctx, e, sizeof(*e));
cleanup:
	bpf_map_delete_elem(&start, &pid);
	return 0;
}

/* open(2) exists on x86 but not on arm64/riscv: user space disables this pair when
 * syscalls/sys_enter_open is not a tracepoint of the running kernel */
SEC("tracepoint/syscalls/sys_enter_open")
int tracepoint__syscalls__sys_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return trace_enter((const char *)ctx->args[0], (int)ctx->args[1], (__u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int tracepoint__syscalls__sys_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return trace_exit(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int tracepoint__syscalls__sys_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return trace_enter((const char *)ctx->args[1], (int)ctx->args[2], (__u32)ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int tracepoint__syscalls__sys_exit_openat(struct trace_event_raw_sys_exit *ctx)
{
	return trace_exit(ctx, ctx->ret);
}

/* openat2(2) is 5.6+: user space disables this pair when syscalls/sys_enter_openat2
 * is missing */
SEC("tracepoint/syscalls/sys_enter_openat2")
int tracepoint__syscalls__sys_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how_user how = {};

	bpf_probe_read_user(&how, sizeof(how), (const void *)ctx->args[2]);
	return trace_enter((const char *)ctx->args[1], (int)how.flags, (__u32)how.mode);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int tracepoint__syscalls__sys_exit_openat2(struct trace_event_raw_sys_exit *ctx)
{
	return trace_exit(ctx, ctx->ret);
}
