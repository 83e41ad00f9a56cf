"""Writing BTF: byte-identical round trips, the builder, and the kernel's verdict."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
from corebpf.btf.writer import Builder, encode, to_bytes
from corebpf.errors import BTFError
from tests.conftest import PROGS, real_btf_files


@pytest.mark.parametrize("path", real_btf_files(), ids=lambda p: p.name)
def test_unmodified_real_btf_is_byte_identical(path) -> None:  # type: ignore[no-untyped-def]
    spec = btf.load(path, index_cache=False)
    assert to_bytes(spec) == spec.raw


@pytest.mark.parametrize("obj", ["btf_shapes.bpf.o", "btf_shapes.bpfeb.o"])
def test_object_btf_round_trips_in_its_byte_order(obj: str) -> None:
    spec = btf.load(PROGS / obj)
    assert to_bytes(spec) == spec.raw


def test_builder_dedups_strings() -> None:
    b = Builder()
    i = b.add(btf.Int("int", 4, btf.IntEncoding.SIGNED, 0, 32))
    b.add(btf.Struct("int", 8, [btf.Member("int", i, 0), btf.Member("x", i, 32)]))
    raw = b.encode()
    assert raw.count(b"int\0") == 1
    s = btf.from_bytes(raw)
    assert s.find_by_name("int") == [1, 2]


def _kernel_can_load() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_BPF) for BPF_BTF_LOAD"
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "kernel without BTF support"
    return None


@pytest.mark.skipif(_kernel_can_load() is not None, reason=str(_kernel_can_load()))
def test_builder_output_loads_into_the_kernel() -> None:
    from corebpf.sys import btf_load

    b = Builder()
    i32 = b.add(btf.Int("int", 4, btf.IntEncoding.SIGNED, 0, 32))
    u8 = b.add(btf.Int("unsigned char", 1, 0, 0, 8))
    ptr = b.add(btf.Pointer(0))
    arr = b.add(btf.Array(u8, i32, 16))
    s = b.add(btf.Struct("event", 32, [
        btf.Member("pid", i32, 0), btf.Member("flags", i32, 32, 3),
        btf.Member("ptr", ptr, 64), btf.Member("comm", arr, 128)], bitfield_encoding=True))
    b.add(btf.Union("u", 4, [btf.Member("a", i32, 0)]))
    b.add(btf.Enum("e", 4, [btf.EnumValue("A", 0), btf.EnumValue("B", -1)], signed=True))
    b.add(btf.Enum64("e64", 8, [btf.EnumValue("X", 1 << 40)]))
    b.add(btf.Fwd("later", is_union=True))
    td = b.add(btf.Typedef("event_t", s))
    b.add(btf.Const(td))
    b.add(btf.Volatile(i32))
    b.add(btf.Restrict(ptr))
    proto = b.add(btf.FuncProto(i32, [btf.Param("ctx", ptr)]))
    fn = b.add(btf.Func("handler", proto, btf.FuncLinkage.GLOBAL))
    b.add(btf.Float("double", 8))
    var = b.add(btf.Var("counter", i32, btf.VarLinkage.GLOBAL))
    b.add(btf.Datasec(".data", 4, [btf.VarSecinfo(var, 0, 4)]))
    b.add(btf.DeclTag("tagged", fn, -1))
    b.add(btf.TypeTag("user", i32))
    raw = b.encode()
    with btf_load(raw) as fd:
        assert fd.fd >= 0
    # the whole kernel BTF, re-encoded by us, also passes the kernel's checker
    with btf_load(to_bytes(btf.kernel())) as fd:
        assert fd.fd >= 0


@pytest.mark.skipif(_kernel_can_load() is not None, reason=str(_kernel_can_load()))
def test_kernel_rejects_bad_btf_with_a_log() -> None:
    from corebpf.errors import LoadError
    from corebpf.sys import btf_load

    b = Builder()
    b.add(btf.Pointer(42))
    with pytest.raises(LoadError) as e:
        btf_load(b.encode())
    assert "Invalid type_id" in e.value.log


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=0, max_size=12)
ids = st.integers(min_value=0, max_value=40)
u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)

types = st.one_of(
    st.builds(btf.Int, names, st.sampled_from([1, 2, 4, 8, 16]), st.sampled_from([0, 1, 2, 4]),
              st.integers(0, 255), st.integers(0, 128)),
    st.builds(btf.Pointer, ids),
    st.builds(btf.Array, ids, ids, u32),
    st.builds(btf.Struct, names, u32, st.lists(st.builds(btf.Member, names, ids,
                                                         st.integers(0, 0xFFFFFF),
                                                         st.integers(0, 255)), max_size=5),
              st.just(True)),
    st.builds(btf.Union, names, u32, st.lists(st.builds(btf.Member, names, ids, u32),
                                              max_size=5)),
    st.builds(btf.Enum, names, st.just(4), st.lists(
        st.builds(btf.EnumValue, names, st.integers(-(1 << 31), (1 << 31) - 1)), max_size=4),
        st.just(True)),
    st.builds(btf.Enum64, names, st.just(8), st.lists(
        st.builds(btf.EnumValue, names, st.integers(0, (1 << 64) - 1)), max_size=4)),
    st.builds(btf.Fwd, names, st.booleans()),
    st.builds(btf.Typedef, names, ids),
    st.builds(btf.Const, ids), st.builds(btf.Volatile, ids), st.builds(btf.Restrict, ids),
    st.builds(btf.Func, names, ids, st.sampled_from([0, 1, 2])),
    st.builds(btf.FuncProto, ids, st.lists(st.builds(btf.Param, names, ids), max_size=4)),
    st.builds(btf.Var, names, ids, st.sampled_from([0, 1, 2])),
    st.builds(btf.Datasec, names, u32, st.lists(st.builds(btf.VarSecinfo, ids, u32, u32),
                                                max_size=3)),
    st.builds(btf.Float, names, st.sampled_from([4, 8, 16])),
    st.builds(btf.DeclTag, names, ids, st.integers(-1, 100), st.booleans()),
    st.builds(btf.TypeTag, names, ids, st.booleans()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(types, min_size=1, max_size=30), st.sampled_from(["<", ">"]))
def test_encode_decode_property(tys: list[btf.Type], endian: str) -> None:
    raw = encode(tys, endian=endian)
    spec = btf.from_bytes(raw)
    assert [spec.type(i) for i in spec.ids()] == tys
    assert to_bytes(spec) == raw


def test_builder_names_a_type_id_past_its_types() -> None:
    """A corrupt input's dangling reference is a BTFError naming the id, not IndexError."""
    b = Builder()
    b.add(btf.Int(name="int", size=4, encoding=btf.IntEncoding.SIGNED, bit_offset=0, bits=32))
    assert b[1].name == "int"
    with pytest.raises(BTFError, match=r"type id 7 out of range \(the last type is \[1\]\)"):
        b[7]
