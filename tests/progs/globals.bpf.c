/* Global variables of many BTF types, read-only and writable: what load(rodata=),
 * corebpf run --set and corebpf.globals check values against. */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum mode { MODE_OFF = 0, MODE_ON = 5 };

struct cfg {
	__u16 port;
	char name[4];
	bool on;
};

const volatile __u32 target_uid = 0xFFFFFFFF;
const volatile int delta = 0;
const volatile bool flag = false;
const volatile enum mode mode = MODE_OFF;
const volatile char comm[8] = "";
const volatile __u8 addr[4] = {};
const volatile struct cfg cfg = {};
const volatile __s64 big = 0;

int counter = 1;
__u64 seen = 0;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	if (flag && mode == MODE_ON && target_uid != 0xFFFFFFFF)
		seen += delta + cfg.port + addr[0] + comm[0] + big;
	counter++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
