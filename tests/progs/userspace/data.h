/* struct data in two versions of one application (and of libfoo): v2 inserts fields
 * before `a`, moves `b` into a nested struct and `name` further back, so every field
 * the probe reads is at another offset. */
#ifndef DATA_H
#define DATA_H

#ifdef V2
struct data {
	long seq;
	int flags;
	int a;
	struct {
		int kind;
		long b;
	} inner;
	char tag[4];
	char name[16];
};
#define DATA_FILL(d, i) do { (d)->seq = SEQ(i); (d)->flags = FLAGS; (d)->inner.kind = KIND; \
	memcpy((d)->tag, "TAG", 4); } while (0)
#define DATA_B(d) ((d)->inner.b)
#else
struct data {
	int a;
	long b;
	char name[16];
};
#define DATA_FILL(d, i) do { } while (0)
#define DATA_B(d) ((d)->b)
#endif

/* the values the probe must read on call i, and v2's fillers around them */
#define A(i) (1000 + 111 * (i))
#define B(i) (0x1122334455660000L + (i))
#define SEQ(i) (0x5e9000000000L + (i))
#define FLAGS 0x7777
#define KIND 0x4444
#define CALLS 3

/* gcc would otherwise clone process() (process.isra.0) and call the clone */
#ifdef __clang__
#define NOIPA __attribute__((noinline, used))
#else
#define NOIPA __attribute__((noinline, noipa, used))
#endif

#endif
