/* Every C shape `corebpf btf from-dwarf` must carry over from DWARF, used so that -O2 keeps it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef unsigned long long u64;
typedef int (*handler_fn)(const char *name, void *arg);

struct node;                       /* forward declaration, completed below */
struct opaque;                     /* never completed: stays a FWD */

enum color { RED, GREEN = 5, BLUE = -3 };
enum big { SMALL = 1, HUGE = 0x123456789aLL };
enum ubig { UB_TOP = 0xffffffffffffffffULL };
enum __attribute__((packed)) tiny { T0, T1 = 200 };

struct flags {
    unsigned int a : 3;
    unsigned int b : 5;
    signed int c : 7;
    unsigned long long wide : 40;
    bool on : 1;
    unsigned char tail;
};

struct node {
    struct node *next;
    const volatile int *restrict cv;
    union {                        /* anonymous union */
        int i;
        float f;
        struct {                   /* anonymous struct */
            short lo, hi;
        };
    };
    int m[2][3];
    char name[16];
    double d;
    long double ld;
    _Bool b;
    handler_fn fn;
    void (*cb)(int, ...);
    enum color color;
    struct flags fl;
    struct opaque *op;
    u64 big;
    int flex[];
};

union value {
    u64 u;
    int64_t s;
    char bytes[8];
    struct flags fl;
};

typedef struct {
    int x, y;
} point_t;

struct __attribute__((packed)) packed {
    char c;
    int i;
    short s : 4;
};

/* globals in .data, .bss and .rodata */
int counter = 7;
static long hidden;
const char banner[] = "shapes";
struct node root;
point_t origin = { 1, 2 };
union value uv;
enum big big_one = HUGE;
enum ubig ubig_one = UB_TOP;
enum tiny tiny_one = T1;
struct packed pk = { 'x', 3, 1 };
volatile int ticks;
handler_fn handlers[4];

static int visit(struct node *n, int depth)
{
    int sum = 0;
    for (; n; n = n->next)
        sum += n->m[depth % 2][depth % 3] + n->fl.a + n->fl.c + (int)n->fl.wide;
    return sum;
}

__attribute__((noinline)) int walk(struct node *head, const char *restrict label, ...)
{
    return visit(head, label[0]) + (int)hidden;
}

__attribute__((noinline)) double mix(union value *v, point_t p, struct packed *q, enum color c)
{
    return (double)v->u + p.x + p.y + q->i + q->s + c;
}

static int call(const char *name, void *arg)
{
    return name[0] + (arg != NULL);
}

int main(int argc, char **argv)
{
    struct node a = { 0 };
    handlers[0] = call;
    a.fn = call;
    a.next = &root;
    root.m[1][2] = argc;
    hidden = (long)argv;
    ticks++;
    return walk(&a, banner) + (int)mix(&uv, origin, &pk, (enum color)tiny_one) +
           (int)big_one + (int)ubig_one + counter + a.fn(argv[0], NULL);
}
