"""The only door to the kernel: bpf(2) and friends through ctypes.

Everything above this package builds attribute structs as bytes and gets back file
descriptors or exceptions; nothing else calls the kernel.
"""

from .bpf import BPF_BTF_LOAD, FD, BPFCommand, bpf, btf_load

__all__ = ["BPF_BTF_LOAD", "FD", "BPFCommand", "bpf", "btf_load"]
