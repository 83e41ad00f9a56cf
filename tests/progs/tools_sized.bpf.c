/* A libbpf-tools-sized object (about twenty CO-RE relocations): what opensnoop, tcpconnect
 * and biolatency-style tools read from task_struct, sock, file and request structs.
 * Benchmarks relocate it against many kernels; it is never attached by the tests. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16

struct qstr {
	const unsigned char *name;
} __attribute__((preserve_access_index));

struct dentry {
	struct qstr d_name;
	struct dentry *d_parent;
} __attribute__((preserve_access_index));

struct path {
	struct dentry *dentry;
} __attribute__((preserve_access_index));

struct file {
	struct path f_path;
	unsigned int f_flags;
} __attribute__((preserve_access_index));

struct cred {
	struct { unsigned int val; } uid;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct pid_namespace {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct nsproxy {
	struct pid_namespace *pid_ns_for_children;
} __attribute__((preserve_access_index));

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	const struct cred *cred;
	struct mm_struct *mm;
	struct nsproxy *nsproxy;
	char comm[TASK_COMM_LEN];
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
	unsigned short skc_num;
	unsigned short skc_dport;
	unsigned int skc_daddr;
	unsigned int skc_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	unsigned int sk_rcvbuf;
} __attribute__((preserve_access_index));

struct request {
	unsigned int cmd_flags;
	unsigned long long start_time_ns;
} __attribute__((preserve_access_index));

enum cgroup_subsys_id {
	cpu_cgrp_id = 0,
	memory_cgrp_id = 1,
};

struct event {
	__u32 pid, ppid, uid, ns;
	__u64 args, delta;
	__u32 saddr, daddr;
	__u16 family, sport, dport, pad;
	__u32 flags, rcvbuf;
	char comm[TASK_COMM_LEN];
	char fname[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

static __always_inline void fill_task(struct event *e)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	e->pid = BPF_CORE_READ(task, tgid);
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(task, cred, uid.val);
	e->ns = BPF_CORE_READ(task, nsproxy, pid_ns_for_children, ns.inum);
	e->args = BPF_CORE_READ(task, mm, arg_end) - BPF_CORE_READ(task, mm, arg_start);
	BPF_CORE_READ_STR_INTO(&e->comm, task, comm);
}

SEC("kprobe/vfs_open")
int open_entry(struct path *path, struct file *file)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	const unsigned char *name;

	if (!e)
		return 0;
	fill_task(e);
	name = BPF_CORE_READ(path, dentry, d_name.name);
	bpf_probe_read_kernel_str(e->fname, sizeof(e->fname), name);
	e->flags = BPF_CORE_READ(file, f_flags);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("kprobe/tcp_connect")
int connect_entry(struct sock *sk)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	fill_task(e);
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	e->saddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
	e->daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	if (bpf_core_field_exists(sk->sk_rcvbuf))
		e->rcvbuf = BPF_CORE_READ(sk, sk_rcvbuf);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("kprobe/blk_account_io_done")
int io_done(struct request *rq)
{
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e)
		return 0;
	e->delta = bpf_ktime_get_ns() - BPF_CORE_READ(rq, start_time_ns);
	e->flags = BPF_CORE_READ(rq, cmd_flags);
	e->rcvbuf = bpf_core_type_exists(struct request) +
		    bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
