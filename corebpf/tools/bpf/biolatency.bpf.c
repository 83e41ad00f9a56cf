/* biolatency: block I/O latency, from issue (or, with targ_queued, from insertion into
 * the I/O scheduler) to completion, as log2 histograms in `hists`.
 * Two sets of programs on the block_rq_* tracepoints; user space loads one:
 *   *_btf: tp_btf (5.5+), *_raw: raw_tp (4.17+).
 * Like libbpf-tools, user space also leaves block_rq_insert_* unloaded unless -Q.
 * block_rq_insert and block_rq_issue lost their first argument (the request_queue) in
 * 5.11; which one this kernel has is decided here, from its BTF (the tracepoint's
 * btf_trace_* typedef, through CO-RE type matching) or, without those typedefs (before
 * 5.5), from struct hd_struct, which went away in the same release. Options as libbpf-tools' biolatency: targ_ms (-m), targ_queued (-Q),
 * targ_per_disk (-D), targ_per_flag (-F), filter_dev/targ_dev (-d: MKDEV(major, minor)
 * with 20 minor bits), filter_cg (-c: the cgroup's fd in cgroup_map[0]). */
#include "common.bpf.h"

#define MAX_ENTRIES 10240
#define MINORBITS 20
#define MKDEV(ma, mi) (((ma) << MINORBITS) | (mi))

struct hd_struct {
	int partno;
} __attribute__((preserve_access_index));

struct gendisk {
	int major;
	int first_minor;
} __attribute__((preserve_access_index));

struct elevator_queue;

struct request_queue {
	struct elevator_queue *elevator;
} __attribute__((preserve_access_index));

struct request {
	struct request_queue *q;
	unsigned int cmd_flags;
} __attribute__((preserve_access_index));

/* where the disk is: rq->rq_disk before 5.17, rq->q->disk since */
struct request_queue___x {
	struct gendisk *disk;
} __attribute__((preserve_access_index));

struct request___x {
	struct request_queue___x *q;
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

/* the two signatures of block_rq_insert/block_rq_issue, as the kernel's BTF names them */
typedef void (*btf_trace_block_rq_insert___new)(void *, struct request *);
typedef void (*btf_trace_block_rq_insert___old)(void *, struct request_queue *, struct request *);

struct hist_key {
	__u32 cmd_flags;
	__u32 dev;
};

struct hist {
	__u32 slots[MAX_SLOTS];
};

const volatile bool targ_per_disk = false;
const volatile bool targ_per_flag = false;
const volatile bool targ_queued = false;
const volatile bool targ_ms = false;
const volatile bool filter_dev = false;
const volatile __u32 targ_dev = 0;

COREBPF_CGROUP_FILTER;

/* When each request (by address) started, in ns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, __u64);
	__type(value, __u64);
} start SEC(".maps");

/* Histograms by (cmd_flags if -F, dev if -D), both 0 otherwise. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_ENTRIES);
	__type(key, struct hist_key);
	__type(value, struct hist);
} hists SEC(".maps");

static __always_inline struct gendisk *rq_disk(struct request *rq)
{
	struct request___x *r = (void *)rq;

	if (bpf_core_field_exists(r->rq_disk))
		return BPF_CORE_READ(r, rq_disk);
	return BPF_CORE_READ(r, q, disk);
}

static __always_inline __u32 rq_dev(struct request *rq)
{
	struct gendisk *disk = rq_disk(rq);

	return disk ? MKDEV(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor)) : 0;
}

/* The request argument of block_rq_insert/block_rq_issue. */
static __always_inline struct request *rq_arg(__u64 *ctx)
{
	if (bpf_core_type_matches(btf_trace_block_rq_insert___new))
		return (struct request *)ctx[0];
	if (bpf_core_type_matches(btf_trace_block_rq_insert___old))
		return (struct request *)ctx[1];
	if (bpf_core_type_exists(struct hd_struct))
		return (struct request *)ctx[1];
	return (struct request *)ctx[0];
}

static __always_inline int rq_start(struct request *rq, bool issue)
{
	__u64 ts, key = (__u64)rq;

	if (!in_target_cgroup())
		return 0;
	/* with an I/O scheduler, -Q timed this request from its insertion already */
	if (issue && targ_queued && BPF_CORE_READ(rq, q, elevator))
		return 0;
	ts = bpf_ktime_get_ns();
	if (filter_dev && rq_dev(rq) != targ_dev)
		return 0;
	bpf_map_update_elem(&start, &key, &ts, BPF_ANY);
	return 0;
}

static __always_inline int rq_done(struct request *rq)
{
	static const struct hist zero;
	__u64 slot, *tsp, ts = bpf_ktime_get_ns(), key = (__u64)rq;
	struct hist_key hkey = {};
	struct hist *histp;
	__s64 delta;

	if (!in_target_cgroup())
		return 0;
	tsp = bpf_map_lookup_elem(&start, &key);
	if (!tsp)
		return 0;
	delta = (__s64)(ts - *tsp);
	if (delta < 0)
		goto cleanup;

	if (targ_per_disk)
		hkey.dev = rq_dev(rq);
	if (targ_per_flag)
		hkey.cmd_flags = BPF_CORE_READ(rq, cmd_flags);
	histp = bpf_map_lookup_elem(&hists, &hkey);
	if (!histp) {
		bpf_map_update_elem(&hists, &hkey, &zero, BPF_NOEXIST);
		histp = bpf_map_lookup_elem(&hists, &hkey);
		if (!histp)
			goto cleanup;
	}
	slot = log2_u64((__u64)delta / (targ_ms ? 1000000U : 1000U));
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&histp->slots[slot], 1);

cleanup:
	bpf_map_delete_elem(&start, &key);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int block_rq_insert_btf(__u64 *ctx)
{
	return rq_start(rq_arg(ctx), false);
}

SEC("tp_btf/block_rq_issue")
int block_rq_issue_btf(__u64 *ctx)
{
	return rq_start(rq_arg(ctx), true);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete_btf, struct request *rq, int error, unsigned int nr_bytes)
{
	return rq_done(rq);
}

SEC("raw_tp/block_rq_insert")
int block_rq_insert_raw(__u64 *ctx)
{
	return rq_start(rq_arg(ctx), false);
}

SEC("raw_tp/block_rq_issue")
int block_rq_issue_raw(__u64 *ctx)
{
	return rq_start(rq_arg(ctx), true);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(block_rq_complete_raw, struct request *rq, int error, unsigned int nr_bytes)
{
	return rq_done(rq);
}
