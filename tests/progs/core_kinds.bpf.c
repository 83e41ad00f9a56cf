/* Every CO-RE relocation kind against real kernel types, with flavors, anonymous members,
 * arrays, bitfields (a field that is a bitfield on 4.x and a u16 on 5.x+), enums and enum64,
 * type ids and type matches; a .text subprogram carries relocations of its own. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct list_head {
	struct list_head *next, *prev;
} __attribute__((preserve_access_index));

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	unsigned int __state;
	char comm[16];
	struct list_head children;
	void *stack;
	unsigned int flags;
} __attribute__((preserve_access_index));

struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
	union {
		unsigned int skc_hash;
		unsigned short skc_u16hashes[2];
	};
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	unsigned int sk_protocol : 8;
	unsigned short sk_type;
	int sk_rcvbuf;
} __attribute__((preserve_access_index));

struct file {
	unsigned int f_flags;
	long long f_pos;
} __attribute__((preserve_access_index));

struct mm_struct___flav {
	unsigned long total_vm;
} __attribute__((preserve_access_index));

struct not_a_kernel_type {
	int x;
} __attribute__((preserve_access_index));

enum pid_type { PIDTYPE_PID, PIDTYPE_TGID, PIDTYPE_PGID, PIDTYPE_SID, PIDTYPE_MAX };
enum bpf_map_type___local { BPF_MAP_TYPE_RINGBUF___local = 27, BPF_MAP_TYPE_NOPE___local = 9999 };
enum bpf_map_type { BPF_MAP_TYPE_UNSPEC, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_RINGBUF = 27 };

typedef unsigned int u32_local;

__u64 out[64];

static __attribute__((noinline)) int in_subprog(struct file *f)
{
	out[40] = BPF_CORE_READ(f, f_flags);
	out[41] = bpf_core_field_offset(f->f_pos);
	return 0;
}

SEC("raw_tp/sys_enter")
int kinds(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct sock *sk = (void *)ctx;

	out[0] = BPF_CORE_READ(t, real_parent, tgid);
	out[1] = bpf_core_field_exists(t->__state);
	if (bpf_core_field_exists(t->__state))
		out[2] = BPF_CORE_READ(t, __state);
	else
		out[2] = BPF_CORE_READ((struct task_struct___old *)t, state);
	out[3] = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	out[4] = bpf_core_field_size(sk->sk_protocol);
	out[5] = __builtin_preserve_field_info(sk->sk_rcvbuf, BPF_FIELD_SIGNED);
	out[6] = __builtin_preserve_field_info(sk->sk_type, BPF_FIELD_SIGNED);
	out[7] = bpf_core_field_offset(sk->__sk_common.skc_hash);
	out[8] = bpf_core_field_offset(sk->__sk_common.skc_u16hashes[1]);
	out[9] = bpf_core_field_offset(t->comm[3]);
	out[10] = bpf_core_field_size(t->comm);
	out[11] = bpf_core_field_offset(t->children.prev);
	out[12] = bpf_core_type_exists(struct not_a_kernel_type);
	out[13] = bpf_core_type_exists(struct mm_struct___flav);
	out[14] = bpf_core_type_size(struct task_struct);
	out[15] = bpf_core_type_matches(struct list_head);
	out[16] = bpf_core_type_matches(struct file);
	out[17] = bpf_core_type_id_kernel(struct sock);
	out[18] = bpf_core_type_id_local(struct sock);
	out[19] = bpf_core_enum_value(enum pid_type, PIDTYPE_MAX);
	out[20] = bpf_core_enum_value_exists(enum pid_type, PIDTYPE_SID);
	out[21] = bpf_core_enum_value_exists(enum bpf_map_type___local, BPF_MAP_TYPE_NOPE___local);
	out[22] = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
	out[23] = bpf_core_type_size(u32_local);
	out[24] = bpf_core_field_offset(t->stack);
	out[25] = BPF_CORE_READ(t, flags);
	out[26] = __builtin_preserve_field_info(sk->sk_protocol, BPF_FIELD_LSHIFT_U64);
	out[27] = __builtin_preserve_field_info(sk->sk_protocol, BPF_FIELD_RSHIFT_U64);
	out[28] = bpf_core_type_exists(u32_local);
	return in_subprog((void *)ctx);
}

char LICENSE[] SEC("license") = "GPL";
