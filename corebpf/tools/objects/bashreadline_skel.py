"""Skeleton of bashreadline.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'bashreadline.bpfel.o',
        'bpfeb': 'bashreadline.bpfeb.o',
        'x86.bpfel': 'bashreadline.x86.bpfel.o',
        'arm64.bpfel': 'bashreadline.arm64.bpfel.o',
    },
    digests={
        'bpfel': '526baff35ff3bedf5eed59289b07d7c8fdbcb83cc2cb06f2a7b7dc8fc0f64a27',
        'bpfeb': '45bb6aec933a4a673aad6f1cec4238ed99b52f86f8d2bab2333907fe8f0cebba',
        'x86.bpfel': '9fbe3738ea20285c0088b75598c05e3a60efc96b928aefed788e32ff4d1640ad',
        'arm64.bpfel': 'ac8dc7fac58b1729b2474ce12e63412b0e13cc806b13bfc748906d03fa8fbf62',
    },
)


class Event(_skel.Struct):
    """struct event (100 bytes)"""

    _c_name_ = 'event'
    _pack_ = 1
    _fields_ = (
        ('pid', ctypes.c_uint32),
        ('comm', ctypes.c_char * 16),
        ('str', ctypes.c_char * 80),
    )

    pid: int
    comm: str
    str: str


class BashreadlineRodata(_skel.DataSection):
    """.rodata of bashreadline.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
    )

    use_ringbuf: bool


class BashreadlineMaps(_skel.Maps):
    """The maps of bashreadline.bpfel.o."""

    rodata: _skel.MapView[int, object]
    events: _skel.RingBuf[Event]


class BashreadlinePrograms(_skel.Programs):
    """The programs of bashreadline.bpfel.o."""

    printret: _skel.Program


class Bashreadline(_skel.Skeleton):
    """bashreadline.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct event', Event),
    )
    _sections_ = (
        ('.rodata', BashreadlineRodata),
    )
    _maps_class_ = BashreadlineMaps
    _progs_class_ = BashreadlinePrograms

    rodata: BashreadlineRodata
    maps: BashreadlineMaps
    progs: BashreadlinePrograms
