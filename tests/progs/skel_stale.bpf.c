/* skel_types.bpf.c with struct event changed (pid widened): a skeleton generated from
 * skel_types must refuse this object. */
#define SKEL_STALE
#include "skel_types.bpf.c"
