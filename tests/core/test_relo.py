"""Unit rules of the CO-RE engine, on handmade BTF (the libbpf differential test is in
test_against_libbpf.py)."""

from __future__ import annotations

import pytest

import corebpf.btf as btf
from corebpf.btf.writer import Builder
from corebpf.core.relo import (
    CoreError,
    essential_name_len,
    fields_are_compat,
    parse_access_string,
    types_are_compat,
    types_match,
)


@pytest.mark.parametrize(
    ("name", "n"),
    [("task_struct", 11), ("task_struct___old", 11), ("a___b___c", 5), ("x____y", 6),
     ("__x___y", 3), ("x___", 4), ("___x", 4), ("", 0), ("ab___", 5)],
)
def test_essential_name_len(name: str, n: int) -> None:
    assert essential_name_len(name) == n


@pytest.mark.parametrize(("s", "want"), [("0", [0]), ("0:1:2", [0, 1, 2]), ("1: 2", [1, 2]),
                                          ("0:+3", [0, 3])])
def test_access_strings(s: str, want: list[int]) -> None:
    assert parse_access_string(s) == want


@pytest.mark.parametrize("s", ["", ":0", "0:a", "0::1", "x"])
def test_bad_access_strings(s: str) -> None:
    with pytest.raises(CoreError):
        parse_access_string(s)


def _pair() -> tuple[btf.Spec, btf.Spec]:
    a = Builder()
    i32 = a.add(btf.Int("int", 4, btf.IntEncoding.SIGNED, 0, 32))
    u16 = a.add(btf.Int("unsigned short", 2, 0, 0, 16))
    s = a.add(btf.Struct("s", 8, [btf.Member("x", i32, 0), btf.Member("y", u16, 32)]))
    a.add(btf.Pointer(s))
    a.add(btf.Enum("e", 4, [btf.EnumValue("A", 0), btf.EnumValue("B", 1)]))
    a.add(btf.Fwd("s", False))
    b = Builder()
    u32 = b.add(btf.Int("unsigned int", 4, 0, 0, 32))
    i16 = b.add(btf.Int("short", 2, btf.IntEncoding.SIGNED, 0, 16))
    s2 = b.add(btf.Struct("s", 12, [btf.Member("y", i16, 0), btf.Member("x", u32, 32),
                                    btf.Member("z", u32, 64)]))
    b.add(btf.Pointer(s2))
    b.add(btf.Enum64("e", 8, [btf.EnumValue("B", 7), btf.EnumValue("A", 9)]))
    b.add(btf.Enum("e", 4, [btf.EnumValue("A", 0)]))
    return btf.from_bytes(a.encode()), btf.from_bytes(b.encode())


def test_compatibility_rules() -> None:
    a, b = _pair()
    assert fields_are_compat(a, 1, b, 1)  # ints of any size/sign
    assert types_are_compat(a, 3, b, 3)  # any two structs
    assert types_are_compat(a, 4, b, 4)  # pointers to compatible
    assert types_are_compat(a, 5, b, 5)  # enum vs enum64
    assert not types_match(a, 3, b, 3)  # member types differ in signedness
    assert not types_match(a, 5, b, 5)  # sizes differ (4 vs 8)
    assert not types_match(a, 5, b, 6)  # local has B, target lacks it
    assert types_match(a, 6, b, 3, behind_ptr=True)  # fwd struct behind a pointer
    assert not types_match(a, 6, b, 3, behind_ptr=False)
