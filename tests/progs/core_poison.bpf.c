/* A field that no kernel has, read unconditionally: libbpf poisons the instruction and
 * the verifier rejects the program; the loader must explain it in words. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int no_such_field_anywhere;
} __attribute__((preserve_access_index));

int out;

SEC("raw_tp/sys_enter")
int poisoned(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();

	out = BPF_CORE_READ(t, no_such_field_anywhere);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
