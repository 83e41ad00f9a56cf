/* CO-RE relocations whose minimized BTF needs more than bpftool's gen min_core_btf keeps,
 * meant for the hand-built target BTF of tests/btfgen/test_beyond_bpftool.py:
 * - two target candidates (foo, foo___v2): x matches both, y only foo___v2;
 * - a field offset ambiguity (bar.a at different offsets in bar and bar___2);
 * - a type relocation that does not match because a pointee differs, next to a field
 *   relocation that keeps the pointer (a void pointee would match);
 * - type tags (__rcu, __user), a FWD and DECL_TAGs on the access and match paths. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct foo {
	int x;
	int y;
} __attribute__((preserve_access_index));

struct bar {
	int a;
} __attribute__((preserve_access_index));

typedef void *hnd;

struct holder {
	hnd h;
	int n;
} __attribute__((preserve_access_index));

struct holder___m {
	void *h;
} __attribute__((preserve_access_index));

struct opaque;

struct task_struct {
	int pid;
	struct task_struct *real_parent;
	const char *name;
	struct opaque *op;
} __attribute__((preserve_access_index));

struct task_struct___m {
	int pid;
	struct task_struct___m *real_parent;
	const char *name;
	struct opaque *op;
} __attribute__((preserve_access_index));

typedef struct task_struct *task_ptr;
typedef struct opaque *opaque_ptr;

__u64 out[16];

SEC("tp/btfgen/cases")
int cases(void *ctx)
{
	struct foo *f = (void *)ctx;
	struct holder *h = (void *)ctx;
	struct task_struct *t = (void *)ctx;

	out[0] = BPF_CORE_READ(f, x);
	out[1] = BPF_CORE_READ(f, y);
	out[2] = (__u64)BPF_CORE_READ(h, h);
	out[3] = bpf_core_type_matches(struct holder___m);
	out[4] = bpf_core_type_exists(hnd);
	out[5] = bpf_core_type_matches(hnd);
	out[6] = BPF_CORE_READ(t, real_parent, pid);
	out[7] = (__u64)BPF_CORE_READ(t, name);
	out[8] = bpf_core_field_exists(t->op);
	out[9] = bpf_core_type_matches(struct task_struct___m);
	out[10] = bpf_core_type_exists(task_ptr);
	out[11] = bpf_core_type_exists(opaque_ptr);
	out[12] = bpf_core_type_size(task_ptr);
	return 0;
}

SEC("tp/btfgen/ambiguous")
int ambiguous(void *ctx)
{
	struct bar *b = (void *)ctx;

	out[15] = BPF_CORE_READ(b, a);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
