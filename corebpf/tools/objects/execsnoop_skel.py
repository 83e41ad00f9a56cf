"""Skeleton of execsnoop.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'execsnoop.bpfel.o',
        'bpfeb': 'execsnoop.bpfeb.o',
    },
    digests={
        'bpfel': 'dcf10fe66599735dfe7ef92dee16100bc2f85a076c62fb40c747ccc05ecd241e',
        'bpfeb': '1c45f162cba9359f5372f23bf04b63b27fdc32f1920adcbe60bff816e3e4e846',
    },
)


class Event(_skel.Struct):
    """struct event (7720 bytes)"""

    _c_name_ = 'event'
    _pack_ = 1
    _fields_ = (
        ('pid', ctypes.c_int32),
        ('ppid', ctypes.c_int32),
        ('uid', ctypes.c_uint32),
        ('retval', ctypes.c_int32),
        ('args_count', ctypes.c_int32),
        ('args_size', ctypes.c_uint32),
        ('comm', ctypes.c_char * 16),
        ('args', ctypes.c_char * 7680),
    )

    pid: int
    ppid: int
    uid: int
    retval: int
    args_count: int
    args_size: int
    comm: str
    args: str


class ExecsnoopRodata(_skel.DataSection):
    """.rodata of execsnoop.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
        ('ignore_failed', ctypes.c_bool),
        ('_pad_2', ctypes.c_uint8 * 2),
        ('targ_uid', ctypes.c_uint32),
        ('max_args', ctypes.c_int32),
        ('filter_cg', ctypes.c_bool),
    )

    use_ringbuf: bool
    ignore_failed: bool
    targ_uid: int
    max_args: int
    filter_cg: bool


class ExecsnoopMaps(_skel.Maps):
    """The maps of execsnoop.bpfel.o."""

    rodata: _skel.MapView[int, object]
    heap: _skel.MapView[int, list[Event]]
    execs: _skel.MapView[int, Event]
    events: _skel.RingBuf[Event]
    cgroup_map: _skel.MapView[int, int]


class ExecsnoopPrograms(_skel.Programs):
    """The programs of execsnoop.bpfel.o."""

    tracepoint__syscalls__sys_enter_execve: _skel.Program
    tracepoint__syscalls__sys_exit_execve: _skel.Program


class Execsnoop(_skel.Skeleton):
    """execsnoop.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct event', Event),
    )
    _sections_ = (
        ('.rodata', ExecsnoopRodata),
    )
    _maps_class_ = ExecsnoopMaps
    _progs_class_ = ExecsnoopPrograms

    rodata: ExecsnoopRodata
    maps: ExecsnoopMaps
    progs: ExecsnoopPrograms
