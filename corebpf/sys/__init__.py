"""The only door to the kernel: bpf(2) and friends through ctypes.

Everything above this package builds nothing but Python values; attribute structs,
file descriptors and errno live here.
"""

from .calls import (
    BPF_BTF_LOAD,
    FD,
    BatchEnd,
    BPFCommand,
    ProgLoadResult,
    bpf,
    btf_load,
    iter_create,
    link_create,
    map_batch,
    map_create,
    map_elem,
    map_freeze,
    obj_get,
    obj_info,
    obj_pin,
    prog_attach,
    prog_detach,
    prog_load,
    prog_test_run,
    raw_tracepoint_open,
)

__all__ = [
    "BPF_BTF_LOAD",
    "FD",
    "BPFCommand",
    "BatchEnd",
    "ProgLoadResult",
    "bpf",
    "btf_load",
    "iter_create",
    "link_create",
    "map_batch",
    "map_create",
    "map_elem",
    "map_freeze",
    "obj_get",
    "obj_info",
    "obj_pin",
    "prog_attach",
    "prog_detach",
    "prog_load",
    "prog_test_run",
    "raw_tracepoint_open",
]
