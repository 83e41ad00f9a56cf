"""Skeleton of biolatency.bpfel.o, by corebpf 0.1.0 gen skeleton.

Generated: do not edit."""

from __future__ import annotations

import ctypes

from corebpf import skeleton as _skel

_OBJECT = _skel.Files(
    __file__,
    {
        'bpfel': 'biolatency.bpfel.o',
        'bpfeb': 'biolatency.bpfeb.o',
    },
    digests={
        'bpfel': '71f06775726c0380613756e45d6b6d0e7d304eb190ea873fb701a32257c871f1',
        'bpfeb': '6a78b821a33538b32ed704dce6afdde0dfd90389587e9f171509c561312318e7',
    },
)


class HistKey(_skel.Struct):
    """struct hist_key (8 bytes)"""

    _c_name_ = 'hist_key'
    _pack_ = 1
    _fields_ = (
        ('cmd_flags', ctypes.c_uint32),
        ('dev', ctypes.c_uint32),
    )

    cmd_flags: int
    dev: int


class Hist(_skel.Struct):
    """struct hist (108 bytes)"""

    _c_name_ = 'hist'
    _pack_ = 1
    _fields_ = (
        ('slots', ctypes.c_uint32 * 27),
    )

    slots: ctypes.Array[ctypes.c_uint32]


class BiolatencyRodata(_skel.DataSection):
    """.rodata of biolatency.bpfel.o"""

    _section_ = '.rodata'
    _pack_ = 1
    _fields_ = (
        ('use_ringbuf', ctypes.c_bool),
        ('targ_per_disk', ctypes.c_bool),
        ('targ_per_flag', ctypes.c_bool),
        ('targ_queued', ctypes.c_bool),
        ('targ_ms', ctypes.c_bool),
        ('filter_dev', ctypes.c_bool),
        ('_pad_6', ctypes.c_uint8 * 2),
        ('targ_dev', ctypes.c_uint32),
        ('filter_cg', ctypes.c_bool),
        ('_pad_13', ctypes.c_uint8 * 3),
        ('rq_done.zero', Hist),
    )

    use_ringbuf: bool
    targ_per_disk: bool
    targ_per_flag: bool
    targ_queued: bool
    targ_ms: bool
    filter_dev: bool
    targ_dev: int
    filter_cg: bool


class BiolatencyMaps(_skel.Maps):
    """The maps of biolatency.bpfel.o."""

    rodata: _skel.MapView[int, object]
    cgroup_map: _skel.MapView[int, int]
    start: _skel.MapView[int, int]
    hists: _skel.MapView[HistKey, Hist]


class BiolatencyPrograms(_skel.Programs):
    """The programs of biolatency.bpfel.o."""

    block_rq_insert_btf: _skel.Program
    block_rq_issue_btf: _skel.Program
    block_rq_complete_btf: _skel.Program
    block_rq_insert_raw: _skel.Program
    block_rq_issue_raw: _skel.Program
    block_rq_complete_raw: _skel.Program


class Biolatency(_skel.Skeleton):
    """biolatency.bpfel.o: open, set globals, load(), attach(), read, close()."""

    _object_ = _OBJECT
    _types_ = (
        ('struct hist_key', HistKey),
        ('struct hist', Hist),
    )
    _sections_ = (
        ('.rodata', BiolatencyRodata),
    )
    _maps_class_ = BiolatencyMaps
    _progs_class_ = BiolatencyPrograms

    rodata: BiolatencyRodata
    maps: BiolatencyMaps
    progs: BiolatencyPrograms
