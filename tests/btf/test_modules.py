"""Real split BTF: Debian kernel modules on top of their vmlinux."""

from __future__ import annotations

from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.btf.format_raw import to_raw
from corebpf.btf.writer import to_bytes
from tests.conftest import module_files, raw_copy, run_bpftool

PAIRS = module_files()


@pytest.mark.parametrize(("mod", "base"), PAIRS, ids=[m.name for m, _ in PAIRS])
def test_module_split_btf(mod: Path, base: Path, tmp_path: Path) -> None:
    base_spec = btf.load(base, index_cache=False)
    spec = btf.load(mod, base=base_spec, index_cache=False)
    assert spec.first_id == base_spec.type_count
    assert spec.type_count > spec.first_id
    # types refer to base types and base strings
    refs = [t for _, t in spec.items()
            if any(r < spec.first_id for r in btf.types.referenced_ids(t))]
    assert refs
    # byte-identical re-encoding, deduplicating strings against the base
    assert to_bytes(spec) == spec.raw
    # line for line what bpftool prints for split BTF
    raw_mod = tmp_path / "mod.btf"
    raw_mod.write_bytes(spec.raw)
    expected = run_bpftool("-B", str(raw_copy(base, tmp_path)), "btf", "dump", "file",
                           str(raw_mod))
    assert to_raw(spec) == expected


def test_module_type_lookup() -> None:
    pairs = {m.name: (m, b) for m, b in PAIRS}
    if "veth.btf.xz" not in pairs:
        pytest.skip("no veth module BTF in tests/data")
    mod, base = pairs["veth.btf.xz"]
    spec = btf.load(mod, base=btf.load(base))
    tid = spec.find("veth_priv", btf.Kind.STRUCT)
    assert tid >= spec.first_id
    assert spec.find("task_struct", btf.Kind.STRUCT) < spec.first_id
    assert spec.size_of(tid) > 0
