"""BTF-typed values: scalars to structs in both byte orders, against hand-computed bytes,
CPython's ctypes bitfields, clang's objects and the running kernel's structs."""

from __future__ import annotations

import ctypes
import math
import os
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
from corebpf.btf.codec import CodecError, codec, cstr, decode, encode, to_ctypes
from corebpf.btf.writer import Builder
from corebpf.errors import BTFError, Error
from tests.conftest import PROGS

SIGNED, CHAR, BOOL = btf.IntEncoding.SIGNED, btf.IntEncoding.CHAR, btf.IntEncoding.BOOL


def spec_of(b: Builder, endian: str = "<") -> btf.Spec:
    return btf.from_bytes(b.encode(endian))


class Types:
    """A builder preloaded with the usual C scalars."""

    def __init__(self) -> None:
        b = self.b = Builder()
        self.int = b.add(btf.Int("int", 4, SIGNED, 0, 32))
        self.u32 = b.add(btf.Int("unsigned int", 4, 0, 0, 32))
        self.u8 = b.add(btf.Int("unsigned char", 1, 0, 0, 8))
        self.char = b.add(btf.Int("char", 1, SIGNED | CHAR, 0, 8))
        self.s8 = b.add(btf.Int("signed char", 1, SIGNED, 0, 8))
        self.u16 = b.add(btf.Int("unsigned short", 2, 0, 0, 16))
        self.s16 = b.add(btf.Int("short", 2, SIGNED, 0, 16))
        self.u64 = b.add(btf.Int("unsigned long long", 8, 0, 0, 64))
        self.s64 = b.add(btf.Int("long long", 8, SIGNED, 0, 64))
        self.s128 = b.add(btf.Int("__int128", 16, SIGNED, 0, 128))
        self.u128 = b.add(btf.Int("unsigned __int128", 16, 0, 0, 128))
        self.bool = b.add(btf.Int("_Bool", 1, BOOL, 0, 8))
        self.float = b.add(btf.Float("float", 4))
        self.double = b.add(btf.Float("double", 8))
        self.ldouble = b.add(btf.Float("long double", 16))
        self.ptr = b.add(btf.Pointer(self.int))

    def add(self, t: btf.Type) -> int:
        return self.b.add(t)

    def array(self, elem: int, n: int) -> int:
        return self.add(btf.Array(elem, self.u32, n))


# -- scalars ------------------------------------------------------------------------------


@pytest.mark.parametrize("endian", ["<", ">"])
def test_scalars(endian: str) -> None:
    t = Types()
    color = t.add(btf.Enum("color", 4, [btf.EnumValue("RED", 0), btf.EnumValue("BLUE", -1)],
                           signed=True))
    big = t.add(btf.Enum64("big", 8, [btf.EnumValue("HUGE", 0xFFFF_FFFF_0000_0000)]))
    u32_t = t.add(btf.Typedef("u32", t.u32))
    cu32 = t.add(btf.Const(u32_t))
    s = spec_of(t.b, endian)
    cases: list[tuple[int, Any, bytes]] = [
        (t.int, -2, struct.pack(endian + "i", -2)),
        (t.u32, 0xDEADBEEF, struct.pack(endian + "I", 0xDEADBEEF)),
        (cu32, 7, struct.pack(endian + "I", 7)),
        (t.u8, 255, b"\xff"),
        (t.s8, -128, b"\x80"),
        (t.char, -1, b"\xff"),
        (t.u16, 0xBEEF, struct.pack(endian + "H", 0xBEEF)),
        (t.s16, -300, struct.pack(endian + "h", -300)),
        (t.u64, 1 << 63, struct.pack(endian + "Q", 1 << 63)),
        (t.s64, -(1 << 63), struct.pack(endian + "q", -(1 << 63))),
        (t.s128, -(1 << 100), (-(1 << 100)).to_bytes(16, "little" if endian == "<" else "big",
                                                     signed=True)),
        (t.u128, (1 << 128) - 1, b"\xff" * 16),
        (t.bool, True, b"\x01"),
        (t.float, 1.5, struct.pack(endian + "f", 1.5)),
        (t.double, -0.1, struct.pack(endian + "d", -0.1)),
        (t.ldouble, b"\x01" * 16, b"\x01" * 16),
        (t.ptr, 0xFFFF_8880_0000_1000, struct.pack(endian + "Q", 0xFFFF_8880_0000_1000)),
        (color, -1, struct.pack(endian + "i", -1)),
        (big, 0xFFFF_FFFF_0000_0000, struct.pack(endian + "Q", 0xFFFF_FFFF_0000_0000)),
    ]
    for tid, value, raw in cases:
        assert encode(s, tid, value) == raw, (s.type(tid), value)
        assert decode(s, tid, raw) == value, (s.type(tid), raw)
    # chars take a one-byte str/bytes; enums their enumerators' names, both ways
    assert encode(s, t.char, "A") == b"A" and encode(s, t.u8, b"\xfe") == b"\xfe"
    assert encode(s, color, "BLUE") == struct.pack(endian + "i", -1)
    assert decode(s, color, encode(s, color, "BLUE"), enum_names=True) == "BLUE"
    assert decode(s, color, encode(s, color, 5), enum_names=True) == 5  # no enumerator
    assert decode(s, big, encode(s, big, "HUGE"), enum_names=True) == "HUGE"
    assert decode(s, t.bool, b"\x02") is True
    assert codec(s, t.u32).flat and codec(s, t.u32) is codec(s, t.u32)


