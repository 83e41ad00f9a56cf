"""corebpf.table: columns from BTF types, cells, alignment, the text exit dump."""

from __future__ import annotations

import io

import corebpf.btf as btf
from corebpf.btf.types import IntEncoding
from corebpf.btf.writer import Builder
from corebpf.table import EventTable, columns, dump_text, format_cell, render


class Types:
    """struct ev { u32 pid; struct { u16 a; s8 b; } in; union { u32 x; u8 y; };
    char name[32]; enum mode m; void *p; u64 hist[3]; _Bool on; double d; }"""

    def __init__(self) -> None:
        b = Builder()
        u32 = b.add(btf.Int("unsigned int", 4, 0, 0, 32))
        u16 = b.add(btf.Int("unsigned short", 2, 0, 0, 16))
        s8 = b.add(btf.Int("signed char", 1, IntEncoding.SIGNED, 0, 8))
        u8 = b.add(btf.Int("unsigned char", 1, 0, 0, 8))
        char = b.add(btf.Int("char", 1, IntEncoding.SIGNED, 0, 8))
        u64 = b.add(btf.Int("unsigned long long", 8, 0, 0, 64))
        boolean = b.add(btf.Int("_Bool", 1, IntEncoding.BOOL, 0, 8))
        dbl = b.add(btf.Float("double", 8))
        inner = b.add(btf.Struct("inner", 4, [btf.Member("a", u16, 0, 0),
                                              btf.Member("b", s8, 16, 0)], False))
        anon = b.add(btf.Union("", 4, [btf.Member("x", u32, 0, 0),
                                       btf.Member("y", u8, 0, 0)], False))
        name = b.add(btf.Array(char, u32, 32))
        mode = b.add(btf.Enum("mode", 4, [btf.EnumValue("OFF", 0),
                                          btf.EnumValue("ON", 5)], False))
        void_p = b.add(btf.Pointer(0))
        hist = b.add(btf.Array(u64, u32, 3))
        self.ev = b.add(btf.Struct("ev", 96, [
            btf.Member("pid", u32, 0, 0), btf.Member("in", inner, 32, 0),
            btf.Member("", anon, 64, 0), btf.Member("name", name, 96, 0),
            btf.Member("m", mode, 352, 0), btf.Member("p", void_p, 384, 0),
            btf.Member("hist", hist, 448, 0), btf.Member("on", boolean, 640, 0),
            btf.Member("d", dbl, 704, 0)], False))
        self.spec = btf.from_bytes(b.encode())


def test_columns_flatten_nested_and_anonymous_members() -> None:
    t = Types()
    cols = columns(t.spec, t.ev)
    assert [c.name for c in cols] == ["pid", "in.a", "in.b", "x", "y", "name", "m", "p",
                                      "hist", "on", "d"]
    by = {c.name: c for c in cols}
    assert by["pid"].right and not by["name"].right and not by["m"].right
    assert by["in.a"].width == 5 and by["in.b"].width == 4  # 65535, -128
    assert by["pid"].width == 7  # capped: the first row widens it if need be
    assert by["name"].width == 16 and by["m"].width == 3 and by["p"].width == 18
    assert by["m"].enum == {0: "OFF", 5: "ON"} and by["p"].pointer


def test_format_cell() -> None:
    t = Types()
    by = {c.name: c for c in columns(t.spec, t.ev)}
    assert format_cell(5, by["m"]) == "ON" and format_cell(7, by["m"]) == "7"
    assert format_cell(0xFFFF8880, by["p"]) == "0xffff8880"
    assert format_cell(True) == "true" and format_cell(None) == "-"
    assert format_cell([1, 2, 3]) == "[1,2,3]" and format_cell(1.5) == "1.5"
    assert format_cell("a\tb\n") == "a\\tb\\n"  # one line per row, whatever the text


def _event(pid: int, name: str) -> dict[str, object]:
    return {"pid": pid, "in": {"a": 1, "b": -2}, "x": 3, "y": 3, "name": name, "m": 5,
            "p": 0, "hist": [1, 2, 3], "on": False, "d": 0.25}


def test_event_table_rows_align_under_the_header() -> None:
    t = Types()
    out = io.StringIO()
    table = EventTable(out, t.spec)
    table.add_map("events", t.ev)
    table.row("events", {"map": "events", "event": _event(123456789, "bash")})
    table.row("events", {"map": "events", "event": _event(1, "a-much-longer-name-than-16")})
    table.row("events", {"map": "events", "data": "0102"})  # shorter than its type
    header, first, second, short = out.getvalue().splitlines()
    assert header.split() == ["pid", "in.a", "in.b", "x", "y", "name", "m", "p", "hist",
                              "on", "d"]
    # the first row widened pid to 9; later rows keep the header's positions
    assert first.startswith("123456789  ") and second.startswith("        1  ")
    assert first.index("bash") == header.index("name") == second.index("a-much")
    assert first.index("ON") == header.index(" m ") + 1
    assert short == "events: short record: 0102"


def test_event_table_with_several_maps_and_perf_cpu() -> None:
    t = Types()
    out = io.StringIO()
    table = EventTable(out, t.spec, several=True)
    table.add_map("ring", t.ev)
    table.add_map("perf", 0, perf=True)  # no type: hex
    table.row("ring", {"map": "ring", "event": _event(1, "x")})
    table.row("perf", {"map": "perf", "cpu": 1, "data": "abcd"})
    table.row("perf", {"map": "perf", "cpu": 0, "data": "ef"})
    table.row("ring", {"map": "ring", "event": _event(2, "y")})
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["map", "ring", "map", "perf", "perf",
                                                   "map", "ring"]
    assert lines[2].split() == ["map", "cpu", "data"]
    assert lines[3].split() == ["perf", "1", "abcd"]


def test_render_and_dump_text() -> None:
    assert render([{"key": 1, "value": "a"}, {"key": 10, "value": "bcd"}]) == [
        "key  value", "  1  a", " 10  bcd"]
    out = io.StringIO()
    dump_text(out, {".bss": {"hits": 3, "last": {"pid": 1, "comm": "sh"}}, ".data": {}},
              {"counts": [{"key": {"uid": 0}, "value": 4}], "none": [],
               "pc": [{"key": 0, "value": [1, 2]}]}, percpu=["pc"])
    assert out.getvalue() == (
        ".bss:\n  hits       3\n  last.pid   1\n  last.comm  sh\n"
        ".data:\n  (no variables)\n"
        "map counts:\n  key.uid  value\n        0      4\n"
        "map none: (empty)\n"
        "map pc:\n  key  cpu  value\n    0    0      1\n    0    1      2\n")
