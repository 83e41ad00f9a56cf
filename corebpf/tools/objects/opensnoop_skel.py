"""Skeleton of opensnoop.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'opensnoop.bpfel.o',
        'bpfeb': 'opensnoop.bpfeb.o',
    },
    digests={
        'bpfel': '887484b27a97d860bb89151ff66412c02139f56054dad703b09e3c25c7312d82',
        'bpfeb': '6afc345203a3a7ce5366c41b2ef0529035ffbc96b6d568fe116852c88e5a4930',
    },
)


class ArgsT(_skel.Struct):
    """struct args_t (16 bytes)"""

    _c_name_ = 'args_t'
    _pack_ = 1
    _fields_ = (
        ('fname', ctypes.c_uint64),
        ('flags', ctypes.c_int32),
        ('mode', ctypes.c_uint32),
    )

    fname: int
    flags: int
    mode: int


class Event(_skel.Struct):
    """struct event (296 bytes)"""

    _c_name_ = 'event'
    _pack_ = 1
    _fields_ = (
        ('pid', ctypes.c_int32),
        ('tid', ctypes.c_int32),
        ('uid', ctypes.c_uint32),
        ('ret', ctypes.c_int32),
        ('flags', ctypes.c_int32),
        ('mode', ctypes.c_uint32),
        ('comm', ctypes.c_char * 16),
        ('fname', ctypes.c_char * 255),
        ('_pad_295', ctypes.c_uint8 * 1),
    )

    pid: int
    tid: int
    uid: int
    ret: int
    flags: int
    mode: int
    comm: str
    fname: str


class OpensnoopRodata(_skel.DataSection):
    """.rodata of opensnoop.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
        ('_pad_1', ctypes.c_uint8 * 3),
        ('targ_pid', ctypes.c_int32),
        ('targ_tgid', ctypes.c_int32),
        ('targ_uid', ctypes.c_uint32),
        ('targ_failed', ctypes.c_bool),
    )

    use_ringbuf: bool
    targ_pid: int
    targ_tgid: int
    targ_uid: int
    targ_failed: bool


class OpensnoopMaps(_skel.Maps):
    """The maps of opensnoop.bpfel.o."""

    rodata: _skel.MapView[int, object]
    start: _skel.MapView[int, ArgsT]
    events: _skel.RingBuf[Event]
    heap: _skel.MapView[int, list[Event]]


class OpensnoopPrograms(_skel.Programs):
    """The programs of opensnoop.bpfel.o."""

    tracepoint__syscalls__sys_enter_open: _skel.Program
    tracepoint__syscalls__sys_exit_open: _skel.Program
    tracepoint__syscalls__sys_enter_openat: _skel.Program
    tracepoint__syscalls__sys_exit_openat: _skel.Program
    tracepoint__syscalls__sys_enter_openat2: _skel.Program
    tracepoint__syscalls__sys_exit_openat2: _skel.Program


class Opensnoop(_skel.Skeleton):
    """opensnoop.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct args_t', ArgsT),
        ('struct event', Event),
    )
    _sections_ = (
        ('.rodata', OpensnoopRodata),
    )
    _maps_class_ = OpensnoopMaps
    _progs_class_ = OpensnoopPrograms

    rodata: OpensnoopRodata
    maps: OpensnoopMaps
    progs: OpensnoopPrograms
