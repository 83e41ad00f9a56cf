"""Skeletons: a BPF object as a Python class with typed globals, maps, programs and
events (bpftool's ``gen skeleton``, cilium's bpf2go, libbpf-cargo).

``corebpf gen skeleton OBJ`` writes a module with one :class:`Skeleton` subclass and the
ctypes classes of the object's types; ``Skeleton.open_file(path)`` gives the same views
for any object with classes built from its BTF at run time::

    with Minimal() as skel:                 # open: parse the object, nothing in the kernel
        skel.rodata.target_pid = 42         # checked against the variable's C type
        skel.load()                         # CO-RE against this kernel
        skel.attach()
        for ev in skel.maps.events.read(timeout=1.0):
            print(ev.pid, ev.comm)
"""

from .runtime import (
    DataSection,
    Embedded,
    EventBuffer,
    Files,
    Maps,
    MapView,
    PerfEventArray,
    Program,
    Programs,
    RingBuf,
    Skeleton,
    SkeletonError,
    machine_variant,
)
from .types import Bitfield, Struct, Union, ValueCheckError, field_bytes, to_python

__all__ = [
    "Bitfield",
    "DataSection",
    "Embedded",
    "EventBuffer",
    "Files",
    "MapView",
    "Maps",
    "PerfEventArray",
    "Program",
    "Programs",
    "RingBuf",
    "Skeleton",
    "SkeletonError",
    "Struct",
    "Union",
    "ValueCheckError",
    "field_bytes",
    "machine_variant",
    "to_python",
]
