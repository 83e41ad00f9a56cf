/* .kconfig externs, as libbpf-tools use them (LINUX_KERNEL_VERSION, CONFIG_*): the loader
 * lays them out, fills them from the kernel's config and fixes their BTF as libbpf does. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

extern int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern int CONFIG_HZ __kconfig __weak;
extern bool CONFIG_COREBPF_NO_SUCH_OPTION __kconfig __weak;

__u64 seen_version = 0;
__u64 seen_bpf_syscall = 0;
__u64 seen_hz = 0;
__u64 seen_missing = 7;

SEC("tracepoint/syscalls/sys_enter_getppid")
int read_config(void *ctx)
{
	seen_version = LINUX_KERNEL_VERSION;
	seen_bpf_syscall = CONFIG_BPF_SYSCALL;
	seen_hz = CONFIG_HZ;
	seen_missing = CONFIG_COREBPF_NO_SUCH_OPTION;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
