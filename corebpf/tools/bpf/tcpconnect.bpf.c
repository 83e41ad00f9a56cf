/* tcpconnect: active TCP connects (IPv4 and IPv6), as events or counted per
 * (saddr, daddr, [sport,] dport). Three ways in, one per kind of kernel; user space keeps
 * the first that loads and attaches and turns the others off (autoload=false):
 *   - fexit/tcp_v4_connect, fexit/tcp_v6_connect (5.5+ with BTF; refused on some kernels),
 *   - kprobe + kretprobe on the same functions (pt_regs: only in the per-arch objects),
 *   - tracepoint sock/inet_sock_set_state with newstate == SYN_SENT (4.16+; works where
 *     tracepoints do). tcp_v[46]_connect moves the socket to SYN_SENT in the connecting
 *     task before it picks the source port, so with source_port set the event waits for
 *     the socket's next state change (the handshake's end or its failure), whose
 *     tracepoint carries the port.
 * Options as libbpf-tools' tcpconnect: filter_pid (-p), filter_uid (-u), filter_ports
 * (-P, host byte order here), do_count (-c), source_port (-s). */
#include "common.bpf.h"
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_SYN_SENT 2
#define MAX_ENTRIES 8192
#define MAX_PORTS 64

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct trace_event_raw_inet_sock_set_state {
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
} __attribute__((preserve_access_index));

/* Addresses in network byte order (IPv4: the first 4 bytes); both ports in host byte
 * order; sport is 0 unless source_port is set. af: AF_INET or AF_INET6 (an IPv6 socket
 * connecting to a v4-mapped address reports AF_INET, as tcp_v4_connect does the work). */
struct event {
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[TASK_COMM_LEN];
	__u64 ts_us;
	__u32 af;
	__u32 pid;
	__u32 uid;
	__u16 sport;
	__u16 dport;
};

struct ipv4_flow_key {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};

struct ipv6_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
};

const volatile int filter_ports[MAX_PORTS];
const volatile int filter_ports_len = 0;
const volatile __u32 filter_uid = (__u32)-1;
const volatile __u32 filter_pid = 0;
const volatile bool do_count = false;
const volatile bool source_port = false;

COREBPF_EVENTS_MAP(struct event);

/* -c: connects per flow. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct ipv4_flow_key);
	__type(value, __u64);
} ipv4_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct ipv6_flow_key);
	__type(value, __u64);
} ipv6_count SEC(".maps");

/* Tracepoint variant with source_port: connects seen at SYN_SENT, by socket address,
 * until the socket's next state change gives the source port. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);
	__type(value, struct event);
} pending SEC(".maps");

static __always_inline bool port_filtered_out(__u16 dport)
{
	int i;

	if (filter_ports_len == 0)
		return false;
	for (i = 0; i < filter_ports_len && i < MAX_PORTS; i++)
		if (dport == filter_ports[i])
			return false;
	return true;
}

/* The pid/uid filters; fills the task's part of the event. */
static __always_inline bool task_wanted(struct event *e)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 uid = (__u32)bpf_get_current_uid_gid();

	if (filter_pid && pid != filter_pid)
		return false;
	if (filter_uid != (__u32)-1 && uid != filter_uid)
		return false;
	e->pid = pid;
	e->uid = uid;
	e->ts_us = bpf_ktime_get_ns() / 1000;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return true;
}

static __always_inline void count_connect(const struct event *e)
{
	static const __u64 zero;
	__u64 *val;

	if (e->af == AF_INET) {
		struct ipv4_flow_key key = {};

		__builtin_memcpy(&key.saddr, e->saddr, 4);
		__builtin_memcpy(&key.daddr, e->daddr, 4);
		key.sport = e->sport;
		key.dport = e->dport;
		val = bpf_map_lookup_elem(&ipv4_count, &key);
		if (!val) {
			bpf_map_update_elem(&ipv4_count, &key, &zero, BPF_NOEXIST);
			val = bpf_map_lookup_elem(&ipv4_count, &key);
		}
	} else {
		struct ipv6_flow_key key = {};

		__builtin_memcpy(key.saddr, e->saddr, 16);
		__builtin_memcpy(key.daddr, e->daddr, 16);
		key.sport = e->sport;
		key.dport = e->dport;
		val = bpf_map_lookup_elem(&ipv6_count, &key);
		if (!val) {
			bpf_map_update_elem(&ipv6_count, &key, &zero, BPF_NOEXIST);
			val = bpf_map_lookup_elem(&ipv6_count, &key);
		}
	}
	if (val)
		__sync_fetch_and_add(val, 1);
}

static __always_inline void report(void *ctx, struct event *e)
{
	if (port_filtered_out(e->dport))
		return;
	if (do_count)
		count_connect(e);
	else
		submit_event(ctx, e, sizeof(*e));
}

