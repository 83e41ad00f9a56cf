"""Skeleton of syscount.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'syscount.bpfel.o',
        'bpfeb': 'syscount.bpfeb.o',
    },
    digests={
        'bpfel': '4ede13d9b09e499d7b3d945810541719c224de7bd466a2bf34627fc940a13e79',
        'bpfeb': '0ae75e1e70362bc77d9b184375a5729aa962bbf861a6ece2fd5dfeb11d68d2c8',
    },
)


class DataT(_skel.Struct):
    """struct data_t (32 bytes)"""

    _c_name_ = 'data_t'
    _pack_ = 1
    _fields_ = (
        ('count', ctypes.c_uint64),
        ('total_ns', ctypes.c_uint64),
        ('comm', ctypes.c_char * 16),
    )

    count: int
    total_ns: int
    comm: str


class SyscountRodata(_skel.DataSection):
    """.rodata of syscount.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
        ('filter_cg', ctypes.c_bool),
        ('count_by_process', ctypes.c_bool),
        ('measure_latency', ctypes.c_bool),
        ('filter_failed', ctypes.c_bool),
        ('_pad_5', ctypes.c_uint8 * 3),
        ('filter_errno', ctypes.c_int32),
        ('filter_pid', ctypes.c_uint32),
        ('sys_exit_tp.zero', DataT),
    )

    use_ringbuf: bool
    filter_cg: bool
    count_by_process: bool
    measure_latency: bool
    filter_failed: bool
    filter_errno: int
    filter_pid: int


class SyscountMaps(_skel.Maps):
    """The maps of syscount.bpfel.o."""

    rodata: _skel.MapView[int, object]
    cgroup_map: _skel.MapView[int, int]
    start: _skel.MapView[int, int]
    data: _skel.MapView[int, DataT]


class SyscountPrograms(_skel.Programs):
    """The programs of syscount.bpfel.o."""

    sys_enter_tp: _skel.Program
    sys_exit_tp: _skel.Program


class Syscount(_skel.Skeleton):
    """syscount.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct data_t', DataT),
    )
    _sections_ = (
        ('.rodata', SyscountRodata),
    )
    _maps_class_ = SyscountMaps
    _progs_class_ = SyscountPrograms

    rodata: SyscountRodata
    maps: SyscountMaps
    progs: SyscountPrograms
