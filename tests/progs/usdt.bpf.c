// USDT probes read through libbpf's own <bpf/usdt.bpf.h>: corebpf.usdt fills its maps.
// One program attached to several probes; the USDT cookie picks the result slot.
#ifndef __TARGET_ARCH_x86
#define __TARGET_ARCH_x86
#endif
#include <stdbool.h>
#include <linux/types.h>
#include <linux/ptrace.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

#define NSLOTS 8

struct slot {
	long args[BPF_USDT_MAX_ARG_CNT];
	long argc;
	long hits;
	long cookie;
	char str[32];
};

struct slot slots[NSLOTS];

SEC("usdt")
int handle(struct pt_regs *ctx)
{
	long cookie = bpf_usdt_cookie(ctx);
	struct slot *s;
	int i;

	if (cookie < 0 || cookie >= NSLOTS)
		return 0;
	s = &slots[cookie];
	s->cookie = cookie;
	s->argc = bpf_usdt_arg_cnt(ctx);
#pragma unroll
	for (i = 0; i < BPF_USDT_MAX_ARG_CNT; i++)
		bpf_usdt_arg(ctx, i, &s->args[i]);
	if (s->argc > 0)
		bpf_probe_read_user_str(s->str, sizeof(s->str), (void *)s->args[0]);
	__sync_fetch_and_add(&s->hits, 1);
	return 0;
}

/* BPF_USDT() as libbpf users write it: the arguments arrive converted */
long typed[3];

SEC("usdt")
int BPF_USDT(handle_typed, const char *str, int a, unsigned long b)
{
	typed[0] = a;
	typed[1] = b;
	typed[2] = str != 0;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