/* After a successful tcp_v[46]_connect: everything is in the socket. */
static __always_inline void report_sock(void *ctx, struct sock *sk, __u32 af)
{
	struct event e = {};

	if (!task_wanted(&e))
		return;
	e.af = af;
	if (af == AF_INET) {
		bpf_core_read(e.saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(e.daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		bpf_core_read(e.saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(e.daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	if (source_port)
		e.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	report(ctx, &e);
}

static __always_inline bool v4_mapped(const __u8 *a)
{
	__u64 lo;
	__u16 mid;

	__builtin_memcpy(&lo, a, 8);
	__builtin_memcpy(&mid, a + 8, 2);
	return lo == 0 && mid == 0 && a[10] == 0xff && a[11] == 0xff;
}

/* -- fexit ------------------------------------------------------------------------- */

SEC("fexit/tcp_v4_connect")
int BPF_PROG(tcp_v4_connect_fexit, struct sock *sk, void *uaddr, int addr_len, int ret)
{
	if (!ret)
		report_sock(ctx, sk, AF_INET);
	return 0;
}

SEC("fexit/tcp_v6_connect")
int BPF_PROG(tcp_v6_connect_fexit, struct sock *sk, void *uaddr, int addr_len, int ret)
{
	__u8 daddr[16];

	/* a v4-mapped destination went through tcp_v4_connect, already reported */
	bpf_core_read(daddr, 16, &sk->__sk_common.skc_v6_daddr);
	if (!ret && !v4_mapped(daddr))
		report_sock(ctx, sk, AF_INET6);
	return 0;
}

/* -- kprobe + kretprobe (per-arch objects only: they read pt_regs) ------------------ */

#ifdef bpf_target_defined
#if defined(__TARGET_ARCH_x86)
#include <asm/ptrace.h>
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#endif

/* The socket each thread is connecting, from entry to return. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u32);
	__type(value, __u64);
} sockets SEC(".maps");

static __always_inline int connect_entry(struct sock *sk)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 skp = (__u64)sk;

	bpf_map_update_elem(&sockets, &tid, &skp, BPF_ANY);
	return 0;
}

static __always_inline int connect_return(void *ctx, int ret, __u32 af)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *skp = bpf_map_lookup_elem(&sockets, &tid);

	if (!skp)
		return 0;
	if (!ret)
		report_sock(ctx, (struct sock *)*skp, af);
	bpf_map_delete_elem(&sockets, &tid);
	return 0;
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(tcp_v4_connect_kprobe, struct sock *sk)
{
	return connect_entry(sk);
}

SEC("kretprobe/tcp_v4_connect")
int BPF_KRETPROBE(tcp_v4_connect_kretprobe, int ret)
{
	return connect_return(ctx, ret, AF_INET);
}

SEC("kprobe/tcp_v6_connect")
int BPF_KPROBE(tcp_v6_connect_kprobe, struct sock *sk)
{
	return connect_entry(sk);
}

SEC("kretprobe/tcp_v6_connect")
int BPF_KRETPROBE(tcp_v6_connect_kretprobe, int ret)
{
	return connect_return(ctx, ret, AF_INET6);
}
#endif

/* -- tracepoint --------------------------------------------------------------------- */

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	struct event e = {}, *p;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;

	if (ctx->newstate != TCP_SYN_SENT) {
		/* the end of SYN_SENT: a pending connect learns its source port (0 if
		 * tcp_v[46]_connect failed to get one: libbpf-tools reports no failed connect) */
		if (!source_port || ctx->oldstate != TCP_SYN_SENT)
			return 0;
		p = bpf_map_lookup_elem(&pending, &sk);
		if (!p)
			return 0;
		e = *p;
		bpf_map_delete_elem(&pending, &sk);
		e.sport = ctx->sport;
		if (e.sport)
			report(ctx, &e);
		return 0;
	}

	if (!task_wanted(&e))
		return 0;
	e.dport = ctx->dport;
	if (ctx->family == AF_INET6) {
		bpf_core_read(e.saddr, 16, &ctx->saddr_v6);
		bpf_core_read(e.daddr, 16, &ctx->daddr_v6);
		e.af = AF_INET6;
		if (v4_mapped(e.daddr)) {
			__builtin_memset(&e.saddr, 0, sizeof(e.saddr));
			__builtin_memset(&e.daddr, 0, sizeof(e.daddr));
			e.af = AF_INET;
		}
	} else {
		e.af = AF_INET;
	}
	if (e.af == AF_INET) {
		bpf_core_read(e.saddr, 4, &ctx->saddr);
		bpf_core_read(e.daddr, 4, &ctx->daddr);
	}
	if (source_port) {
		e.sport = ctx->sport;
		if (!e.sport) {
			if (port_filtered_out(e.dport))
				return 0;
			bpf_map_update_elem(&pending, &sk, &e, BPF_ANY);
			return 0;
		}
	}
	report(ctx, &e);
	return 0;
}
