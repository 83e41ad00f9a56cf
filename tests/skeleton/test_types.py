"""Checked writes of skeleton values: every int type's range, char arrays, Bitfield."""

from __future__ import annotations

import ctypes
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corebpf.skeleton import Bitfield, Struct, ValueCheckError

INTS: list[tuple[Any, int, bool]] = [
    (ctypes.c_int8, 8, True), (ctypes.c_uint8, 8, False),
    (ctypes.c_int16, 16, True), (ctypes.c_uint16, 16, False),
    (ctypes.c_int32, 32, True), (ctypes.c_uint32, 32, False),
    (ctypes.c_int64, 64, True), (ctypes.c_uint64, 64, False),
]


class Ints(Struct):
    _fields_ = [(f"f{i}", ct) for i, (ct, _, _) in enumerate(INTS)]


class Text(Struct):
    _fields_ = [("name", ctypes.c_char * 8), ("n", ctypes.c_uint32)]


def _range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


@pytest.mark.parametrize(("index", "ct", "bits", "signed"),
                         [(i, *t) for i, t in enumerate(INTS)], ids=lambda v: str(v))
def test_int_ranges(index: int, ct: Any, bits: int, signed: bool) -> None:
    lo, hi = _range(bits, signed)
    name = f"f{index}"

    @settings(max_examples=60, deadline=None)
    @given(st.integers(min_value=lo, max_value=hi))
    def in_range(v: int) -> None:
        s = Ints()
        setattr(s, name, v)
        assert getattr(s, name) == v
        assert getattr(Ints.from_buffer_copy(bytes(s)), name) == v

    @settings(max_examples=60, deadline=None)
    @given(st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)))
    def out_of_range(v: int) -> None:
        s = Ints()
        with pytest.raises(ValueCheckError, match=name):
            setattr(s, name, v)
        assert getattr(s, name) == 0

    in_range()
    out_of_range()
    for v in (lo, hi):
        s = Ints()
        setattr(s, name, v)
        assert getattr(s, name) == v
    with pytest.raises(ValueCheckError, match="not an integer"):
        setattr(Ints(), name, 1.0)
    with pytest.raises(ValueCheckError):
        setattr(Ints(), name, "1")


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=12))
def test_strings(text: str) -> None:
    s = Text()
    if len(text.encode()) < 8:
        s.name = text
        assert s.name == text.split("\0")[0]
    else:
        with pytest.raises(ValueCheckError, match=r"name.*char\[8\]"):
            s.name = text
        assert s.name == ""
    s.n = 5
    assert s.n == 5  # a string write never spills into the next field


def test_unknown_field() -> None:
    with pytest.raises(ValueCheckError, match="nosuch"):
        Text().nosuch = 1


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_bitfield_descriptor(data: st.DataObject) -> None:
    nbytes = data.draw(st.sampled_from([1, 2, 4, 8, 16]))
    bits = data.draw(st.integers(min_value=1, max_value=min(64, nbytes * 8)))
    offset = data.draw(st.integers(min_value=0, max_value=nbytes * 8 - bits))
    signed = data.draw(st.booleans())
    background = data.draw(st.binary(min_size=nbytes, max_size=nbytes))

    cls: Any = type("B", (Struct,), {"_fields_": [("_raw", ctypes.c_uint8 * nbytes)],
                                     "v": Bitfield("_raw", offset, bits, signed)})
    obj = cls.from_buffer_copy(background)
    lo, hi = _range(bits, signed)
    v = data.draw(st.integers(min_value=lo, max_value=hi))
    obj.v = v
    assert obj.v == v
    word = int.from_bytes(bytes(obj), sys.byteorder)
    mask = ((1 << bits) - 1) << offset
    old = int.from_bytes(background, sys.byteorder)
    assert word & ~mask == old & ~mask  # the other bits are untouched
    assert (word & mask) >> offset == v & ((1 << bits) - 1)
    bad = data.draw(st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)))
    with pytest.raises(ValueCheckError, match=f"{bits}-bit"):
        obj.v = bad
    assert obj.v == v