def test_scalar_errors() -> None:
    t = Types()
    color = t.add(btf.Enum("color", 4, [btf.EnumValue("RED", 0)]))
    s = spec_of(t.b)
    with pytest.raises(CodecError, match=r"unsigned int: -1 does not fit in unsigned int "
                                         r"\(0\.\.4294967295\)"):
        encode(s, t.u32, -1)
    with pytest.raises(CodecError, match="128 does not fit in signed char"):
        encode(s, t.s8, 128)
    with pytest.raises(CodecError, match="expected an integer for int, not str"):
        encode(s, t.int, "1")
    with pytest.raises(CodecError, match="'GREEN' is not an enumerator of enum color"):
        encode(s, color, "GREEN")
    with pytest.raises(CodecError, match="expected a bool"):
        encode(s, t.bool, 2)
    with pytest.raises(CodecError, match="does not fit in float"):
        encode(s, t.float, 1e300)
    with pytest.raises(CodecError, match="3 bytes at offset 0 for a 4-byte value"):
        decode(s, t.int, b"abc")
    with pytest.raises(BTFError, match="has no value layout"):
        codec(s, 0)
    with pytest.raises(CodecError) as info:
        encode(s, t.u8, 256)
    err = info.value
    assert isinstance(err, Error) and isinstance(err, ValueError) and err.path == "unsigned char"


# -- composites ---------------------------------------------------------------------------


def event_types(t: Types) -> int:
    """struct event { int pid; char comm[16]; union { u32 a; int b; }; enum color c;
    u64 args[3]; struct { u16 x, y; } pos[2]; _Bool on; }"""
    comm = t.array(t.char, 16)
    color = t.add(btf.Enum("color", 4, [btf.EnumValue("RED", 0), btf.EnumValue("GREEN", 1)]))
    anon = t.add(btf.Union("", 4, [btf.Member("a", t.u32, 0), btf.Member("b", t.int, 0)]))
    args = t.array(t.u64, 3)
    point = t.add(btf.Struct("", 4, [btf.Member("x", t.u16, 0), btf.Member("y", t.u16, 16)]))
    pos = t.array(point, 2)
    return t.add(btf.Struct("event", 72, [
        btf.Member("pid", t.int, 0), btf.Member("comm", comm, 32), btf.Member("", anon, 160),
        btf.Member("c", color, 192), btf.Member("args", args, 256),
        btf.Member("pos", pos, 448), btf.Member("on", t.bool, 512)]))


