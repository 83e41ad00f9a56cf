/* Snoop-style tools the attach tests drive for real: an opensnoop (every openat of the
 * target process as a ring buffer event with pid, comm and the path read from user
 * memory) and a connect counter (cgroup/connect4, destination port as the map key). */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define MAX_PATH 256

struct trace_event_raw_sys_enter {
	long int id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

struct open_event {
	__u32 pid;
	__u32 tid;
	__s32 flags;
	__u32 path_len;
	char comm[TASK_COMM_LEN];
	char path[MAX_PATH];
};

/* puts struct open_event in the object's BTF, so readers can decode records */
const struct open_event *unused_open_event __attribute__((unused));

/* set before load: only this process (tgid) is reported */
const volatile int target_pid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} opens SEC(".maps");

/* destination port as the program sees it (network byte order, in the low 16 bits of
 * user_port) -> connects of the target process to it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} connects SEC(".maps");

__u32 last_connect_ip4 = 0;
__u64 open_drops = 0;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("tp/syscalls/sys_enter_openat")
int on_openat(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct open_event *e;
	long n;

	if ((id >> 32) != target_pid)
		return 0;
	e = bpf_ringbuf_reserve(&opens, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&open_drops, 1);
		return 0;
	}
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->flags = (__s32)ctx->args[2];
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	n = bpf_probe_read_user_str(e->path, sizeof(e->path), (const char *)ctx->args[1]);
	e->path_len = n > 0 ? n : 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("cgroup/connect4")
int on_connect4(struct bpf_sock_addr *ctx)
{
	__u32 port = ctx->user_port;
	__u64 one = 1, *n;

	if (!mine())
		return 1;
	last_connect_ip4 = ctx->user_ip4;
	n = bpf_map_lookup_elem(&connects, &port);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&connects, &port, &one, BPF_NOEXIST);
	return 1; /* allow: the connect goes ahead */
}

char LICENSE[] SEC("license") = "GPL";
