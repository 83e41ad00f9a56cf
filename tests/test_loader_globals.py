"""Global variables: their layout (corebpf.globals), Python values checked against their
BTF types before load (load(rodata=...)), and the same checks for text (--set)."""

from __future__ import annotations

import os
import struct

import pytest

from corebpf.errors import Error
from corebpf.globals import (
    VariableError,
    data_sections,
    declaration,
    encode_variable,
    parse_variable,
    variables,
)
from corebpf.loader import load
from corebpf.obj import ObjectSpec
from tests.conftest import PROGS

GLOBALS = PROGS / "globals.bpf.o"
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/sys/kernel/btf/vmlinux"),
                                reason="loading BPF programs needs root and a kernel with BTF")


@pytest.fixture(scope="module")
def obj() -> ObjectSpec:
    return ObjectSpec.load(GLOBALS)


def test_data_sections_and_variables(obj: ObjectSpec) -> None:
    secs = {ds.section: ds for ds in data_sections(obj)}
    assert set(secs) == {".rodata", ".data", ".bss"}
    ro = secs[".rodata"]
    assert ro.read_only and ro.map_name == "globals.rodata" and ro.type_id
    assert [(v.name, v.offset, v.size) for v in ro.variables] == [
        ("target_uid", 0, 4), ("delta", 4, 4), ("flag", 8, 1), ("mode", 12, 4),
        ("comm", 16, 8), ("addr", 24, 4), ("cfg", 28, 8), ("big", 40, 8)]
    assert not secs[".data"].read_only and secs[".data"].variables[0].name == "counter"
    assert set(variables(obj, read_only=False)) == {"counter", "seen"}
    assert len(variables(obj)) == 10
    decls = {n: declaration(obj, v) for n, v in variables(obj).items()}
    assert decls["target_uid"] == "const volatile __u32 target_uid"
    assert decls["comm"] == "const volatile char comm[8]"
    assert decls["cfg"] == "const volatile struct cfg cfg"
    assert decls["seen"] == "__u64 seen"


def test_values_are_encoded_by_type(obj: ObjectSpec) -> None:
    def enc(name: str, value: object) -> bytes:
        return encode_variable(obj, name, value, read_only=True)

    assert enc("target_uid", 1000) == struct.pack("<I", 1000)
    assert enc("delta", -5) == struct.pack("<i", -5)
    assert enc("flag", True) == b"\x01"
    assert enc("mode", "MODE_ON") == enc("mode", 5) == struct.pack("<I", 5)
    assert enc("comm", "bash") == b"bash\0\0\0\0"
    assert enc("addr", b"\x7f\0\0\x01") == b"\x7f\0\0\x01"
    assert enc("addr", [10, 0, 0, 1]) == b"\x0a\0\0\x01"
    assert enc("cfg", {"port": 80, "name": "www", "on": True}) == \
        struct.pack("<H4s?x", 80, b"www", True)
    assert enc("big", -(1 << 63)) == struct.pack("<q", -(1 << 63))
    assert encode_variable(obj, "counter", 7) == struct.pack("<i", 7)  # writable: any time


