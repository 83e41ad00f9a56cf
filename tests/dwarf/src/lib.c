/* A second compile unit: repeats types from shapes.c (deduplicated into one) and is also
 * built as a shared library. */
#include <stdint.h>

typedef unsigned long long u64;

struct flags {
    unsigned int a : 3;
    unsigned int b : 5;
    signed int c : 7;
    unsigned long long wide : 40;
    _Bool on : 1;
    unsigned char tail;
};

struct lib_state {
    struct flags fl;
    u64 calls;
    struct lib_state *self;
    int grid[3][4][5];
};

struct lib_state lib_state;
const int lib_version = 3;

int lib_touch(struct lib_state *s, int how)
{
    s->calls += how;
    s->fl.b = how;
    return s->grid[how % 3][how % 4][how % 5] + lib_version;
}
