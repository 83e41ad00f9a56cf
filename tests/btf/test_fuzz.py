"""Hostile BTF: mutated real BTF must end in BTFError (or parse), never anything else."""

from __future__ import annotations

import struct
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
from corebpf.btf.format_raw import to_raw, type_to_json
from corebpf.btf.writer import to_bytes
from corebpf.errors import BTFError
from tests.conftest import PROGS

INTERESTING_U32 = [0, 1, 2, 3, 4, 0x7F, 0x80, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
                   0xFFFFFFFF, 0x13000000, 0x04FFFFFF, 0x8400FFFF, 0x1F000000]


@cache
def seeds() -> tuple[bytes, ...]:
    obj = btf.load(PROGS / "btf_shapes.bpf.o").raw
    obj_be = btf.load(PROGS / "btf_shapes.bpfeb.o").raw
    return obj, obj_be


def exercise(spec: btf.Spec) -> None:
    """Everything a consumer may do with a spec."""
    for tid in spec.ids():
        t = spec.type(tid)
        spec.name(tid)
        spec.kind(tid)
        type_to_json(spec, tid)
        for fn in (spec.size_of, spec.align_of, spec.resolve, spec.skip_modifiers,
                   spec.resolve_kind, spec.vlen):
            try:
                fn(tid)
            except BTFError:
                pass
        if isinstance(t, btf.Struct | btf.Union):  # the raw reads CO-RE matching uses
            try:
                spec.member_index(tid)
                for i in range(len(t.members) + 1):
                    spec.member_at(tid, i)
                    spec.member(tid, i)
            except BTFError:
                pass
        del t
    to_raw(spec)
    for name in ("uses", "int", "node", ""):
        spec.find_by_name(name)
    try:
        to_bytes(spec)
    except BTFError:
        pass
    try:
        from corebpf.btf.format_c import to_c
    except ImportError:
        return
    try:
        to_c(spec)
    except BTFError:
        pass


mutation = st.one_of(
    st.tuples(st.just("byte"), st.integers(0, 1 << 20), st.integers(0, 255)),
    st.tuples(st.just("u32"), st.integers(0, 1 << 20), st.sampled_from(INTERESTING_U32)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 16)),
)


def mutate(data: bytes, muts: list[tuple[str, int, int]]) -> bytes:
    buf = bytearray(data)
    for what, pos, val in muts:
        if not buf:
            break
        pos %= len(buf)
        if what == "byte":
            buf[pos] = val
        elif what == "u32":
            pos -= pos % 4
            buf[pos : pos + 4] = struct.pack("<I", val)[: len(buf) - pos]
        elif what == "truncate":
            del buf[pos:]
        else:
            del buf[pos : pos + val]
    return bytes(buf)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 1), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_btf_raises_only_btf_error(seed: int, muts: list[tuple[str, int, int]]) -> None:
    data = mutate(seeds()[seed], muts)
    try:
        spec = btf.from_bytes(data, source="fuzz.btf")
    except BTFError as e:
        assert "fuzz.btf" in str(e)
        return
    try:
        exercise(spec)
    except BTFError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutation, min_size=1, max_size=4))
def test_mutated_elf_raises_only_btf_error(muts: list[tuple[str, int, int]]) -> None:
    data = mutate((PROGS / "btf_shapes.bpf.o").read_bytes(), muts)
    try:
        spec = btf.from_bytes(data, source="fuzz.o")
    except BTFError:
        return
    try:
        exercise(spec)
    except BTFError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=256))
def test_random_bytes(data: bytes) -> None:
    for blob in (data, b"\x9f\xeb\x01\x00" + data, b"\x7fELF" + data):
        try:
            exercise(btf.from_bytes(blob, source="rand"))
        except BTFError:
            pass


def test_reference_cycle_through_every_kind_is_bounded() -> None:
    from corebpf.btf.writer import Builder

    b = Builder()
    b.add(btf.Pointer(2))
    b.add(btf.Const(3))
    b.add(btf.Volatile(4))
    b.add(btf.Typedef("t", 5))
    b.add(btf.Array(1, 1, 2))
    b.add(btf.TypeTag("tag", 2))
    b.add(btf.Struct("s", 8, [btf.Member("a", 7, 0)]))
    b.add(btf.Union("u", 8, [btf.Member("b", 7, 0)]))
    spec = btf.from_bytes(b.encode())
    exercise(spec)


def test_huge_compressed_input_is_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import lzma

    from corebpf.btf import files as load_mod

    monkeypatch.setattr(load_mod, "MAX_DECOMPRESSED", 1 << 20)
    bomb = lzma.compress(b"\0" * (4 << 20))
    try:
        btf.from_bytes(bomb, source="bomb.xz")
    except BTFError as e:
        assert "decompresses to more than" in str(e)
    else:
        raise AssertionError("no error")


def test_huge_padding_is_refused_not_printed() -> None:
    """A corrupt member offset or struct size would need millions of padding lines in
    the C dump (found by this file's fuzzing: 24 GB before): BTFError instead. Real
    kernels' largest gap, 520,768 bits, still prints."""
    import pytest

    from corebpf.btf.format_c import to_c
    from corebpf.btf.writer import Builder

    def printed(size: int, offset: int) -> str:
        b = Builder()
        b.add(btf.Int("int", 4, btf.IntEncoding.SIGNED, 0, 32))
        b.add(btf.Struct("s", size, [btf.Member("a", 1, 0), btf.Member("b", 1, offset)]))
        return to_c(btf.from_bytes(b.encode(), source="pad.btf"))

    text = printed(520_768 // 8 + 8, 520_768 + 32)
    assert text.count("long: 64;") >= 520_768 // 64 - 2 and "int b;" in text
    with pytest.raises(BTFError, match=r"pad\.btf.*bits of padding before bit 2147483648"):
        printed(0x10000008, 1 << 31)
    with pytest.raises(BTFError, match="bits of padding"):
        printed(0x80000000, 32)  # the size alone


def test_padding_of_a_whole_dump_is_bounded_by_its_input() -> None:
    """Many structs, each with a gap just under the per-gap bound, would still print
    gigabytes: the whole dump's padding is bounded by the size of the BTF."""
    import pytest

    from corebpf.btf.format_c import _MAX_PADDING_BITS, to_c
    from corebpf.btf.writer import Builder

    gap = _MAX_PADDING_BITS - 64
    b = Builder()
    b.add(btf.Int("int", 4, btf.IntEncoding.SIGNED, 0, 32))
    for i in range(200):
        b.add(btf.Struct(f"s{i}", (gap + 64) // 8, [btf.Member("a", 1, 0),
                                                    btf.Member("b", 1, gap + 32)]))
    with pytest.raises(BTFError, match=r"many\.btf.*bits of padding per byte of BTF"):
        to_c(btf.from_bytes(b.encode(), source="many.btf"))