BAD = [
    ("target_uid", "1000", r"\.rodata variable 'target_uid' \(const volatile __u32\): "
                           r"expected an integer for unsigned int, not str$"),
    ("target_uid", -5, r"\(const volatile __u32\): -5 does not fit in unsigned int "
                       r"\(0\.\.4294967295\)$"),
    ("delta", 1 << 31, r"'delta' \(const volatile int\): 2147483648 does not fit in int"),
    ("target_uid", 1.0, r"expected an integer for unsigned int, not 1\.0$"),
    ("flag", 2, r"'flag' \(const volatile _Bool\): expected a bool"),
    ("mode", "MODE_MAYBE", r"'MODE_MAYBE' is not an enumerator of enum mode$"),
    ("comm", "eightchr", r"'comm' \(const volatile char\[8\]\): 8-byte string does not "
                         r"fit char\[8\] \(at most 7 bytes and the NUL\)"),
    ("comm", b"bash", r"4 bytes for a 8-byte value"),
    ("addr", [1, 2, 3, 4, 5], r"5 elements for a 4-element array"),
    ("addr", [1, 256], r"'addr' \(const volatile __u8\[4\]\): \[1\]: 256 does not fit in "
                       r"unsigned char \(0\.\.255\)$"),
    ("cfg", {"port": 1 << 16}, r"'cfg' \(const volatile struct cfg\): port: 65536 does "
                               r"not fit in unsigned short"),
    ("cfg", {"name": "toolong"}, r"name: 7 bytes for a 4-byte array"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD)
def test_bad_values_name_the_variable(obj: ObjectSpec, name: str, value: object,
                                      message: str) -> None:
    with pytest.raises(VariableError, match=message) as e:
        encode_variable(obj, name, value, read_only=True)
    assert str(e.value).startswith(f"{GLOBALS}: .rodata variable '{name}' (")
    assert str(e.value).count(f"'{name}'") == 1  # said once


def test_unknown_and_writable_names(obj: ObjectSpec) -> None:
    listing = ("(read-only globals: target_uid, delta, flag, mode, comm, addr, cfg, big)")
    with pytest.raises(VariableError) as e:
        encode_variable(obj, "nosuch", 1, read_only=True)
    assert str(e.value) == f"{GLOBALS}: no read-only global variable 'nosuch' {listing}"
    with pytest.raises(VariableError, match=r"\.bss variable 'seen' \(__u64\) is not "
                                            r"read-only.*target_uid, delta"):
        encode_variable(obj, "seen", 1, read_only=True)


def test_text_goes_through_the_same_checks(obj: ObjectSpec) -> None:
    def parse(name: str, text: str) -> bytes:
        return parse_variable(obj, name, text, read_only=True)

    assert parse("target_uid", "0x3e8") == struct.pack("<I", 1000)
    assert parse("flag", "true") == b"\x01"
    assert parse("mode", "MODE_ON") == parse("mode", "5")
    assert parse("comm", "bash") == b"bash\0\0\0\0"
    assert parse("cfg", '{"port": 80}') == struct.pack("<H4s?x", 80, b"", False)
    with pytest.raises(VariableError) as e:
        parse("target_uid", "-5")
    assert str(e.value) == (f"{GLOBALS}: .rodata variable 'target_uid' (const volatile "
                            "__u32): -5 does not fit in unsigned int (0..4294967295)")
    with pytest.raises(VariableError, match=r"'root' is not an integer \(unsigned int\)$"):
        parse("target_uid", "root")
    with pytest.raises(VariableError, match=r"'maybe' is not a boolean"):
        parse("flag", "maybe")
    with pytest.raises(VariableError, match=r"one of MODE_OFF, MODE_ON or an integer"):
        parse("mode", "MODE_X")


@needs_root
def test_load_sets_checked_values(obj: ObjectSpec) -> None:
    with load(obj, rodata={"target_uid": 1000, "mode": "MODE_ON", "comm": "sh",
                           "cfg": {"port": 8080, "on": True}, "delta": -1}) as coll:
        ro = coll.maps["globals.rodata"].mmap
        assert ro is not None
        assert struct.unpack_from("<Ii", ro, 0) == (1000, -1)
        assert struct.unpack_from("<I", ro, 12) == (5,)
        assert ro[16:24] == b"sh\0\0\0\0\0\0"
        assert struct.unpack_from("<H4s?", ro, 28) == (8080, b"\0\0\0\0", True)


@needs_root
@pytest.mark.parametrize(("rodata", "message"), [
    ({"nosuch": 1}, r"no read-only global variable 'nosuch' \(read-only globals: "
                    r"target_uid, delta"),
    ({"target_uid": "1000"}, r"expected an integer for unsigned int, not str"),
    ({"target_uid": -5}, r"-5 does not fit in unsigned int"),
    ({"comm": "too long!"}, r"9-byte string does not fit char\[8\]"),
    ({"counter": 3}, r"\.data variable 'counter' \(int\) is not read-only"),
])
def test_load_refuses_bad_rodata_before_creating_anything(
        obj: ObjectSpec, rodata: dict[str, object], message: str) -> None:
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(VariableError, match=message):
        load(obj, rodata=rodata)
    assert set(os.listdir("/proc/self/fd")) == before
    assert issubclass(VariableError, Error)
