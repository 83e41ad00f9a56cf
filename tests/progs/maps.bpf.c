/* Map definitions of every flavour: BTF-defined, map-in-map with initial values,
 * prog_array with a program slot, pinning. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, int); __type(value, int); } in1 SEC(".maps"), in2 SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 4); __type(key, int); __array(values, struct inner); } outer SEC(".maps") = { .values = { [0] = &in1, [2] = &in2 } };
SEC("tp/x/y") int tail(void *c) { return 0; }
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2); __type(key, int); __array(values, int (void *)); } jmp SEC(".maps") = { .values = { [1] = (void *)&tail } };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, int); __type(value, long); __uint(pinning, LIBBPF_PIN_BY_NAME); } h SEC(".maps");
SEC("tp/a/b") int p(void *c) { int k=0; long *v = bpf_map_lookup_elem(&h, &k); bpf_tail_call(c, &jmp, 1); return v ? *v : 0; }
char L[] SEC("license") = "GPL";
