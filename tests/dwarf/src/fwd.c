/* Knows struct lib_state only by name: its DWARF has a declaration, lib.c's the definition. */
struct lib_state;

struct holder {
    struct lib_state *state;
    int n;
};

struct holder the_holder;

int lib_touch(struct lib_state *s, int how);

int hold(struct holder *h)
{
    return lib_touch(h->state, h->n);
}
