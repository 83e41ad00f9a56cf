/* libbpf's own reading of a vmlinux ELF file, as btf__load_vmlinux_btf reads one from its
 * search paths: btf__parse_elf, then what it decided. Usage: btf_parse_elf FILE
 * Prints "types=N pointer_size=P endianness=little|big", or libbpf's error on stderr. */
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct btf *btf;

	if (argc != 2)
		return 2;
	btf = btf__parse_elf(argv[1], NULL);
	if (!btf) {
		fprintf(stderr, "btf__parse_elf: %s\n", strerror(errno));
		return 1;
	}
	printf("types=%u pointer_size=%zu endianness=%s\n", btf__type_cnt(btf) - 1,
	       btf__pointer_size(btf),
	       btf__endianness(btf) == BTF_LITTLE_ENDIAN ? "little" : "big");
	btf__free(btf);
	return 0;
}
