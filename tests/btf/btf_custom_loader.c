/* libbpf itself as the proof that a merged BTF works: open OBJ with btf_custom_path = BTF
 * (libbpf then does CO-RE against that file alone), load it, attach every program, make a
 * syscall for the raw_tp/sys_enter programs to see, and print the .bss map's bytes in hex.
 * libbpf's log goes to stderr. Usage: btf_custom_loader OBJ BTF */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return level == LIBBPF_DEBUG ? 0 : vfprintf(stderr, fmt, args);
}

int main(int argc, char **argv)
{
	unsigned char value[4096];
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct bpf_map *map, *bss = NULL;
	__u32 zero = 0, i, size;
	int err;

	if (argc != 3) {
		fprintf(stderr, "usage: %s OBJ BTF\n", argv[0]);
		return 2;
	}
	libbpf_set_print(print);
	LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = argv[2]);
	obj = bpf_object__open_file(argv[1], &opts);
	if (!obj) {
		fprintf(stderr, "LOADER: open failed\n");
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "LOADER: load failed: %d\n", err);
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__attach(prog)) {
			fprintf(stderr, "LOADER: attach %s failed\n", bpf_program__name(prog));
			return 1;
		}
	}
	getppid();
	bpf_object__for_each_map(map, obj) {
		const char *name = bpf_map__name(map);
		size_t n = strlen(name);

		if (n >= 4 && !strcmp(name + n - 4, ".bss"))
			bss = map;
	}
	size = bss ? bpf_map__value_size(bss) : 0;
	if (!bss || size > sizeof(value) ||
	    bpf_map_lookup_elem(bpf_map__fd(bss), &zero, value)) {
		fprintf(stderr, "LOADER: no readable .bss\n");
		return 1;
	}
	for (i = 0; i < size; i++)
		printf("%02x", value[i]);
	printf("\n");
	bpf_object__close(obj);
	return 0;
}
