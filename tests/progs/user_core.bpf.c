/* User-space CO-RE (tests/test_userspace_core.py): one uprobe object, compiled once against
 * v1 of an application's struct data (tests/progs/userspace/data.h), reads the right
 * fields from v1 and v2 builds when relocated against each build's BTF from DWARF. v2
 * moved b into a nested struct: the ___v2 flavor names that path and
 * bpf_core_field_exists picks it, the way tools follow a kernel's renamed fields. pt_regs
 * is the kernel's type: it resolves from the kernel's BTF, listed after the user's. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct data {
	int a;
	long b;
	char name[16];
} __attribute__((preserve_access_index));

struct data___v2 {
	struct {
		long b;
	} inner;
} __attribute__((preserve_access_index));

struct pt_regs {
	unsigned long di;
} __attribute__((preserve_access_index));

struct seen {
	__s64 a;
	__s64 b;
	char name[16];
	__u32 via_inner;
	__u32 pid;
};

#define MAX_SEEN 8

struct seen seen[MAX_SEEN];
__u32 hits;
__u64 data_size;
__u64 regs_di_off;

SEC("uprobe")
int on_process(struct pt_regs *ctx)
{
	struct data *d = (void *)ctx->di;
	__u32 i = hits;
	struct seen *s;

	if (i >= MAX_SEEN)
		return 0;
	s = &seen[i];
	s->a = BPF_CORE_READ_USER(d, a);
	if (bpf_core_field_exists(struct data___v2, inner)) {
		s->b = BPF_CORE_READ_USER((struct data___v2 *)d, inner.b);
		s->via_inner = 1;
	} else {
		s->b = BPF_CORE_READ_USER(d, b);
	}
	bpf_core_read_user(s->name, sizeof(s->name), &d->name);
	s->pid = bpf_get_current_pid_tgid() >> 32;
	data_size = bpf_core_type_size(struct data);
	regs_di_off = bpf_core_field_offset(struct pt_regs, di);
	hits = i + 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
