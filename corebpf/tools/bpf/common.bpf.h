/* Shared by corebpf's tools: the event channel (ring buffer where the kernel has one,
 * else a perf event array), a per-CPU scratch buffer for events too large for the stack,
 * and log2 histogram slots. Our own code; the facts follow libbpf-tools' compat layer. */
#ifndef COREBPF_TOOLS_COMMON_BPF_H
#define COREBPF_TOOLS_COMMON_BPF_H

#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif

#define MAX_SLOTS 27

/* User space clears this (and makes `events` a PERF_EVENT_ARRAY) on kernels without
 * BPF ring buffers, or when a perf buffer is asked for. Frozen .rodata is a constant to
 * the verifier, so the branch not taken is never checked. */
const volatile bool use_ringbuf = true;

#define COREBPF_EVENTS_MAP(value_type)                                  \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                     \
		__uint(max_entries, 256 * 1024);                        \
		__type(value, value_type);                              \
	} events SEC(".maps")

/* The kernel has bpf_ringbuf_output (CO-RE: decided against the target's BTF, so the
 * branch is a constant on every kernel) and user space chose the ring buffer. */
#define HAVE_RINGBUF \
	(bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_ringbuf_output) && use_ringbuf)

#define submit_event(ctx, data, size)                                                 \
	(HAVE_RINGBUF ? bpf_ringbuf_output(&events, (data), (size), 0)                  \
		      : bpf_perf_event_output((ctx), &events, BPF_F_CURRENT_CPU, (data), (size)))

/* One per-CPU scratch value of `type`, for events larger than the 512-byte stack. */
#define COREBPF_HEAP_MAP(value_type)                                    \
	struct {                                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                \
		__uint(max_entries, 1);                                 \
		__type(key, __u32);                                     \
		__type(value, value_type);                              \
	} heap SEC(".maps")

/* -c CGROUP: user space sets filter_cg and puts the cgroup directory's fd in
 * cgroup_map[0] before attaching; in_target_cgroup() is then the filter. */
#define COREBPF_CGROUP_FILTER                                                   \
	const volatile bool filter_cg = false;                                  \
	struct {                                                                \
		__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);                        \
		__uint(max_entries, 1);                                         \
		__type(key, __u32);                                             \
		__type(value, __u32);                                           \
	} cgroup_map SEC(".maps");                                              \
	static __always_inline bool in_target_cgroup(void)                      \
	{                                                                       \
		return !filter_cg || bpf_current_task_under_cgroup(&cgroup_map, 0); \
	}

static __always_inline __u64 log2_u32(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* floor(log2(v)), 0 for 0 and 1: the slot print_log2_hist expects. */
static __always_inline __u64 log2_u64(__u64 v)
{
	__u32 hi = v >> 32;

	return hi ? log2_u32(hi) + 32 : log2_u32((__u32)v);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#endif
