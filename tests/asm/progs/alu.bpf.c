/* Arithmetic as clang -mcpu=v4 emits it: 32/64-bit ALU, signed division and modulo,
 * sign-extending moves and loads, byte swaps, every comparison in JMP and JMP32. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct vals {
	__u64 u[8];
	__s64 s[8];
	__u32 w[8];
	__s32 sw[8];
	__s8 b;
	__s16 h;
	__s32 i;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vals);
} out SEC(".maps");

SEC("socket")
int alu(struct __sk_buff *skb)
{
	__u32 k = 0;
	struct vals *v = bpf_map_lookup_elem(&out, &k);
	__u64 a, b;
	__s64 sa, sb;
	__u32 x, y;
	__s32 sx, sy;

	if (!v)
		return 0;
	a = skb->len;
	b = skb->protocol | 1;
	sa = v->s[0];
	sb = v->s[1];
	x = v->w[0];
	y = v->w[1] | 1;
	sx = v->sw[0];
	sy = v->sw[1];

	v->u[0] = (a + b) * 13 - (a / b) + (a % b);
	v->u[1] = ((a | b) & 0xf0f0) ^ (a << (b & 31)) ^ (a >> (b & 15));
	v->s[2] = sa / sb + sa % sb + sa / -7 + sa % 9;
	v->s[3] = sa >> (b & 31);
	v->s[4] = (__s8)a + (__s16)b + (__s32)sa;
	v->s[5] = v->b + v->h + v->i;
	v->w[2] = (x + y) * 3 - x / y + x % y;
	v->sw[2] = sx / sy + sx % sy + (__s8)x + (__s16)y;
	v->u[6] = __builtin_bswap16(a) + __builtin_bswap32(b) + __builtin_bswap64(a + b);
	v->w[3] = bpf_htonl(x) + bpf_ntohs(y);
	v->u[7] = -a;

	if (a == b || a > 100 || sa < sb || (sa >= -5 && b <= 3))
		return 1;
	if (x != y && (sx > sy || x < 7 || (sx <= -3 && (y & 4))))
		return 2;
	if ((__s64)a <= sb || (__s32)x >= sy)
		return 3;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
