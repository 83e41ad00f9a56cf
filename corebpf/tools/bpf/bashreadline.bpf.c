/* bashreadline: the line every interactive bash reads, from a uretprobe on bash's
 * readline() (its return value is the line). The section names /bin/bash so that
 * attaching by section works; user space attaches to another binary or
 * libreadline.so (the C tool's -s) by attaching the program itself there.
 *
 * The return value register differs per architecture. Built with __TARGET_ARCH_x86
 * or __TARGET_ARCH_arm64 (the Makefile's per-arch objects), it is PT_REGS_RC; the
 * plain bpfel/bpfeb objects instead pick the register by CO-RE from the running
 * kernel's struct pt_regs (x86_64 ax, arm64 regs[0], riscv a0, s390 gprs[2],
 * powerpc gpr[3]), so one object serves every architecture. Our own code; the facts
 * (80-byte line, "bash" comm filter) follow libbpf-tools. */
#include "common.bpf.h"

#define MAX_LINE_SIZE 80

struct event {
	__u32 pid;
	char comm[TASK_COMM_LEN];
	char str[MAX_LINE_SIZE];
};

COREBPF_EVENTS_MAP(struct event);

#if defined(bpf_target_defined)

#if defined(__TARGET_ARCH_x86)
/* the uapi x86_64 layout bpf_tracing.h's PT_REGS_RC (rax) expects */
struct pt_regs {
	unsigned long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
	unsigned long rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
};
#elif defined(__TARGET_ARCH_arm64)
/* the uapi arm64 layout bpf_tracing.h's PT_REGS_RC (regs[0]) expects */
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
};
#else
#error "per-arch objects are built for x86 and arm64 only"
#endif

static __always_inline const void *return_value(struct pt_regs *ctx)
{
	return (const void *)PT_REGS_RC(ctx);
}

#else /* no target arch: CO-RE picks the register */

struct pt_regs___x86 { unsigned long ax; } __attribute__((preserve_access_index));
struct pt_regs___arm64 { unsigned long regs[31]; } __attribute__((preserve_access_index));
struct pt_regs___riscv { unsigned long a0; } __attribute__((preserve_access_index));
struct pt_regs___s390 { unsigned long gprs[16]; } __attribute__((preserve_access_index));
struct pt_regs___ppc { unsigned long gpr[32]; } __attribute__((preserve_access_index));

/* read through bpf_probe_read_kernel: the verifier refuses loads from a ctx pointer
 * moved by an offset it does not know at compile time */
static __always_inline const void *return_value(struct pt_regs *ctx)
{
	if (bpf_core_field_exists(struct pt_regs___x86, ax))
		return (const void *)BPF_CORE_READ((struct pt_regs___x86 *)ctx, ax);
	if (bpf_core_field_exists(struct pt_regs___arm64, regs))
		return (const void *)BPF_CORE_READ((struct pt_regs___arm64 *)ctx, regs[0]);
	if (bpf_core_field_exists(struct pt_regs___riscv, a0))
		return (const void *)BPF_CORE_READ((struct pt_regs___riscv *)ctx, a0);
	if (bpf_core_field_exists(struct pt_regs___s390, gprs))
		return (const void *)BPF_CORE_READ((struct pt_regs___s390 *)ctx, gprs[2]);
	if (bpf_core_field_exists(struct pt_regs___ppc, gpr))
		return (const void *)BPF_CORE_READ((struct pt_regs___ppc *)ctx, gpr[3]);
	return 0;
}

#endif

SEC("uretprobe//bin/bash:readline")
int printret(struct pt_regs *ctx)
{
	const void *line = return_value(ctx);
	struct event e = {};

	if (!line)
		return 0;
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	if (e.comm[0] != 'b' || e.comm[1] != 'a' || e.comm[2] != 's' || e.comm[3] != 'h' ||
	    e.comm[4] != 0)
		return 0;
	e.pid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_probe_read_user_str(&e.str, sizeof(e.str), line) < 0)
		return 0;
	submit_event(ctx, &e, sizeof(e));
	return 0;
}
