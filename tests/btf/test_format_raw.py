"""Our text and JSON dumps against bpftool's, line for line."""

from __future__ import annotations

import json

import pytest

import corebpf.btf as btf
from corebpf.btf.format_raw import dump_json, to_raw
from corebpf.btf.writer import Builder
from tests.conftest import PROGS, raw_copy, real_btf_files, run_bpftool


@pytest.mark.parametrize("path", real_btf_files(), ids=lambda p: p.name)
def test_raw_dump_matches_bpftool(path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    raw = raw_copy(path, tmp_path)
    expected = run_bpftool("btf", "dump", "file", str(raw))
    ours = to_raw(btf.load(path, index_cache=False))
    assert ours == expected


@pytest.mark.parametrize("obj", ["btf_shapes.bpf.o", "btf_shapes.bpfeb.o"])
def test_raw_dump_of_objects_matches_bpftool(obj: str) -> None:
    expected = run_bpftool("btf", "dump", "file", str(PROGS / obj))
    assert to_raw(btf.load(PROGS / obj)) == expected


def _split_pair(tmp_path):  # type: ignore[no-untyped-def]
    base_path = PROGS / "btf_shapes.bpf.o"
    base = btf.load(base_path)
    b = Builder(base)
    i = base.find("int", btf.Kind.INT)
    s = b.add(btf.Struct("mod_s", 8, [btf.Member("next", i, 0), btf.Member("own", i, 32)]))
    b.add(btf.Pointer(s))
    b.add(btf.Datasec(".mod", 4, [btf.VarSecinfo(base.find("g_counter"), 0, 4)]))
    split = tmp_path / "mod.btf"
    split.write_bytes(b.encode())
    base_raw = tmp_path / "base.btf"
    base_raw.write_bytes(base.raw)
    return base_raw, split


def test_split_dump_matches_bpftool(tmp_path) -> None:  # type: ignore[no-untyped-def]
    base_raw, split = _split_pair(tmp_path)
    expected = run_bpftool("-B", str(base_raw), "btf", "dump", "file", str(split))
    ours = to_raw(btf.load(split, base=btf.load(base_raw)))
    assert ours == expected


def _json_types(spec: btf.Spec) -> list[dict[str, object]]:
    out: list[str] = []
    dump_json(spec, out.append)
    return [json.loads(line) for line in "".join(out).splitlines()]


@pytest.mark.parametrize("obj", ["btf_shapes.bpf.o", "btf_shapes.bpfeb.o"])
def test_json_matches_bpftool(obj: str) -> None:
    expected = json.loads(run_bpftool("-j", "btf", "dump", "file", str(PROGS / obj)))["types"]
    assert _json_types(btf.load(PROGS / obj)) == expected


def _fix_bpftool_enum_values(types: list[dict[str, object]]) -> list[dict[str, object]]:
    """bpftool 7.1 sign-extends an unsigned 32-bit enum value into a u64 in JSON
    (``jsonw_uint_field(w, "val", v->val)`` with ``v->val`` an __s32): we print the real
    value, so undo that one quirk before comparing."""
    for t in types:
        if t["kind"] == "ENUM" and t["encoding"] == "UNSIGNED":
            for v in t["values"]:  # type: ignore[attr-defined]
                v["val"] &= 0xFFFFFFFF
    return types


def test_json_of_kernel_matches_bpftool(kernel_spec: btf.Spec) -> None:
    expected = json.loads(run_bpftool("-j", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"))
    assert _json_types(kernel_spec) == _fix_bpftool_enum_values(expected["types"])
