"""Skeleton of exitsnoop.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'exitsnoop.bpfel.o',
        'bpfeb': 'exitsnoop.bpfeb.o',
    },
    digests={
        'bpfel': '71f2b7aa3cf597067760e5a4698dd83010d7443f479cd89fdc4660b4e4f7f582',
        'bpfeb': 'd32404616c710d7c5bda8982b2470b86be19224a9e6c5dbc158ee6b143a06fad',
    },
)


class Event(_skel.Struct):
    """struct event (56 bytes)"""

    _c_name_ = 'event'
    _pack_ = 1
    _fields_ = (
        ('start_time', ctypes.c_uint64),
        ('exit_time', ctypes.c_uint64),
        ('pid', ctypes.c_uint32),
        ('tid', ctypes.c_uint32),
        ('ppid', ctypes.c_uint32),
        ('sig', ctypes.c_uint32),
        ('exit_code', ctypes.c_int32),
        ('comm', ctypes.c_char * 16),
        ('_pad_52', ctypes.c_uint8 * 4),
    )

    start_time: int
    exit_time: int
    pid: int
    tid: int
    ppid: int
    sig: int
    exit_code: int
    comm: str


class ExitsnoopRodata(_skel.DataSection):
    """.rodata of exitsnoop.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
        ('_pad_1', ctypes.c_uint8 * 3),
        ('target_pid', ctypes.c_int32),
        ('trace_failed_only', ctypes.c_bool),
        ('trace_by_process', ctypes.c_bool),
        ('filter_cg', ctypes.c_bool),
    )

    use_ringbuf: bool
    target_pid: int
    trace_failed_only: bool
    trace_by_process: bool
    filter_cg: bool


class ExitsnoopMaps(_skel.Maps):
    """The maps of exitsnoop.bpfel.o."""

    rodata: _skel.MapView[int, object]
    events: _skel.RingBuf[Event]
    cgroup_map: _skel.MapView[int, int]


class ExitsnoopPrograms(_skel.Programs):
    """The programs of exitsnoop.bpfel.o."""

    sched_process_exit: _skel.Program


class Exitsnoop(_skel.Skeleton):
    """exitsnoop.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct event', Event),
    )
    _sections_ = (
        ('.rodata', ExitsnoopRodata),
    )
    _maps_class_ = ExitsnoopMaps
    _progs_class_ = ExitsnoopPrograms

    rodata: ExitsnoopRodata
    maps: ExitsnoopMaps
    progs: ExitsnoopPrograms
