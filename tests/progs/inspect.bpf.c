/* Objects for `corebpf prog|map|link|btf` checked against bpftool: maps whose keys and
 * values exercise every way bpftool's BTF dumper prints a type (ints of each width and
 * sign, char strings and arrays, enums, bools, bitfields, unions, nested structs,
 * pointers, __int128), per-CPU maps, a ring buffer, a queue, a map of maps and a program
 * array; programs of several attach types (a netns link from sk_lookup, a uprobe perf link), one with a name longer than the kernel's 15
 * characters and a global subprogram (two func_info records, a bpf-to-bpf call). */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

enum color { RED = 0, GREEN = 1, BLUE = 7 };

struct key {
	__u32 id;
	char name[12];
};

struct point { __s16 x, y; };

struct value {
	__u64 count;
	__s32 delta;
	__u16 port;
	__u8 small;
	__s8 tiny;
	char comm[16];
	__u8 raw[4];
	enum color color;
	_Bool on;
	unsigned int flag_a : 1, level : 3, mode : 4;
	int sflag : 5;
	union { __u32 as_int; __u8 as_bytes[4]; } u;
	struct point pts[2];
	void *ptr;
	unsigned __int128 wide;
};

const volatile char bpf_metadata_version[] SEC(".rodata") = "inspect-1";
const volatile int target_pid = 0;

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16); __type(key, struct key); __type(value, struct value); } typed SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } counts SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 2); __type(key, __u32); __type(value, __u32); } pcpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 8); __type(key, __u32); __type(value, struct point); } pcpu_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __uint(key_size, 4); __uint(value_size, 12); } untyped SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 4); __type(value, __u32); } fifo SEC(".maps");
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int); __type(value, int); } inner1 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 2); __type(key, int); __array(values, struct inner); } outer SEC(".maps") = { .values = { [0] = &inner1 } };

SEC("tp/syscalls/sys_enter_getppid")
int tail_target(void *ctx) { return 0; }

struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2); __type(key, int); __array(values, int (void *)); } jumps SEC(".maps") = { .values = { [1] = (void *)&tail_target } };

__noinline int count_event(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &slot);

	if (!v)
		return 0;
	__sync_fetch_and_add(v, 1);
	return 1;
}

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid_with_a_long_name(void *ctx)
{
	__u32 zero = 0;
	__u32 *p;
	struct key k = { .id = 1 };
	struct value *tv;

	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	count_event(0);
	p = bpf_map_lookup_elem(&pcpu, &zero);
	if (p)
		*p += 1;
	tv = bpf_map_lookup_elem(&typed, &k);
	if (tv)
		tv->count++;
	bpf_ringbuf_output(&events, &zero, sizeof(zero), 0);
	bpf_tail_call(ctx, &jumps, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int on_raw_tp(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_pid)
		count_event(1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_tp_btf)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_pid)
		count_event(2);
	return 0;
}

struct seq_file;
struct bpf_iter_meta { struct seq_file *seq; } __attribute__((preserve_access_index));
struct bpf_iter__bpf_map { struct bpf_iter_meta *meta; struct bpf_map *map; } __attribute__((preserve_access_index));

SEC("iter/bpf_map")
int on_iter(struct bpf_iter__bpf_map *ctx) { return 0; }

SEC("cgroup/sock_create")
int on_sock_create(struct bpf_sock *sk) { return 1; }

SEC("xdp")
int on_xdp(struct xdp_md *ctx) { return XDP_PASS; }

SEC("tcx/ingress")
int on_tcx(struct __sk_buff *skb) { return -1; /* TCX_NEXT */ }

SEC("socket")
int on_socket(struct __sk_buff *skb) { return 0; }

SEC("sk_lookup")
int on_sk_lookup(struct bpf_sk_lookup *ctx) { return SK_PASS; }

SEC("uprobe")
int on_uprobe(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