@pytest.mark.parametrize("endian", ["<", ">"])
def test_struct_with_anonymous_union_arrays_and_nesting(endian: str) -> None:
    t = Types()
    ev = event_types(t)
    s = spec_of(t.b, endian)
    value: dict[str, Any] = {
             "pid": 42, "comm": b"bash".ljust(16, b"\0"), "a": 7, "b": 7, "c": 1,
             "args": [1, 2, 1 << 63], "pos": [{"x": 1, "y": 2}, {"x": 3, "y": 4}],
             "on": True}
    raw = encode(s, ev, value)
    e = endian
    assert raw == (struct.pack(e + "i", 42) + value["comm"] + struct.pack(e + "II", 7, 1)
                   + bytes(4) + struct.pack(e + "3Q", *value["args"])
                   + struct.pack(e + "4H", 1, 2, 3, 4) + b"\x01" + bytes(7))
    assert decode(s, ev, raw) == value
    assert decode(s, ev, raw, enum_names=True)["c"] == "GREEN"
    assert cstr(decode(s, ev, raw)["comm"]) == "bash"
    # missing members are zero, short strings and arrays are padded
    assert decode(s, ev, encode(s, ev, {"comm": "sh", "args": [9]})) == {
        "pid": 0, "comm": b"sh" + bytes(14), "a": 0, "b": 0, "c": 0, "args": [9, 0, 0],
        "pos": [{"x": 0, "y": 0}, {"x": 0, "y": 0}], "on": False}
    # bytes and ctypes objects of the right size pass through
    assert encode(s, ev, raw) == raw
    assert encode(s, ev, to_ctypes(s, ev).from_buffer_copy(raw)) == raw


def test_flat_structs_compile_to_one_struct() -> None:
    t = Types()
    comm = t.array(t.char, 16)
    inner = t.add(btf.Struct("inner", 8, [btf.Member("lo", t.u32, 0),
                                         btf.Member("hi", t.u32, 32)]))
    flat = t.add(btf.Struct("flat", 40, [
        btf.Member("pid", t.int, 0), btf.Member("comm", comm, 32), btf.Member("in", inner, 192),
        btf.Member("ts", t.u64, 256)]))
    bits = t.add(btf.Struct("bits", 4, [btf.Member("a", t.u32, 0, 3)], bitfield_encoding=True))
    s = spec_of(t.b)
    c = codec(s, flat)
    assert c.flat and not codec(s, bits).flat
    v = {"pid": -1, "comm": b"x" * 16, "in": {"lo": 1, "hi": 2}, "ts": 3}
    assert c.decode(c.encode(v)) == v
    # the fast path hands over to the checked one for anything it cannot take
    assert c.decode(c.encode({"pid": 5}))["pid"] == 5
    with pytest.raises(CodecError, match=r"^flat\.in\.hi: 4294967296 does not fit"):
        c.encode({**v, "in": {"lo": 1, "hi": 1 << 32}})
    with pytest.raises(CodecError, match=r"^flat\.comm: 20 bytes for a 16-byte array"):
        c.encode({**v, "comm": b"y" * 20})
    with pytest.raises(CodecError, match=r"^flat: struct flat has no member 'pad'"):
        c.encode({**v, "pad": 1})
    with pytest.raises(CodecError, match=r"^flat\.in: expected a dict for struct inner, not int"):
        c.encode({**v, "in": 1})


def test_error_paths_name_the_field() -> None:
    t = Types()
    ev = event_types(t)
    s = spec_of(t.b)
    with pytest.raises(CodecError, match=r"^event\.comm: 20 bytes for a 16-byte array$"):
        encode(s, ev, {"comm": b"a" * 20})
    with pytest.raises(CodecError, match=r"^event\.args: 4 elements for a 3-element array$"):
        encode(s, ev, {"args": [1, 2, 3, 4]})
    with pytest.raises(CodecError, match=r"^event\.pos\[1\]\.y: 70000 does not fit"):
        encode(s, ev, {"pos": [{}, {"y": 70000}]})
    with pytest.raises(CodecError, match=r"^event\.a: -1 does not fit"):
        encode(s, ev, {"a": -1})
    with pytest.raises(CodecError, match=r"^event\.args: expected a list"):
        encode(s, ev, {"args": b"abc"})


def test_typedef_names_the_root() -> None:
    t = Types()
    st_id = t.add(btf.Struct("", 4, [btf.Member("x", t.int, 0)]))
    td = t.add(btf.Typedef("point_t", st_id))
    s = spec_of(t.b)
    with pytest.raises(CodecError, match=r"^point_t\.x: expected an integer"):
        encode(s, td, {"x": "no"})
    assert decode(s, td, encode(s, td, {"x": -3})) == {"x": -3}


# -- bitfields ------------------------------------------------------------------------------


