/* Programs for a network interface (corebpf run --iface, attach_xdp/attach_tcx): each
 * counts the packets its hook sees in `packets`; XDP also sends one record per IPv4
 * packet to the `pkts` ring buffer (a struct with a nested struct, a char array and an
 * enum: what `corebpf run --format text` flattens into columns). */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum hook { HOOK_XDP, HOOK_TCX_INGRESS, HOOK_TCX_EGRESS, HOOK_TC, HOOK_MAX };

struct l3 {
	__u8 proto;
	__u8 ttl;
	__u16 tot_len;
};

struct pkt {
	__u32 ifindex;
	__u32 len;
	struct l3 ip;
	char hook[8];
	enum hook kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HOOK_MAX);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 65536);
	__type(value, struct pkt);
} pkts SEC(".maps");

static __always_inline void bump(__u32 k)
{
	__u64 *v = bpf_map_lookup_elem(&packets, &k);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("xdp")
int count_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	/* the length from a helper: `end - data` is pointer arithmetic, which the verifier
	 * refuses a process without CAP_PERFMON (tests/sys/test_caps.py loads this so) */
	struct pkt p = { .ifindex = ctx->ingress_ifindex, .len = bpf_xdp_get_buff_len(ctx),
			 .hook = "xdp", .kind = HOOK_XDP };

	bump(HOOK_XDP);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	p.ip.proto = ip->protocol;
	p.ip.ttl = ip->ttl;
	p.ip.tot_len = bpf_ntohs(ip->tot_len);
	bpf_ringbuf_output(&pkts, &p, sizeof(p), 0);
	return XDP_PASS;
}

SEC("tcx/ingress")
int count_ingress(struct __sk_buff *skb) { bump(HOOK_TCX_INGRESS); return -1; /* TCX_NEXT */ }

SEC("tcx/egress")
int count_egress(struct __sk_buff *skb) { bump(HOOK_TCX_EGRESS); return -1; /* TCX_NEXT */ }

/* classic tc: on tcx, TC_ACT_UNSPEC lets the next program run (TCX_NEXT) */
SEC("tc")
int count_tc(struct __sk_buff *skb) { bump(HOOK_TC); return TC_ACT_UNSPEC; }

char LICENSE[] SEC("license") = "GPL";
