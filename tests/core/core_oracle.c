/* libbpf as the CO-RE oracle: open an object with btf_custom_path set to a target BTF and
 * load it with libbpf's debug log on. libbpf relocates (and logs every CO-RE decision)
 * before it loads programs, so the log holds its verdict on every relocation even when
 * the programs then fail to load on this kernel. Usage: core_oracle OBJ TARGET_BTF */
#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>

static int print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	return vfprintf(stdout, fmt, args);
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;

	if (argc != 3) {
		fprintf(stderr, "usage: %s OBJ TARGET_BTF\n", argv[0]);
		return 2;
	}
	libbpf_set_print(print);
	LIBBPF_OPTS(bpf_object_open_opts, opts, .btf_custom_path = argv[2]);
	obj = bpf_object__open_file(argv[1], &opts);
	if (!obj) {
		printf("ORACLE: open failed\n");
		return 1;
	}
	printf("ORACLE: load %d\n", bpf_object__load(obj));
	bpf_object__close(obj);
	return 0;
}
