"""Skeleton of tcpconnect.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'tcpconnect.bpfel.o',
        'bpfeb': 'tcpconnect.bpfeb.o',
        'x86.bpfel': 'tcpconnect.x86.bpfel.o',
        'arm64.bpfel': 'tcpconnect.arm64.bpfel.o',
    },
    digests={
        'bpfel': '5899b9ff61c6a19acb11990895ad8712b4e28785b9bb2378451a88ab48cdf849',
        'bpfeb': '7e9e10661f35b84ba8c7dc544e3baf149b8e1a266c132e914952f0747441ba42',
        'x86.bpfel': '499e5d6e9259b44e6c03b38d5e818093fa81a9849516145c54dfa7bfaada46e1',
        'arm64.bpfel': 'a5645989952bcca237a20e51a10bb3df64af185846a5260b46339b0a133f1e60',
    },
)


class Event(_skel.Struct):
    """struct event (72 bytes)"""

    _c_name_ = 'event'
    _pack_ = 1
    _fields_ = (
        ('saddr', ctypes.c_uint8 * 16),
        ('daddr', ctypes.c_uint8 * 16),
        ('comm', ctypes.c_char * 16),
        ('ts_us', ctypes.c_uint64),
        ('af', ctypes.c_uint32),
        ('pid', ctypes.c_uint32),
        ('uid', ctypes.c_uint32),
        ('sport', ctypes.c_uint16),
        ('dport', ctypes.c_uint16),
    )

    saddr: ctypes.Array[ctypes.c_uint8]
    daddr: ctypes.Array[ctypes.c_uint8]
    comm: str
    ts_us: int
    af: int
    pid: int
    uid: int
    sport: int
    dport: int


class Ipv4FlowKey(_skel.Struct):
    """struct ipv4_flow_key (12 bytes)"""

    _c_name_ = 'ipv4_flow_key'
    _pack_ = 1
    _fields_ = (
        ('saddr', ctypes.c_uint32),
        ('daddr', ctypes.c_uint32),
        ('sport', ctypes.c_uint16),
        ('dport', ctypes.c_uint16),
    )

    saddr: int
    daddr: int
    sport: int
    dport: int


class Ipv6FlowKey(_skel.Struct):
    """struct ipv6_flow_key (36 bytes)"""

    _c_name_ = 'ipv6_flow_key'
    _pack_ = 1
    _fields_ = (
        ('saddr', ctypes.c_uint8 * 16),
        ('daddr', ctypes.c_uint8 * 16),
        ('sport', ctypes.c_uint16),
        ('dport', ctypes.c_uint16),
    )

    saddr: ctypes.Array[ctypes.c_uint8]
    daddr: ctypes.Array[ctypes.c_uint8]
    sport: int
    dport: int


class TcpconnectRodata(_skel.DataSection):
    """.rodata of tcpconnect.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
        ('_pad_1', ctypes.c_uint8 * 3),
        ('filter_ports_len', ctypes.c_int32),
        ('filter_uid', ctypes.c_uint32),
        ('filter_pid', ctypes.c_uint32),
        ('do_count', ctypes.c_bool),
        ('source_port', ctypes.c_bool),
        ('_pad_18', ctypes.c_uint8 * 2),
        ('filter_ports', ctypes.c_int32 * 64),
        ('_pad_276', ctypes.c_uint8 * 4),
        ('count_connect.zero', ctypes.c_uint64),
    )

    use_ringbuf: bool
    filter_ports_len: int
    filter_uid: int
    filter_pid: int
    do_count: bool
    source_port: bool
    filter_ports: ctypes.Array[ctypes.c_int32]


class TcpconnectMaps(_skel.Maps):
    """The maps of tcpconnect.bpfel.o."""

    rodata: _skel.MapView[int, object]
    pending: _skel.MapView[int, Event]
    events: _skel.RingBuf[Event]
    ipv4_count: _skel.MapView[Ipv4FlowKey, int]
    ipv6_count: _skel.MapView[Ipv6FlowKey, int]


class TcpconnectPrograms(_skel.Programs):
    """The programs of tcpconnect.bpfel.o."""

    tcp_v4_connect_fexit: _skel.Program
    tcp_v6_connect_fexit: _skel.Program
    inet_sock_set_state_tp: _skel.Program


class Tcpconnect(_skel.Skeleton):
    """tcpconnect.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct event', Event),
        ('struct ipv4_flow_key', Ipv4FlowKey),
        ('struct ipv6_flow_key', Ipv6FlowKey),
    )
    _sections_ = (
        ('.rodata', TcpconnectRodata),
    )
    _maps_class_ = TcpconnectMaps
    _progs_class_ = TcpconnectPrograms

    rodata: TcpconnectRodata
    maps: TcpconnectMaps
    progs: TcpconnectPrograms
