"""The differential proof: every CO-RE decision corebpf makes equals libbpf 1.1's, for the
project's CO-RE objects against every real kernel BTF available."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.core import relocate
from corebpf.obj import ObjectSpec, RelocKind
from tests.conftest import KERNEL_BTF, PROGS, corpus_files, real_btf_files
from tests.core.libbpf_oracle import decisions

OBJECTS = ["core_kinds.bpf.o", "core_arrays.bpf.o", "execsnoop.bpf.o", "core_module.bpf.o",
           "core_poison.bpf.o"]
OBJECTS += sorted(p.name for p in (PROGS / "core").glob("*.bpf.o")) if (
    PROGS / "core").is_dir() else []
KERNELS = real_btf_files()
SEEN: Counter[str] = Counter()


def _obj_path(name: str) -> Path:
    p = PROGS / name
    return p if p.exists() else PROGS / "core" / name


@pytest.mark.parametrize("kernel", KERNELS, ids=lambda p: p.name)
def test_decisions_equal_libbpf(kernel: Path, oracle: None, tmp_path: Path) -> None:
    spec = btf.load(kernel, index_cache=False)
    raw = kernel if kernel == KERNEL_BTF else tmp_path / "target.btf"
    if raw != kernel:
        raw.write_bytes(spec.raw)
    for name in OBJECTS:
        obj_path = _obj_path(name)
        expected = decisions(obj_path, raw)
        assert expected, f"libbpf logged no CO-RE decision for {name}"
        reports, _ = relocate(ObjectSpec.load(obj_path), spec)
        ours = {}
        for r in reports:
            if r.error is not None:
                ours[(r.program, r.index)] = ("error", r.error)
            elif r.poisoned:
                ours[(r.program, r.index)] = ("poison", None)
            else:
                ours[(r.program, r.index)] = ("ok", r.target)
            SEEN[r.kind.libbpf_name] += 1
        for key, (verdict, value) in expected.items():
            got = ours.get(key)
            assert got is not None, f"{name} on {kernel.name}: we skipped relo {key}"
            if verdict == "error":
                assert got[0] == "error", f"{name} on {kernel.name} {key}: libbpf: {value}; " \
                    f"we: {got}"
                SEEN["error"] += 1
            else:
                assert got == (verdict, value), f"{name} on {kernel.name} {key}: libbpf " \
                    f"{verdict} {value}, we {got}"
                SEEN[verdict] += 1
        # libbpf stops at its first error: everything up to there must match one for one
        if not any(v == "error" for v, _ in expected.values()):
            assert len(expected) == len(ours), f"{name} on {kernel.name}: count differs"


def test_coverage_of_the_comparison() -> None:
    """Run last: the objects exercised every kind and every outcome somewhere."""
    if not SEEN:
        pytest.skip("the differential test did not run")
    kinds = {k.libbpf_name for k in RelocKind}
    unseen = sorted((kinds - set(SEEN)) | {o for o in ("poison", "error", "ok") if not SEEN[o]})
    if unseen and not corpus_files():
        pytest.skip(f"{', '.join(unseen)} occur only on ../shared/btf-corpus kernels, absent here")
    assert not unseen, unseen
