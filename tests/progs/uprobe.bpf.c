// Uprobes for tests/test_uprobe.py: entry (argument), return (value), sleepable.
#ifndef __TARGET_ARCH_x86
#define __TARGET_ARCH_x86
#endif
#include <stdbool.h>
#include <linux/types.h>
#include <linux/ptrace.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

long entry_hits, entry_arg, ret_hits, ret_val, sleepable_hits, cookie;

SEC("uprobe")
int BPF_KPROBE(on_entry, long arg)
{
	__sync_fetch_and_add(&entry_hits, 1);
	entry_arg = arg;
	cookie = bpf_get_attach_cookie(ctx);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_return, long rc)
{
	__sync_fetch_and_add(&ret_hits, 1);
	ret_val = rc;
	return 0;
}

SEC("uprobe.s")
int on_entry_sleepable(struct pt_regs *ctx)
{
	__sync_fetch_and_add(&sleepable_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
