/* sigsnoop: signals as they are generated (signal:signal_generate, every sender:
 * kernel, kill(2), raise, timers...) or, for the kill-only mode, the kill(2),
 * tkill(2) and tgkill(2) syscalls with their results. Our own code; the facts
 * follow libbpf-tools. */
#include "common.bpf.h"

#define MAX_ENTRIES 10240

struct trace_event_raw_sys_enter {
	long id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_exit {
	long id;
	long ret;
} __attribute__((preserve_access_index));

struct trace_event_raw_signal_generate {
	int sig;
	int errno;
	int code;
	int pid;
	int group;
	int result;
} __attribute__((preserve_access_index));

/* pid is the sender (current process), tpid the target; ret is the syscall's result
 * (kill-only mode) or the tracepoint's errno field (signal_generate) */
struct event {
	__u32 pid;
	__s32 tpid;
	__s32 sig;
	__s32 ret;
	char comm[TASK_COMM_LEN];
};

const volatile __s32 filtered_pid = 0;
const volatile __s32 target_signal = 0;
const volatile bool failed_only = false;

/* syscall in flight, by thread id */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct event);
} values SEC(".maps");

COREBPF_EVENTS_MAP(struct event);

static __always_inline int probe_entry(__s32 tpid, int sig)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	struct event e = {};

	if (target_signal && sig != target_signal)
		return 0;
	if (filtered_pid && pid != filtered_pid)
		return 0;
	e.pid = pid;
	e.tpid = tpid;
	e.sig = sig;
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	bpf_map_update_elem(&values, &tid, &e, BPF_ANY);
	return 0;
}

static __always_inline int probe_exit(void *ctx, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct event *e;

	e = bpf_map_lookup_elem(&values, &tid);
	if (!e)
		return 0;
	if (failed_only && ret >= 0)
		goto cleanup;
	e->ret = ret;
	submit_event(ctx, e, sizeof(*e));
cleanup:
	bpf_map_delete_elem(&values, &tid);
	return 0;
}

/* kill-only mode (-k): these six; otherwise only sig_trace. User space disables the
 * other set. */
SEC("tracepoint/syscalls/sys_enter_kill")
int kill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return probe_entry((__s32)ctx->args[0], (int)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int tkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return probe_entry((__s32)ctx->args[0], (int)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int tkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit(ctx, ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int tgkill_entry(struct trace_event_raw_sys_enter *ctx)
{
	return probe_entry((__s32)ctx->args[1], (int)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int tgkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return probe_exit(ctx, ctx->ret);
}

SEC("tracepoint/signal/signal_generate")
int sig_trace(struct trace_event_raw_signal_generate *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	int ret = ctx->errno;
	int sig = ctx->sig;
	struct event e = {};

	if (failed_only && ret == 0)
		return 0;
	if (target_signal && sig != target_signal)
		return 0;
	if (filtered_pid && pid != filtered_pid)
		return 0;
	e.pid = pid;
	e.tpid = ctx->pid;
	e.sig = sig;
	e.ret = ret;
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	submit_event(ctx, &e, sizeof(e));
	return 0;
}
