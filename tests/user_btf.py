"""An application's BTF for tests/progs/core_targets.bpf.c: its ``struct data`` in layouts
other than the one the object was compiled against (there: int a; int b; long c; char x),
and what the object's .bss ``struct results`` must then hold."""

from __future__ import annotations

import struct

import corebpf.btf as btf
from corebpf.btf.writer import Builder
from tests.conftest import PROGS

OBJ = PROGS / "core_targets.bpf.o"

#: (member, type, byte offset)..., size
Layout = tuple[tuple[tuple[str, str, int], ...], int]
#: b and a swapped behind an id, a name before c; no x
APP_V1: Layout = ((("id", "long", 0), ("b", "int", 8), ("a", "int", 12),
                   ("name", "char[8]", 16), ("c", "long", 24)), 32)
#: b first, c right after a; no x
APP_V2: Layout = ((("b", "int", 0), ("a", "int", 4), ("c", "long", 8)), 16)

RESULTS = ("b_off", "c_off", "c_size", "data_size", "x_exists", "regs_ip_off", "pid_ok",
           "pid_bad")


def app_btf(layout: Layout, source: str = "app") -> btf.Spec:
    """Raw BTF as an application's would be: base types, then ``struct data``."""
    b = Builder()
    i = b.add(btf.Int("int", 4, btf.IntEncoding.SIGNED, 0, 32))
    ids = {"int": i,
           "long": b.add(btf.Int("long", 8, btf.IntEncoding.SIGNED, 0, 64)),
           "char[8]": b.add(btf.Array(b.add(btf.Int("char", 1, btf.IntEncoding.SIGNED, 0, 8)),
                                      i, 8))}
    members, size = layout
    b.add(btf.Struct("data", size, [btf.Member(n, ids[t], off * 8) for n, t, off in members]))
    return btf.from_bytes(b.encode(), source=source)


def expected(layout: Layout) -> dict[str, int]:
    """What the object computes from ``struct data`` in ``layout`` (pid counts aside)."""
    offs = {n: off for n, _, off in layout[0]}
    return {"b_off": offs["b"], "c_off": offs["c"], "c_size": 8, "data_size": layout[1],
            "x_exists": int("x" in offs)}


def results(raw: bytes) -> dict[str, int]:
    """The object's .bss (struct results) by field."""
    return dict(zip(RESULTS, struct.unpack_from(f"<{len(RESULTS)}Q", raw), strict=True))
