/* Types of every BTF kind clang can emit, for the BTF reader/printer tests. */
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;

#define SEC(name) __attribute__((section(name), used))
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __ttag(x) __attribute__((btf_type_tag(x)))

enum color { RED, GREEN = 5, BLUE = -1 };
enum big : unsigned long long { HUGE = 0xffffffff00000000ULL, SMALL = 1 };
enum sbig : long long { NEG = -0x100000000LL, POS = 0x100000000LL };

struct bits {
	u32 a : 3;
	u32 b : 29;
	s8 c : 2;
	u64 d : 40;
	u64 e;
};

struct __attribute__((packed)) packed {
	char c;
	u64 v;
	short s;
};

union anon_holder {
	struct {
		int x, y;
	};
	union {
		long l;
		char bytes[8];
	} u;
	enum { ANON_A, ANON_B } e;
};

struct node {
	struct node *next;
	const volatile int *restrict p;
	int (*cb)(struct node *, u32 flags);
	void (*fns[2])(void);
	int grid[3][4];
	char flex[];
};

struct tagged {
	int __tag("kfunc_field") f;
	int __ttag("user") *uptr;
} __tag("struct_tag");

struct fwd_only;
union fwd_union;

struct uses {
	struct fwd_only *f;
	union fwd_union *u;
	float fl;
	double db;
	_Bool flag;
	__int128 wide;
	enum color col;
	enum big bg;
	enum sbig sb;
	struct bits bits;
	struct packed pk;
	union anon_holder ah;
	struct node nd;
	struct tagged tg;
};

struct uses g_uses;
int g_counter = 1;
const volatile int g_ro = 7;
static int g_static __attribute__((used));

__tag("func_tag") int helper(struct uses *u, int __tag("param_tag") x)
{
	return u->nd.grid[1][2] + x + g_static;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int prog(void *ctx)
{
	g_counter += helper(&g_uses, g_ro);
	return 0;
}

char _license[] SEC("license") = "GPL";
