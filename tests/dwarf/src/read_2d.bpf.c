/* A CO-RE read through a 2-D array of a user-space struct (shapes.c's struct node), compiled
 * against an older layout where m is the first member. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct node {
    int m[2][3];
} __attribute__((preserve_access_index));

struct node *target_node;

SEC("uprobe")
int read_m12(void *ctx)
{
    int v = 0;

    bpf_probe_read_user(&v, sizeof(v), &target_node->m[1][2]);
    return v;
}

char LICENSE[] SEC("license") = "GPL";
