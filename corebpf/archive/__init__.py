"""The BTF archive: kernels from BTFHub trees, Debian/Ubuntu packages, vmlinux and raw BTF
files, and what is built or checked across all of them."""