def test_bitfields_hand_computed_both_byte_orders() -> None:
    """struct { unsigned a:3, b:5, c:8; int d:4; _Bool e:1; } as GCC lays it out."""
    t = Types()
    bf = t.add(btf.Struct("bf", 4, [
        btf.Member("a", t.u32, 0, 3), btf.Member("b", t.u32, 3, 5), btf.Member("c", t.u32, 8, 8),
        btf.Member("d", t.int, 16, 4), btf.Member("e", t.bool, 20, 1)], bitfield_encoding=True))
    v = {"a": 5, "b": 3, "c": 0xAB, "d": -2, "e": True}
    le, be = spec_of(t.b, "<"), spec_of(t.b, ">")
    # little-endian: bits from the least significant end of the first byte
    assert encode(le, bf, v) == bytes([5 | 3 << 3, 0xAB, 0b1_1110, 0])
    # big-endian: from the most significant end
    assert encode(be, bf, v) == bytes([5 << 5 | 3, 0xAB, 0b1110_1000, 0])
    for s in (le, be):
        assert decode(s, bf, encode(s, bf, v)) == v
        # writing one bitfield keeps its neighbours
        buf = bytearray(encode(s, bf, v))
        codec(s, bf).encode_into(buf, 0, {"c": 1})
        assert decode(s, bf, buf) == {**v, "c": 1}
    with pytest.raises(CodecError, match=r"^bf\.a: 8 does not fit in a 3-bit bitfield \(0\.\.7\)"):
        encode(le, bf, {"a": 8})
    with pytest.raises(CodecError, match=r"^bf\.d: -9 does not fit in a 4-bit bitfield"):
        encode(le, bf, {"d": -9})


def test_legacy_int_bitfields() -> None:
    """Before kind_flag, a bitfield was an INT with bits/bit_offset of its own."""
    b = Builder()
    u32 = b.add(btf.Int("unsigned int", 4, 0, 0, 32))
    i3 = b.add(btf.Int("int", 4, SIGNED, 2, 3))  # 3 bits, 2 bits into the word
    s_id = b.add(btf.Struct("old", 8, [btf.Member("x", u32, 0), btf.Member("y", i3, 32)]))
    s = spec_of(b)
    raw = encode(s, s_id, {"x": 1, "y": -1})
    assert raw == struct.pack("<II", 1, 0b111 << 2)
    assert decode(s, s_id, raw) == {"x": 1, "y": -1}
    assert decode(s, i3, struct.pack("<I", 0b011 << 2)) == 3
    T = to_ctypes(s, s_id)
    assert T.from_buffer_copy(raw).y == -1


_CT = [(ctypes.c_uint8, 1, False), (ctypes.c_uint16, 2, False), (ctypes.c_uint32, 4, False),
       (ctypes.c_uint64, 8, False), (ctypes.c_int8, 1, True), (ctypes.c_int16, 2, True),
       (ctypes.c_int32, 4, True), (ctypes.c_int64, 8, True)]


@st.composite
def ctypes_bitfield_layouts(draw: st.DrawFn) -> list[tuple[int, int]]:
    """[(index into _CT, bits or 0 for a plain member)]. Adjacent bitfields share a type
    size: given a narrower type, ctypes 3.11 lets a bitfield straddle where GCC would not
    (the ctypes layout is what the test reads, but its unit is then not the field's)."""
    n = draw(st.integers(1, 10))
    out: list[tuple[int, int]] = []
    for _ in range(n):
        k = draw(st.integers(0, len(_CT) - 1))
        if out and out[-1][1]:
            same = [i for i, c in enumerate(_CT) if c[1] == _CT[out[-1][0]][1]]
            k = draw(st.sampled_from(same))
        out.append((k, draw(st.integers(0, 8 * _CT[k][1]))))
    return out


