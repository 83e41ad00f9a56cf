/* tcpstates: every TCP state change, with the time the socket spent in its old state.
 * One tracepoint (sock/inet_sock_set_state, 4.16+) carries everything: the socket's
 * address, both states, ports and addresses; the task is whoever runs the change.
 * Options as libbpf-tools' tcpstates: -4/-6 (target_family), -L/-D (port sets in the
 * sports/dports maps, switched on by filter_by_sport/filter_by_dport). */
#include "common.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_CLOSE 7
#define MAX_ENTRIES 10240

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

/* Addresses in network byte order, an IPv4 one in the first 4 bytes; ports in host
 * order (the tracepoint's ntohs'd values); delta_us: microseconds in oldstate (0 the
 * first time this socket is seen). */
struct event {
	__u8 saddr[16];
	__u8 daddr[16];
	__u64 skaddr;
	__u64 ts_us;
	__u64 delta_us;
	__u32 pid;
	int oldstate;
	int newstate;
	__u16 family;
	__u16 sport;
	__u16 dport;
	char comm[TASK_COMM_LEN];
};

const volatile bool filter_by_sport = false;
const volatile bool filter_by_dport = false;
const volatile short target_family = 0;

COREBPF_EVENTS_MAP(struct event);

/* Local ports to trace (key = value = port, host order), filled by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u16);
	__type(value, __u16);
} sports SEC(".maps");

/* Remote ports to trace, as sports. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u16);
	__type(value, __u16);
} dports SEC(".maps");

/* When each socket entered its current state (ns), for the next event's delta. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);
	__type(value, __u64);
} timestamps SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state_tp(struct trace_event_raw_inet_sock_set_state *ctx)
{
	__u64 sk = (__u64)ctx->skaddr;
	__u16 family = ctx->family;
	__u16 sport = ctx->sport;
	__u16 dport = ctx->dport;
	struct event event = {};
	__u64 *tsp, ts;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (target_family && target_family != family)
		return 0;
	if (filter_by_sport && !bpf_map_lookup_elem(&sports, &sport))
		return 0;
	if (filter_by_dport && !bpf_map_lookup_elem(&dports, &dport))
		return 0;

	ts = bpf_ktime_get_ns();
	tsp = bpf_map_lookup_elem(&timestamps, &sk);
	event.delta_us = tsp ? (ts - *tsp) / 1000 : 0;
	event.skaddr = sk;
	event.ts_us = ts / 1000;
	event.pid = bpf_get_current_pid_tgid() >> 32;
	event.oldstate = ctx->oldstate;
	event.newstate = ctx->newstate;
	event.family = family;
	event.sport = sport;
	event.dport = dport;
	bpf_get_current_comm(event.comm, sizeof(event.comm));
	if (family == AF_INET) {
		bpf_core_read(event.saddr, 4, &ctx->saddr);
		bpf_core_read(event.daddr, 4, &ctx->daddr);
	} else {
		bpf_core_read(event.saddr, 16, &ctx->saddr_v6);
		bpf_core_read(event.daddr, 16, &ctx->daddr_v6);
	}
	submit_event(ctx, &event, sizeof(event));

	if (event.newstate == TCP_CLOSE)
		bpf_map_delete_elem(&timestamps, &sk);
	else
		bpf_map_update_elem(&timestamps, &sk, &ts, BPF_ANY);
	return 0;
}
