/* Every instruction form, written as assembly so that each encoding appears exactly as
 * listed (clang would pick its own). A socket filter the verifier accepts: the disassembly
 * is compared with the kernel's verifier log and with llvm-objdump. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* clang-19 cannot assemble load-acquire/store-release (kernel 6.15+): spell the bytes.
 * RAW(code, dst, src, off16 bytes hi/lo, imm bytes) in the target's byte order. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define RAW(code, dst, src, offhi, offlo, imm3, imm2, imm1, imm0) \
	".byte " #code ", (" #src " << 4) | " #dst ", " #offlo ", " #offhi ", " \
	#imm0 ", " #imm1 ", " #imm2 ", " #imm3 ";"
#else
#define RAW(code, dst, src, offhi, offlo, imm3, imm2, imm1, imm0) \
	".byte " #code ", (" #dst " << 4) | " #src ", " #offhi ", " #offlo ", " \
	#imm3 ", " #imm2 ", " #imm1 ", " #imm0 ";"
#endif

SEC("socket")
__attribute__((naked)) int every(void)
{
	asm volatile (
	"r6 = r1;"
	/* ld_imm64, mov */
	"r1 = 0x123456789abcdef0 ll;"
	"r2 = -1 ll;"
	"r0 = 0;"
	"r1 = 7;"
	"w2 = -3;"
	"r3 = r1;"
	"w4 = w2;"
	/* 64-bit ALU, immediate and register */
	"r1 += 5; r1 -= 2; r1 *= 3; r1 /= 3; r1 %%= 7; r1 |= 8; r1 &= 0xff; r1 ^= 1;"
	"r1 <<= 2; r1 >>= 1; r1 s>>= 1; r1 = -r1;"
	"r3 += r1; r3 -= r1; r3 *= r1; r3 /= r1; r3 %%= r1; r3 |= r1; r3 &= r1; r3 ^= r1;"
	"r3 <<= r1; r3 >>= r1; r3 s>>= r1;"
	/* 32-bit ALU */
	"w1 += 5; w1 -= 2; w1 *= 3; w1 /= 3; w1 %%= 7; w1 |= 8; w1 &= 0xff; w1 ^= 1;"
	"w1 <<= 2; w1 >>= 1; w1 s>>= 1; w1 = -w1;"
	"w4 += w1; w4 -= w1; w4 *= w1; w4 /= w1; w4 %%= w1; w4 |= w1; w4 &= w1; w4 ^= w1;"
	"w4 <<= w1; w4 >>= w1; w4 s>>= w1;"
	/* signed division and modulo (cpu v4) */
	"r3 s/= r1; r3 s%%= r1; r3 s/= -3; r3 s%%= 5;"
	"w4 s/= w1; w4 s%%= w1; w4 s/= -3; w4 s%%= 5;"
	/* sign-extending moves */
	"r5 = (s8)r3; r5 = (s16)r3; r5 = (s32)r3;"
	"w5 = (s8)w4; w5 = (s16)w4;"
	/* byte swaps: be/le (ALU) and unconditional bswap (ALU64) */
	"r3 = be16 r3; r3 = be32 r3; r3 = be64 r3;"
	"r3 = le16 r3; r3 = le32 r3; r3 = le64 r3;"
	"r3 = bswap16 r3; r3 = bswap32 r3; r3 = bswap64 r3;"
	/* stores, loads, sign-extending loads */
	"*(u64 *)(r10 - 8) = r3;"
	"*(u32 *)(r10 - 16) = w4;"
	"*(u16 *)(r10 - 20) = w4;"
	"*(u8 *)(r10 - 24) = w4;"
	"*(u64 *)(r10 - 32) = 42;"
	"*(u32 *)(r10 - 36) = -1;"
	"*(u16 *)(r10 - 38) = 7;"
	"*(u8 *)(r10 - 39) = 1;"
	"r5 = *(u64 *)(r10 - 8);"
	"r5 = *(u32 *)(r10 - 16);"
	"r5 = *(u16 *)(r10 - 20);"
	"r5 = *(u8 *)(r10 - 24);"
	"r5 = *(s32 *)(r10 - 16);"
	"r5 = *(s16 *)(r10 - 20);"
	"r5 = *(s8 *)(r10 - 24);"
	"r7 = *(u32 *)(r6 + 0);"
	/* atomics, 64 and 32 bit */
	"r1 = 1;"
	"lock *(u64 *)(r10 - 8) += r1;"
	"lock *(u64 *)(r10 - 8) |= r1;"
	"lock *(u64 *)(r10 - 8) &= r1;"
	"lock *(u64 *)(r10 - 8) ^= r1;"
	"lock *(u32 *)(r10 - 16) += w1;"
	"lock *(u32 *)(r10 - 16) |= w1;"
	"lock *(u32 *)(r10 - 16) &= w1;"
	"lock *(u32 *)(r10 - 16) ^= w1;"
	"r1 = atomic_fetch_add((u64 *)(r10 - 8), r1);"
	"r1 = atomic_fetch_or((u64 *)(r10 - 8), r1);"
	"r1 = atomic_fetch_and((u64 *)(r10 - 8), r1);"
	"r1 = atomic_fetch_xor((u64 *)(r10 - 8), r1);"
	"w1 = atomic_fetch_add((u32 *)(r10 - 16), w1);"
	"w1 = atomic_fetch_or((u32 *)(r10 - 16), w1);"
	"w1 = atomic_fetch_and((u32 *)(r10 - 16), w1);"
	"w1 = atomic_fetch_xor((u32 *)(r10 - 16), w1);"
	"r1 = xchg_64(r10 - 8, r1);"
	"w1 = xchg32_32(r10 - 16, w1);"
	"r0 = 0;"
	"r0 = cmpxchg_64(r10 - 8, r0, r1);"
	"w0 = 0;"
	"w0 = cmpxchg32_32(r10 - 16, w0, w1);"
	/* load-acquire r5 = *(u64/u32/u8 *)(r10 - 8/16/24), store-release of r5 */
	RAW(0xdb, 5, 10, 0xff, 0xf8, 0, 0, 1, 0)
	RAW(0xc3, 5, 10, 0xff, 0xf0, 0, 0, 1, 0)
	RAW(0xd3, 5, 10, 0xff, 0xe8, 0, 0, 1, 0)
	RAW(0xdb, 10, 5, 0xff, 0xf8, 0, 0, 1, 0x10)
	RAW(0xcb, 10, 5, 0xff, 0xec, 0, 0, 1, 0x10)
	/* legacy packet access (r6 = skb) */
	"r0 = *(u8 *)skb[14];"
	"r0 = *(u16 *)skb[12];"
	"r0 = *(u32 *)skb[26];"
	"r2 = 14;"
	"r0 = *(u8 *)skb[r2];"
	/* conditional jumps, 64 and 32 bit, immediate and register */
	"r1 = 3; r2 = 4; w3 = 5; w4 = -6;"
	"if r1 == 3 goto +0; if r1 != 3 goto +0; if r1 > 3 goto +0; if r1 >= 3 goto +0;"
	"if r1 < 3 goto +0; if r1 <= 3 goto +0; if r1 s> -3 goto +0; if r1 s>= -3 goto +0;"
	"if r1 s< -3 goto +0; if r1 s<= -3 goto +0; if r1 & 1 goto +0;"
	"if r1 == r2 goto +0; if r1 != r2 goto +0; if r1 > r2 goto +0; if r1 >= r2 goto +0;"
	"if r1 < r2 goto +0; if r1 <= r2 goto +0; if r1 s> r2 goto +0; if r1 s>= r2 goto +0;"
	"if r1 s< r2 goto +0; if r1 s<= r2 goto +0; if r1 & r2 goto +0;"
	"if w3 == 5 goto +0; if w3 != 5 goto +0; if w3 > 5 goto +0; if w3 >= 5 goto +0;"
	"if w3 < 5 goto +0; if w3 <= 5 goto +0; if w3 s> -5 goto +0; if w3 s>= -5 goto +0;"
	"if w3 s< -5 goto +0; if w3 s<= -5 goto +0; if w3 & 1 goto +0;"
	"if w3 == w4 goto +0; if w3 != w4 goto +0; if w3 > w4 goto +0; if w3 >= w4 goto +0;"
	"if w3 < w4 goto +0; if w3 <= w4 goto +0; if w3 s> w4 goto +0; if w3 s>= w4 goto +0;"
	"if w3 s< w4 goto +0; if w3 s<= w4 goto +0; if w3 & w4 goto +0;"
	"if r7 > 5 goto +1;"
	"goto +1;"
	"r0 = 1;"
	"if r7 > 6 goto +1;"
	"gotol +1;"
	"r0 = 2;"
	"may_goto +1;"
	"r0 = 3;"
	/* a helper call */
	"call %[ktime];"
	"r0 = 0;"
	"exit;"
	:: [ktime] "i"(BPF_FUNC_ktime_get_ns)
	: "memory");
}

char LICENSE[] SEC("license") = "GPL";
