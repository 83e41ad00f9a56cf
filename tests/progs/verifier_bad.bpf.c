/* A program the verifier refuses: a map value read without the NULL check. Tests that a
 * load error shows the verifier's error line and the instruction it refused. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int no_null_check(void *ctx)
{
	__u32 key = bpf_get_current_pid_tgid() >> 32;
	__u64 t = bpf_ktime_get_ns();   /* a few lines of log before the refusal */
	__u64 *n;

	t ^= bpf_get_smp_processor_id();
	t ^= bpf_get_prandom_u32();
	t ^= bpf_ktime_get_ns();
	t ^= bpf_get_current_uid_gid();
	key ^= t & 0xf;
	n = bpf_map_lookup_elem(&counts, &key);
	return *n;  /* n may be NULL */
}

char LICENSE[] SEC("license") = "GPL";
