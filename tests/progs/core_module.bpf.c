/* CO-RE against module BTF: struct veth_priv lives only in the veth module's split BTF,
 * struct task_struct in vmlinux. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct veth_priv {
	unsigned int requested_headroom;
	void *peer;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
} __attribute__((preserve_access_index));

unsigned long out[4];

SEC("raw_tp/sys_enter")
int module_types(void *ctx)
{
	struct veth_priv *v = (void *)ctx;
	struct task_struct *t = (void *)bpf_get_current_task();

	out[0] = BPF_CORE_READ(v, requested_headroom);
	out[1] = (unsigned long)BPF_CORE_READ(v, peer);
	out[2] = BPF_CORE_READ(t, pid);
	out[3] = bpf_core_type_exists(struct veth_priv);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
