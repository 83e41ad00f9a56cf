/* Calls and 64-bit loads as clang emits them: helpers, bpf-to-bpf calls (static and global),
 * a bpf_loop callback (ld_imm64 of a function), a kfunc, maps and global data (ld_imm64
 * relocated by the loader), 64-bit constants. A socket filter the verifier accepts. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

const volatile __u64 limit = 1000;	/* .rodata */
__u64 seen = 7;				/* .data */
__u64 total;				/* .bss */

extern void *bpf_cast_to_kern_ctx(void *) __ksym;

static __attribute__((noinline)) __u64 mix(__u64 a, __u64 b)
{
	return (a ^ 0x9e3779b97f4a7c15ULL) * b + (a >> 7);
}

__attribute__((noinline)) int bump(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&counts, &key);

	if (!v)
		return 0;
	__sync_fetch_and_add(v, 1);
	return 1;
}

static long step(__u64 i, void *ctx)
{
	total += i;
	return i > limit;
}

SEC("socket")
int calls(struct __sk_buff *skb)
{
	__u64 t = bpf_ktime_get_ns();
	__u32 key = skb->len & 3;
	void *kctx = bpf_cast_to_kern_ctx(skb);

	seen = mix(t, seen) + (kctx != 0);
	bump(key);
	bpf_loop(8, step, NULL, 0);
	if (bpf_get_prandom_u32() & 1)
		total += 0x1234567890ULL;
	return seen > limit ? 0 : skb->len;
}

char LICENSE[] SEC("license") = "GPL";
