"""Skeleton of bashreadline.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(__file__, {
    'bpfel': 'bashreadline.bpfel.o',
    'bpfeb': 'bashreadline.bpfeb.o',
    'x86.bpfel': 'bashreadline.x86.bpfel.o',
    'arm64.bpfel': 'bashreadline.arm64.bpfel.o',
})

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
    _types_ = {
        'struct event': Event,
    }
    _sections_ = {
        '.rodata': BashreadlineRodata,
    }
    _maps_class_ = BashreadlineMaps
    _progs_class_ = BashreadlinePrograms

    rodata: BashreadlineRodata
    maps: BashreadlineMaps
    progs: BashreadlinePrograms