@settings(max_examples=150, deadline=None)
@given(layout=ctypes_bitfield_layouts(), data=st.data())
def test_bitfields_agree_with_ctypes(layout: list[tuple[int, int]], data: st.DataObject) -> None:
    """CPython lays bitfields out as GCC does, in both byte orders: describe its layout in
    BTF and both must read and write the same bits."""
    fields: list[tuple[Any, ...]] = [
        (f"f{i}", _CT[k][0], bits) if bits else (f"f{i}", _CT[k][0])
        for i, (k, bits) in enumerate(layout)]
    for base, endian in ((ctypes.LittleEndianStructure, "<"), (ctypes.BigEndianStructure, ">")):
        cls = type("S", (base,), {"_fields_": fields})
        b = Builder()
        ids = {(size, signed): b.add(btf.Int(f"i{size}{signed}", size, SIGNED if signed else 0,
                                             0, 8 * size)) for _, size, signed in _CT}
        members = []
        for i, (k, bits) in enumerate(layout):
            desc = getattr(cls, f"f{i}")
            unit = 8 * _CT[k][1]
            if bits:
                shift = desc.size & 0xFFFF
                off = desc.offset * 8 + (shift if endian == "<" else unit - shift - bits)
            else:
                off = desc.offset * 8
            members.append(btf.Member(f"f{i}", ids[_CT[k][1:]], off, bits))
        sid = b.add(btf.Struct("S", ctypes.sizeof(cls), members, bitfield_encoding=True))
        s = spec_of(b, endian)
        values = {}
        inst = cls()
        for i, (k, bits) in enumerate(layout):
            _, size, signed = _CT[k]
            width = bits or 8 * size
            lo, hi = ((-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed
                      else (0, (1 << width) - 1))
            values[f"f{i}"] = v = data.draw(st.integers(lo, hi))
            setattr(inst, f"f{i}", v)
        raw = bytes(inst)
        assert encode(s, sid, values) == raw
        assert decode(s, sid, raw) == values
        ours = to_ctypes(s, sid).from_buffer_copy(raw)
        assert {f"f{i}": getattr(ours, f"f{i}") for i in range(len(layout))} == values


# -- generated types: round trips ---------------------------------------------------------


class Desc:
    """A C type to generate: kind, then what it needs."""

    def __init__(self, kind: str, **kw: Any):
        self.kind = kind
        self.__dict__.update(kw)

    def __getattr__(self, name: str) -> Any:  # the kind's fields, for the type checker
        raise AttributeError(name)


def scalar_descs(in_union: bool) -> st.SearchStrategy[Desc]:
    options = [
        st.builds(lambda sz, sg: Desc("int", size=sz, signed=sg),
                  st.sampled_from([1, 2, 4, 8, 16]), st.booleans()),
        st.builds(lambda sg: Desc("char", size=1, signed=sg), st.booleans()),
        st.builds(lambda sz, sg: Desc("enum", size=sz, signed=sg), st.sampled_from([1, 2, 4, 8]),
                  st.booleans()),
        st.just(Desc("ptr", size=8)),
    ]
    if not in_union:  # a union member re-read through a bool or a float is not the same bits
        options += [st.just(Desc("bool", size=1)),
                    st.builds(lambda sz: Desc("float", size=sz), st.sampled_from([4, 8]))]
    return st.one_of(options)


def descs(in_union: bool = False, unions: bool = True) -> st.SearchStrategy[Desc]:
    def extend(children: st.SearchStrategy[Desc]) -> st.SearchStrategy[Desc]:
        members = st.lists(st.tuples(children, st.booleans(), st.integers(0, 64)),
                           min_size=1, max_size=5)
        kinds = [
            st.builds(lambda e, n: Desc("array", elem=e, n=n), children, st.integers(0, 4)),
            st.builds(lambda ms: Desc("struct", members=ms), members),
        ]
        if unions:  # members of a union: no bools, floats or unions of their own
            kinds.append(st.builds(
                lambda ms: Desc("union", members=ms),
                st.lists(st.tuples(descs(True, False), st.booleans(), st.integers(0, 64)),
                         min_size=1, max_size=3)))
        return st.one_of(kinds)

    leaves = st.one_of(scalar_descs(in_union),
                       st.builds(lambda n: Desc("chars", n=n), st.integers(1, 12)))
    return st.recursive(leaves, extend, max_leaves=12)


class Materializer:
    """Turns a Desc tree into BTF (C-like layout, bitfields where allowed, anonymous
    members now and then) and knows each member's final name."""

    def __init__(self) -> None:
        self.b = Builder()
        self.u32 = self.b.add(btf.Int("unsigned int", 4, 0, 0, 32))
        self.names = 0

    def name(self) -> str:
        self.names += 1
        return f"m{self.names}"

    def build(self, d: Desc) -> tuple[int, int, int]:
        """(type id, size, alignment)"""
        b = self.b
        if d.kind == "int":
            return b.add(btf.Int(f"int{d.size}{d.signed}", d.size, SIGNED if d.signed else 0, 0,
                                 8 * d.size)), d.size, min(d.size, 8)
        if d.kind == "char":
            return b.add(btf.Int("char", 1, (SIGNED if d.signed else 0) | CHAR, 0, 8)), 1, 1
        if d.kind == "bool":
            return b.add(btf.Int("_Bool", 1, BOOL, 0, 8)), 1, 1
        if d.kind == "float":
            return b.add(btf.Float(f"float{d.size}", d.size)), d.size, d.size
        if d.kind == "ptr":
            return b.add(btf.Pointer(0)), 8, 8
        if d.kind == "enum":
            cls = btf.Enum if d.size <= 4 else btf.Enum64
            return b.add(cls(f"e{self.name()}", d.size, [btf.EnumValue("E0", 0)],
                             signed=d.signed)), d.size, d.size
        if d.kind == "chars":
            ch = b.add(btf.Int("char", 1, SIGNED, 0, 8))
            return b.add(btf.Array(ch, self.u32, d.n)), d.n, 1
        if d.kind == "array":
            eid, esize, ealign = self.build(d.elem)
            return b.add(btf.Array(eid, self.u32, d.n)), esize * d.n, ealign
        members = []
        layout: list[tuple[str | None, Desc, int]] = []  # (name or None, Desc, bits)
        d.__dict__["layout"] = layout
        bit = 0
        size = 0
        align = 1
        for child, anon_or_bits, bits in d.members:
            cid, csize, calign = self.build(child)
            bitfield = anon_or_bits and child.kind in ("int", "bool", "enum") and \
                child.size <= 8 and bits
            if bitfield:
                width = 1 if child.kind == "bool" else max(1, bits % (8 * child.size + 1))
                name = self.name()
                off = 0 if d.kind == "union" else bit
                members.append(btf.Member(name, cid, off, width))
                layout.append((name, child, width))
                if d.kind == "struct":
                    bit += width
                size = max(size, (off + width + 7) // 8)
                align = max(align, calign)
                continue
            anonymous = anon_or_bits and child.kind in ("struct", "union")
            name = "" if anonymous else self.name()
            off = 0 if d.kind == "union" else (bit + 8 * calign - 1) // (8 * calign) * 8 * calign
            members.append(btf.Member(name, cid, off))
            layout.append((name or None, child, 0))
            if d.kind == "struct":
                bit = off + 8 * csize
            size = max(size, off // 8 + csize)
            align = max(align, calign)
        size = (size + align - 1) // align * align
        comp = btf.Struct if d.kind == "struct" else btf.Union
        return b.add(comp("", size, members, bitfield_encoding=True)), size, align


_FLOAT32 = st.floats(width=32, allow_nan=False)
_FLOAT64 = st.floats(allow_nan=False)


def draw_value(draw: st.DrawFn, d: Desc, bits: int = 0) -> Any:
    """A value of type ``d`` (drawn piece by piece: building a strategy per generated
    type would cost hypothesis more than the test itself)."""
    if d.kind in ("int", "enum", "char"):
        width = bits or 8 * d.size
        if d.signed:
            return draw(st.integers(-(1 << (width - 1)), (1 << (width - 1)) - 1))
        return draw(st.integers(0, (1 << width) - 1))
    if d.kind == "ptr":
        return draw(st.integers(0, (1 << 64) - 1))
    if d.kind == "bool":
        return draw(st.booleans())
    if d.kind == "float":
        return draw(_FLOAT32 if d.size == 4 else _FLOAT64)
    if d.kind == "chars" or (d.kind == "array" and d.elem.kind == "char"):
        return draw(st.binary(min_size=d.n, max_size=d.n))
    if d.kind == "array":
        return [draw_value(draw, d.elem) for _ in range(d.n)]
    if d.kind == "union":  # one member set; the others are views of the same bytes
        return member_value(draw, d.layout[draw(st.integers(0, len(d.layout) - 1))])
    out: dict[str, Any] = {}
    for m in d.layout:
        out.update(member_value(draw, m))
    return out


def member_value(draw: st.DrawFn, m: tuple[str | None, Desc, int]) -> dict[str, Any]:
    name, child, bits = m
    if name is None:  # anonymous: its members are ours
        return dict(draw_value(draw, child))
    return {name: draw_value(draw, child, bits)}


ROOTS = {unions: st.builds(lambda ms: Desc("struct", members=ms),
                           st.lists(st.tuples(descs(unions=unions), st.booleans(),
                                              st.integers(0, 64)), min_size=1, max_size=6))
         for unions in (False, True)}


@st.composite
def typed_values(draw: st.DrawFn, unions: bool) -> tuple[Materializer, int, Desc, Any]:
    root = draw(ROOTS[unions])
    m = Materializer()
    tid, _, _ = m.build(root)
    return m, tid, root, draw_value(draw, root)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tv=typed_values(unions=False))
def test_generated_structs_round_trip(tv: tuple[Materializer, int, Desc, Any]) -> None:
    m, tid, _root, value = tv
    for endian in "<>":
        s = spec_of(m.b, endian)
        raw = encode(s, tid, value)
        assert len(raw) == s.size_of(tid)
        assert decode(s, tid, raw) == value


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tv=typed_values(unions=True))
def test_generated_types_with_unions_agree_with_ctypes(
        tv: tuple[Materializer, int, Desc, Any]) -> None:
    """Unions decode to every member's view: re-encoding that gives the same bytes, and
    the generated ctypes class reads the same values."""
    m, tid, root, value = tv
    for endian in "<>":
        s = spec_of(m.b, endian)
        raw = encode(s, tid, value)
        back = decode(s, tid, raw)
        assert encode(s, tid, back) == raw
        for k, v in value.items():  # set scalars read back (union siblings aside)
            if isinstance(v, int | float | bytes):
                assert back[k] == v
        obj = to_ctypes(s, tid).from_buffer_copy(raw)
        assert bytes(obj) == raw
        seen = from_ctypes(obj, root, endian)
        assert seen == normalize(back, root, seen)


def normalize(v: Any, d: Desc, seen: Any) -> Any:
    """A decoded value as a ctypes view sees it (char arrays end at their first NUL;
    bitfields that ``seen`` has as raw bytes are raw)."""
    if d.kind == "chars" or (d.kind == "array" and d.elem.kind == "char"):
        return v.split(b"\0", 1)[0]
    if d.kind == "array":
        return [normalize(x, d.elem, y) for x, y in zip(v, seen, strict=True)]
    if d.kind in ("struct", "union"):
        out: dict[str, Any] = {}
        for name, child, _bits in d.layout:
            if name is None:
                out.update(normalize(v, child, seen))
            elif seen.get(name) == "raw":
                out[name] = "raw"
            else:
                out[name] = normalize(v[name], child, seen[name])
        return out
    if d.kind == "float" and math.isnan(v):
        return "nan"
    return v


def from_ctypes(obj: Any, d: Desc, endian: str, bits: int = 0) -> Any:
    if d.kind == "chars" or (d.kind == "array" and d.elem.kind == "char"):
        return obj if isinstance(obj, bytes) else obj.raw.split(b"\0", 1)[0]
    if d.kind == "array":
        return [from_ctypes(x, d.elem, endian) for x in obj]
    if d.kind in ("struct", "union"):
        out: dict[str, Any] = {}
        for name, child, b in d.layout:
            if name is None:  # ctypes' _anonymous_ shows the members on the parent
                out.update(from_ctypes(obj, child, endian))
            elif b and not hasattr(obj, name):  # ctypes could not place it: raw bytes
                out[name] = "raw"
            else:
                out[name] = from_ctypes(getattr(obj, name), child, endian, b)
        return out
    if d.kind == "char":
        v = obj[0] if isinstance(obj, bytes) else obj
        return v - 256 if d.signed and v > 127 else v
    if d.kind == "int" and d.size == 16:
        return int.from_bytes(bytes(obj), "little" if endian == "<" else "big",
                              signed=d.signed)
    if d.kind == "bool":
        return bool(obj)
    if d.kind == "float" and math.isnan(obj):
        return "nan"
    return obj


# -- real BTF: clang's objects and this kernel -----------------------------------------


@pytest.mark.parametrize("obj", ["btf_shapes.bpf.o", "btf_shapes.bpfeb.o"])
def test_clang_object_types(obj: str) -> None:
    """clang's struct bits (u32 a:3, b:29; s8 c:2; u64 d:40; u64 e) in its byte order."""
    s = btf.load(PROGS / obj)
    tid = s.find("bits", btf.Kind.STRUCT)
    v = {"a": 5, "b": (1 << 29) - 2, "c": -2, "d": (1 << 40) - 3, "e": 7}
    raw = encode(s, tid, v)
    if s.endian == "<":
        assert raw == bytes.fromhex("f5ffffff02000000fdffffffff000000") + struct.pack("<Q", 7)
    else:
        assert raw == bytes.fromhex("bffffffe80000000fffffffffd000000") + struct.pack(">Q", 7)
    assert decode(s, tid, raw) == v
    obj_ = to_ctypes(s, tid).from_buffer_copy(raw)
    assert (obj_.a, obj_.b, obj_.c, obj_.d, obj_.e) == (5, (1 << 29) - 2, -2, (1 << 40) - 3, 7)
    uses = s.find("uses", btf.Kind.STRUCT)
    c = codec(s, uses)
    value = c.decode(os.urandom(c.size))
    assert set(value["ah"]) == {"x", "y", "u", "e"}  # the anonymous struct's x, y flattened
    assert value["nd"]["flex"] == b"" and len(value["nd"]["grid"]) == 3
    assert ctypes.sizeof(to_ctypes(s, uses)) == c.size
    # global data: a DATASEC is a dict of its variables
    data = s.find(".data", btf.Kind.DATASEC)
    assert decode(s, data, struct.pack(s.endian + "i", 1)) == {"g_counter": 1}


def test_to_ctypes_scalars_and_foreign_byte_order() -> None:
    t = Types()
    arr = t.array(t.u32, 2)
    s_le, s_be = spec_of(t.b, "<"), spec_of(t.b, ">")
    assert to_ctypes(s_le, t.u32) is ctypes.c_uint32
    assert to_ctypes(s_le, t.ptr) is ctypes.c_uint64
    assert to_ctypes(s_le, t.char) is ctypes.c_char
    assert to_ctypes(s_le, t.bool) is ctypes.c_bool
    be_u32 = to_ctypes(s_be, t.u32)
    assert bytes(be_u32(1)) == b"\0\0\0\1"
    assert bytes(to_ctypes(s_be, arr)(1, 2)) == struct.pack(">2I", 1, 2)
    assert to_ctypes(s_le, t.ldouble)._length_ == 16


def test_kernel_struct_bpf_map_info(kernel_spec: btf.Spec) -> None:
    """Decode what the kernel wrote into its own struct bpf_map_info."""
    if os.geteuid() != 0:
        pytest.skip("creating a map needs root")
    from corebpf.sys import calls

    tid = kernel_spec.find("bpf_map_info", btf.Kind.STRUCT)
    c = codec(kernel_spec, tid)
    assert c.flat  # all scalars and a char array: one struct.Struct
    with calls.map_create(1, 4, 8, 32, name="codec_test") as fd:
        raw = calls.obj_info(fd.fd, c.size)[:c.size]
    info = c.decode(raw)
    assert (info["type"], info["key_size"], info["value_size"], info["max_entries"]) == \
        (1, 4, 8, 32)
    assert cstr(info["name"]) == "codec_test" and info["id"] > 0
    assert c.encode(info) == raw
    ct = to_ctypes(kernel_spec, tid).from_buffer_copy(raw)
    assert (ct.max_entries, ct.name, ct.id) == (32, b"codec_test", info["id"])


def test_every_kernel_struct_compiles(kernel_spec: btf.Spec) -> None:
    """Every struct and union of this kernel gets a codec and a same-sized ctypes class;
    where they have bitfields both read the same values from random bytes."""
    s = kernel_spec
    rng = os.urandom(1 << 16)
    checked = 0
    for tid, t in s.items():
        if not isinstance(t, btf.Struct | btf.Union) or not t.size:
            continue
        c = codec(s, tid)
        assert c.size == t.size
        ct = to_ctypes(s, tid)
        assert ctypes.sizeof(ct) == t.size, t.name
        if t.size > len(rng) or not any(m.bitfield_size for m in t.members):
            continue
        raw = rng[:t.size]
        v, obj = c.decode(raw), ct.from_buffer_copy(raw)
        for m in t.members:
            if m.bitfield_size and m.name:
                want = v[m.name]
                got = getattr(obj, m.name)
                assert (int(want) if isinstance(want, bool) else want) == got, (t.name, m.name)
        checked += 1
    assert checked > 100
    task = s.find("task_struct", btf.Kind.STRUCT)
    zero = bytes(s.size_of(task))
    assert codec(s, task).encode(codec(s, task).decode(zero)) == zero
