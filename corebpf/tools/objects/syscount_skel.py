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
        'bpfel': '540d812ab46a01ed7ff79916f0353ed88d364a38ceb4d9498d82fcf0928992ad',
        'bpfeb': '367ac413da947e9b7a7aaede793b0bca2790b171c95579b4ac39f5047e43d1a7',
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
        ('count_by_process', ctypes.c_bool),
        ('measure_latency', ctypes.c_bool),
        ('filter_failed', ctypes.c_bool),
        ('filter_errno', ctypes.c_int32),
        ('filter_pid', ctypes.c_uint32),
        ('filter_cg', ctypes.c_bool),
        ('_pad_13', ctypes.c_uint8 * 3),
        ('sys_exit_tp.zero', DataT),
    )

    use_ringbuf: bool
    count_by_process: bool
    measure_latency: bool
    filter_failed: bool
    filter_errno: int
    filter_pid: int
    filter_cg: bool


class SyscountMaps(_skel.Maps):
    """The maps of syscount.bpfel.o."""

    rodata: _skel.MapView[int, object]
    start: _skel.MapView[int, int]
    data: _skel.MapView[int, DataT]
    cgroup_map: _skel.MapView[int, int]


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
