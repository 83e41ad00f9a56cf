/* Every type shape a skeleton generates, and a program that exercises the skeleton's
 * run time: read-only filters, counters in .bss/.data/.data.cfg, a hash map with struct
 * keys, a per-CPU array, ring buffer and perf event array events.
 * skel_stale.bpf.c builds it again with a different struct event (a stale skeleton). */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16

/* kernel types: CO-RE relocated, never generated */
struct task_struct {
	int tgid;
	struct task_struct *real_parent;
} __attribute__((preserve_access_index));

struct trace_event_raw_sys_enter {
	long int id;
	unsigned long args[6];
} __attribute__((preserve_access_index));

enum level { LVL_LOW = -2, LVL_MID = 0, LVL_HIGH = 7 };
enum big_flags : unsigned long long { FLAG_LOW = 1, FLAG_TOP = 0x8000000000000000ULL };
enum wide : long long { WIDE_NEG = -0x100000000LL, WIDE_POS = 0x200000000LL };

struct flags {
	__u8 a : 6;
	__u16 b : 6;	/* crosses the first byte */
	__s16 c : 4;	/* signed */
	__u32 d : 20;
	__u64 e : 30;	/* crosses the first 32-bit word */
	__s64 f : 33;	/* signed, 33 bits */
	__u8 g : 1;
};

struct __attribute__((packed)) pbits {
	__u8 x;
	__u32 y : 12;	/* starts in byte 1 of a packed struct */
	__s32 z : 20;
};

struct sample {
	__u32 id;
	union {			/* anonymous union */
		__u32 as_u32;
		__u8 as_bytes[4];
	};
	struct {		/* anonymous struct */
		__u16 major, minor;
	};
	struct {		/* named member of an anonymous type */
		__u64 when;
		char tag[8];
	} inner;
	union value {
		__s64 i;
		__u64 u;
	} val;
	int m[2][3];
	char name[12];
	enum level lvl;
	enum big_flags bf;
	enum wide w;
	struct flags fl;
	struct pbits pb;
	void *ptr;
	struct sample *next;
	bool ok;
};

#ifndef SKEL_STALE
struct event {
	__u32 pid;
	__u32 ppid;
	__u64 seq;
	enum level lvl;
	__s16 delta;
	char comm[TASK_COMM_LEN];
	char filename[32];
	int m[2][3];
	struct flags fl;
};
#else
struct event {
	__u64 pid;
	__u32 ppid;
	__u64 seq;
	enum level lvl;
	__s16 delta;
	char comm[TASK_COMM_LEN];
	char filename[32];
	int m[2][3];
	struct flags fl;
};
#endif

struct key {
	__u32 pid;
	char comm[TASK_COMM_LEN];
};

struct stat {
	__u64 hits;
	__u64 bytes;
};

/* in the BTF only through a global function's parameter; the program gets it by a
 * pointer cast of a map value */
struct cast_only {
	__u64 a;
	__u32 b;
	__u32 c;
};

/* generated only when asked for (--type): another global function's parameter */
struct asked {
	__u16 port;
	__u8 proto;
	char host[5];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
	__type(value, struct event);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(int));
	__uint(value_size, sizeof(int));
} perf_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, struct key);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stat);
} pcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sample);
} samples SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64[2]);
} scratch SEC(".maps");

const volatile __u32 target_pid = 0;
const volatile __u32 target_ppid = 0;
const volatile char prefix[8] = "";
const volatile bool verbose = false;
const volatile enum level min_level = LVL_LOW;
const volatile __s8 small = 0;
const volatile __u64 big = 0;

__u64 hits = 0;
__u64 execs = 0;
__u64 other_hits = 0;
__u64 total = 0;
__u64 stepped = 0;

__s32 bump = 1;
__u64 seq = 100;

__u32 step SEC(".data.cfg") = 3;
char label[6] SEC(".data.cfg") = "cfg";

__noinline int fill_cast(struct cast_only *c)
{
	if (!c)
		return 0;
	c->b += 1;
	return c->b;
}

__noinline int fill_asked(struct asked *a)
{
	if (!a)
		return 0;
	return a->port + 1;
}

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct key k = {};
	struct event e = {};
	struct stat *st;
	__u32 zero = 0;
	__u64 one = 1, *n;
	void *buf;

	k.pid = bpf_get_current_pid_tgid() >> 32;
	if (k.pid != target_pid)
		return 0;
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	__sync_fetch_and_add(&hits, 1);
	__sync_fetch_and_add(&total, bump);
	__sync_fetch_and_add(&stepped, step);
	n = bpf_map_lookup_elem(&counts, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &k, &one, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&pcpu, &zero);
	if (st) {
		st->hits++;
		st->bytes += sizeof(e);
	}
	buf = bpf_map_lookup_elem(&scratch, &zero);
	fill_cast((struct cast_only *)buf);
	fill_asked((struct asked *)buf);

	e.pid = k.pid;
	e.seq = seq++;
	e.lvl = verbose ? LVL_HIGH : LVL_LOW;
	e.delta = -7;
	e.m[1][2] = 12;
	e.m[0][1] = -1;
	e.fl.c = -3;
	e.fl.e = 0x2345678;
	e.fl.f = -5;
	__builtin_memcpy(e.comm, k.comm, sizeof(e.comm));
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	return 0;
}

SEC("tp/syscalls/sys_enter_execve")
int on_execve(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct event e = {};

	e.ppid = BPF_CORE_READ(task, real_parent, tgid);
	if (e.ppid != target_ppid)
		return 0;
	__sync_fetch_and_add(&execs, 1);
	e.pid = bpf_get_current_pid_tgid() >> 32;
	e.seq = seq++;
	e.lvl = LVL_MID;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_probe_read_user_str(e.filename, sizeof(e.filename), (void *)ctx->args[0]);
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
	return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) == target_pid)
		__sync_fetch_and_add(&other_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
