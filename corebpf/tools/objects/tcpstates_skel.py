"""Skeleton of tcpstates.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'tcpstates.bpfel.o',
        'bpfeb': 'tcpstates.bpfeb.o',
    },
    digests={
        'bpfel': '61b190c7f527c21dfe848e474fd23c9bbbb6d3d040b9e1b423ec9afc31a07bae',
        'bpfeb': '5e0518f3eb1ba3a1c10a06c4bfd1b2ded037c9e6e75d99599ffc7f2795ca78bd',
    },
)


class Event(_skel.Struct):
    """struct event (96 bytes)"""

    _c_name_ = 'event'
    _pack_ = 1
    _fields_ = (
        ('saddr', ctypes.c_uint8 * 16),
        ('daddr', ctypes.c_uint8 * 16),
        ('skaddr', ctypes.c_uint64),
        ('ts_us', ctypes.c_uint64),
        ('delta_us', ctypes.c_uint64),
        ('pid', ctypes.c_uint32),
        ('oldstate', ctypes.c_int32),
        ('newstate', ctypes.c_int32),
        ('family', ctypes.c_uint16),
        ('sport', ctypes.c_uint16),
        ('dport', ctypes.c_uint16),
        ('comm', ctypes.c_char * 16),
        ('_pad_90', ctypes.c_uint8 * 6),
    )

    saddr: ctypes.Array[ctypes.c_uint8]
    daddr: ctypes.Array[ctypes.c_uint8]
    skaddr: int
    ts_us: int
    delta_us: int
    pid: int
    oldstate: int
    newstate: int
    family: int
    sport: int
    dport: int
    comm: str


class TcpstatesRodata(_skel.DataSection):
    """.rodata of tcpstates.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
        ('filter_by_sport', ctypes.c_bool),
        ('filter_by_dport', ctypes.c_bool),
        ('_pad_3', ctypes.c_uint8 * 1),
        ('target_family', ctypes.c_int16),
    )

    use_ringbuf: bool
    filter_by_sport: bool
    filter_by_dport: bool
    target_family: int


class TcpstatesMaps(_skel.Maps):
    """The maps of tcpstates.bpfel.o."""

    rodata: _skel.MapView[int, object]
    sports: _skel.MapView[int, int]
    dports: _skel.MapView[int, int]
    timestamps: _skel.MapView[int, int]
    events: _skel.RingBuf[Event]


class TcpstatesPrograms(_skel.Programs):
    """The programs of tcpstates.bpfel.o."""

    inet_sock_set_state_tp: _skel.Program


class Tcpstates(_skel.Skeleton):
    """tcpstates.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct event', Event),
    )
    _sections_ = (
        ('.rodata', TcpstatesRodata),
    )
    _maps_class_ = TcpstatesMaps
    _progs_class_ = TcpstatesPrograms

    rodata: TcpstatesRodata
    maps: TcpstatesMaps
    progs: TcpstatesPrograms
