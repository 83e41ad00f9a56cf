/* CO-RE against several targets: struct data is an application's type (its layout here is
 * the one this object was compiled against; the application's BTF has another), and
 * task_struct/pt_regs are the kernel's. The results land in .bss for both corebpf and a
 * libbpf loader (btf_custom_path) to read. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct data {
	int a;
	int b;
	long c;
	char x;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
} __attribute__((preserve_access_index));

struct pt_regs {
	unsigned long ip;
} __attribute__((preserve_access_index));

struct results {
	__u64 b_off;
	__u64 c_off;
	__u64 c_size;
	__u64 data_size;
	__u64 x_exists;
	__u64 regs_ip_off;
	__u64 pid_ok;
	__u64 pid_bad;
} results;

SEC("raw_tp/sys_enter")
int read_targets(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	results.b_off = bpf_core_field_offset(struct data, b);
	results.c_off = bpf_core_field_offset(struct data, c);
	results.c_size = bpf_core_field_size(struct data, c);
	results.data_size = bpf_core_type_size(struct data);
	results.x_exists = bpf_core_field_exists(struct data, x);
	results.regs_ip_off = bpf_core_field_offset(struct pt_regs, ip);
	if (BPF_CORE_READ(t, pid) == tid)
		__sync_fetch_and_add(&results.pid_ok, 1);
	else
		__sync_fetch_and_add(&results.pid_bad, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
