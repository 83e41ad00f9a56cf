"""bpftool's BTF dumper and JSON writer, and reading their shape back (no kernel)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corebpf.btf import Spec
from corebpf.btf.codec import CodecError
from corebpf.btf.types import Func
from corebpf.inspect.values import Obj, Raw, dump, encode, func_signature, render, to_python
from corebpf.obj import ObjectSpec
from tests.conftest import PROGS


def _spec(name: str) -> Spec:
    btf = ObjectSpec.load(PROGS / name).btf
    assert btf is not None
    return btf


LE, BE = _spec("inspect.bpf.o"), _spec("inspect.bpfeb.o")
VALUE = {"count": 5, "delta": -3, "port": 8080, "small": 200, "tiny": -2, "comm": "bash",
         "raw": [1, 2, 3, 4], "color": "BLUE", "on": True, "flag_a": "0x1", "level": "0x5",
         "mode": "0x9", "sflag": "0x1d", "u": {"as_int": 16909060, "as_bytes": [4, 3, 2, 1]},
         "pts": [{"x": -1, "y": 2}, {"x": 3, "y": -4}], "ptr": 0xFFFF888012345678,
         "wide": "0x10000000000000000000000005"}


def tid(spec: Spec, name: str) -> int:
    return spec.find(name)


def test_a_value_reads_back_as_bpftool_prints_it() -> None:
    for spec, as_bytes in ((LE, [4, 3, 2, 1]), (BE, [1, 2, 3, 4])):
        t = tid(spec, "value")
        raw = encode(spec, t, {**VALUE, "u": {"as_int": 16909060}})
        assert len(raw) == spec.size_of(t)
        assert to_python(dump(spec, t, raw)) == {
            **VALUE, "u": {"as_int": 16909060, "as_bytes": as_bytes}}
    assert encode(LE, tid(LE, "value"), VALUE) != encode(BE, tid(BE, "value"), VALUE)


def test_plain_tokens_are_bare() -> None:
    t = tid(LE, "value")
    raw = encode(LE, t, {**VALUE, "ptr": 0})
    tree = dump(LE, t, raw, plain=True)
    assert isinstance(tree, Obj)
    got = dict(tree)
    assert got["ptr"] == Raw("(nil)") and isinstance(got["sflag"], Raw)
    assert got["wide"] == "0x10000000000000000000000005"
    text = render(tree, pretty=True, bpftool_strings=True)
    assert '\n    "ptr": (nil),\n' in text and '\n    "sflag": 0x1d,\n' in text
    assert '\n    "raw": [1,2,3,4\n    ],\n' in text  # arrays side by side, ] on its own line


def test_strings_only_for_printable_nul_terminated_chars() -> None:
    t = tid(LE, "key")
    raw = (2).to_bytes(4, "little") + b"two\x01" + bytes(8)
    assert to_python(dump(LE, t, raw)) == {"id": 2, "name": [116, 119, 111, 1] + [0] * 8}
    raw = (2).to_bytes(4, "little") + b"x" * 12  # no NUL: not a string either
    assert to_python(dump(LE, t, raw))["name"] == [120] * 12
    raw = (2).to_bytes(4, "little") + b"ok\0\x01" + bytes(8)
    assert to_python(dump(LE, t, raw))["name"] == "ok"


def test_writer_quotes_as_bpftool() -> None:
    assert render("a\\b'c\"", pretty=False, bpftool_strings=True) == '"a\\nb\\\'c\\""'
    assert render("a\\b", pretty=False) == '"a\\\\b"'  # JSON output stays JSON
    assert render(Obj([("", Obj([("x", 1)])), ("", 2)]), pretty=False) == '{"":{"x":1},"":2}'
    assert render([], pretty=True) == "[]"
    assert render(Obj([("a", [])]), pretty=True) == '{\n    "a": []\n}'


def test_encode_errors_name_the_field() -> None:
    t = tid(LE, "value")
    for value, msg in (({"port": 70000}, r"value\.port: 70000 does not fit"),
                       ({"pts": [{}, {}, {}]}, r"value\.pts: 3 elements for an array of 2"),
                       ({"comm": "x" * 17}, r"value\.comm: 17 bytes do not fit char\[16\]"),
                       ({"mode": 16}, r"value\.mode: 16 does not fit 4 bits"),
                       ({"color": "PINK"}, "enum color has no 'PINK'"),
                       ({"u": {"as_long": 1}}, "has no member 'as_long'"),
                       ({"on": "yes"}, "expected true or false"),
                       (["not", "an", "object"], "expected an object")):
        with pytest.raises(CodecError, match=msg):
            encode(LE, t, value)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=80, max_size=80))
def test_dump_encode_dump_is_dump(data: bytes) -> None:
    """Whatever bytes a map holds, what the dump prints writes back to bytes that print
    the same (padding, bytes after a string's NUL and non-0/1 bools are not kept)."""
    for spec in (LE, BE):
        t = tid(spec, "value")
        shown = dump(spec, t, data)
        assert dump(spec, t, encode(spec, t, to_python(shown))) == shown


def test_function_signatures_as_bpftool_prints_them() -> None:
    funcs = {LE.type(i).name: i for i in LE.ids() if isinstance(LE.type(i), Func)}
    assert func_signature(LE, funcs["on_getppid_with_a_long_name"]) == \
        "int on_getppid_with_a_long_name(void * ctx)"
    assert func_signature(LE, funcs["count_event"]) == "int count_event(__u32 slot)"
    assert func_signature(LE, funcs["on_sock_create"]) == \
        "int on_sock_create(struct bpf_sock * sk)"
    assert func_signature(LE, tid(LE, "value")) == "struct value "
    assert func_signature(LE, 0) == "void "
