"""Skeleton of runqlat.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'runqlat.bpfel.o',
        'bpfeb': 'runqlat.bpfeb.o',
    },
    digests={
        'bpfel': '4ae51ffc1bfbbeb121000d811e91bd86582f4204877994d02d65f90fdce4c5c5',
        'bpfeb': 'db637e8f6b3d06172fd096d67812f0f2d880191dddba8b1098d2c9ebf85c8a74',
    },
)


class Hist(_skel.Struct):
    """struct hist (120 bytes)"""

    _c_name_ = 'hist'
    _pack_ = 1
    _fields_ = (
        ('slots', ctypes.c_uint32 * 26),
        ('comm', ctypes.c_char * 16),
    )

    slots: ctypes.Array[ctypes.c_uint32]
    comm: str


class RunqlatRodata(_skel.DataSection):
    """.rodata of runqlat.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
        ('targ_per_process', ctypes.c_bool),
        ('targ_per_thread', ctypes.c_bool),
        ('targ_per_pidns', ctypes.c_bool),
        ('targ_ms', ctypes.c_bool),
        ('_pad_5', ctypes.c_uint8 * 3),
        ('targ_tgid', ctypes.c_uint32),
        ('filter_cg', ctypes.c_bool),
        ('_pad_13', ctypes.c_uint8 * 3),
        ('switched.zero', Hist),
    )

    use_ringbuf: bool
    targ_per_process: bool
    targ_per_thread: bool
    targ_per_pidns: bool
    targ_ms: bool
    targ_tgid: int
    filter_cg: bool


class RunqlatMaps(_skel.Maps):
    """The maps of runqlat.bpfel.o."""

    rodata: _skel.MapView[int, object]
    cgroup_map: _skel.MapView[int, int]
    start: _skel.MapView[int, int]
    hists: _skel.MapView[int, Hist]


class RunqlatPrograms(_skel.Programs):
    """The programs of runqlat.bpfel.o."""

    sched_wakeup_btf: _skel.Program
    sched_wakeup_new_btf: _skel.Program
    sched_switch_btf: _skel.Program
    sched_wakeup_raw: _skel.Program
    sched_wakeup_new_raw: _skel.Program
    sched_switch_raw: _skel.Program


class Runqlat(_skel.Skeleton):
    """runqlat.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct hist', Hist),
    )
    _sections_ = (
        ('.rodata', RunqlatRodata),
    )
    _maps_class_ = RunqlatMaps
    _progs_class_ = RunqlatPrograms

    rodata: RunqlatRodata
    maps: RunqlatMaps
    progs: RunqlatPrograms
