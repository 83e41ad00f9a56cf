/* One program per attach type the loader tests drive for real; each counts events of
 * the test process (target_pid, set before load) in the `counts` array. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
	char comm[16];
} __attribute__((preserve_access_index));

struct seq_file;
struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

enum { C_RAW_TP, C_FENTRY, C_FEXIT, C_LSM, C_XDP, C_SOCKET, C_TP, C_TP_BTF, C_UPROBE,
       C_URETPROBE, C_CGROUP, C_TCX, C_MAX };

const volatile int target_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

static __always_inline void bump(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("raw_tp/sys_enter")
int on_raw_tp(void *ctx) { if (mine()) bump(C_RAW_TP); return 0; }

SEC("fentry/do_sys_openat2")
int BPF_PROG(on_fentry) { if (mine()) bump(C_FENTRY); return 0; }

SEC("fexit/do_sys_openat2")
int BPF_PROG(on_fexit) { if (mine()) bump(C_FEXIT); return 0; }

SEC("lsm/file_open")
int BPF_PROG(on_lsm, void *file) { if (mine()) bump(C_LSM); return 0; }

SEC("tp_btf/sys_enter")
int BPF_PROG(on_tp_btf) { if (mine()) bump(C_TP_BTF); return 0; }

SEC("tp/syscalls/sys_enter_getppid")
int on_tp(void *ctx) { if (mine()) bump(C_TP); return 0; }

SEC("uprobe")
int on_uprobe(void *ctx) { if (mine()) bump(C_UPROBE); return 0; }

SEC("uretprobe")
int on_uretprobe(void *ctx) { if (mine()) bump(C_URETPROBE); return 0; }

SEC("xdp")
int on_xdp(struct xdp_md *ctx) { bump(C_XDP); return XDP_PASS; }

SEC("tcx/ingress")
int on_tcx(struct __sk_buff *skb) { bump(C_TCX); return -1; /* TCX_NEXT */ }

SEC("socket")
int on_socket(struct __sk_buff *skb) { bump(C_SOCKET); return skb->len; }

SEC("cgroup/sock_create")
int on_cgroup(struct bpf_sock *sk) { if (mine()) bump(C_CGROUP); return 1; }

SEC("iter/task")
int on_iter(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task)
		return 0;
	BPF_SEQ_PRINTF(ctx->meta->seq, "%d %s\n", task->pid, task->comm);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

SEC("kprobe/do_sys_openat2")
int on_kprobe(void *ctx) { if (mine()) bump(C_RAW_TP); return 0; }
