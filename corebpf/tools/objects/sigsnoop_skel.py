"""Skeleton of sigsnoop.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'sigsnoop.bpfel.o',
        'bpfeb': 'sigsnoop.bpfeb.o',
    },
    digests={
        'bpfel': 'f2db26b378cb4a89a816ce7859719d20b57153ff2a4e16a72265e28daa00f040',
        'bpfeb': '1899083aab108a2f9e46db4b8477778f774b3eee6a6993cb6e8b6e9081bd90b0',
    },
)


class Event(_skel.Struct):
    """struct event (32 bytes)"""

    _c_name_ = 'event'
    _pack_ = 1
    _fields_ = (
        ('pid', ctypes.c_uint32),
        ('tpid', ctypes.c_int32),
        ('sig', ctypes.c_int32),
        ('ret', ctypes.c_int32),
        ('comm', ctypes.c_char * 16),
    )

    pid: int
    tpid: int
    sig: int
    ret: int
    comm: str


class SigsnoopRodata(_skel.DataSection):
    """.rodata of sigsnoop.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
        ('_pad_1', ctypes.c_uint8 * 3),
        ('filtered_pid', ctypes.c_int32),
        ('target_signal', ctypes.c_int32),
        ('failed_only', ctypes.c_bool),
    )

    use_ringbuf: bool
    filtered_pid: int
    target_signal: int
    failed_only: bool


class SigsnoopMaps(_skel.Maps):
    """The maps of sigsnoop.bpfel.o."""

    rodata: _skel.MapView[int, object]
    events: _skel.RingBuf[Event]
    values: _skel.MapView[int, Event]


class SigsnoopPrograms(_skel.Programs):
    """The programs of sigsnoop.bpfel.o."""

    kill_entry: _skel.Program
    kill_exit: _skel.Program
    tkill_entry: _skel.Program
    tkill_exit: _skel.Program
    tgkill_entry: _skel.Program
    tgkill_exit: _skel.Program
    sig_trace: _skel.Program


class Sigsnoop(_skel.Skeleton):
    """sigsnoop.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct event', Event),
    )
    _sections_ = (
        ('.rodata', SigsnoopRodata),
    )
    _maps_class_ = SigsnoopMaps
    _progs_class_ = SigsnoopPrograms

    rodata: SigsnoopRodata
    maps: SigsnoopMaps
    progs: SigsnoopPrograms
