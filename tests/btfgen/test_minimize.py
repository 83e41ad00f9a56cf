"""The proof for minimized BTF over every real kernel we have (this machine, the Debian
kernels, the corpus): relocating against it decides as against the full BTF (our engine
and libbpf's), bpftool and the kernel accept it, and it is no bigger than 1.10x what
`bpftool gen min_core_btf` writes."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.btfgen import Minimizer, load_object, minimize
from corebpf.core import RelocationReport, relocate
from corebpf.obj import ObjectSpec, RelocKind
from tests.conftest import PROGS, bpftool, file_id, raw_copy, real_btf_files
from tests.core.libbpf_oracle import decisions

OBJECTS = ["core_kinds", "core_arrays", "core_poison", "execsnoop", "core_module",
           "tools_sized"]
KERNELS = real_btf_files()
#: bpftool's size x this is the most ours may weigh
SIZE_FACTOR = 1.10

Decision = tuple[str, int | None, int | None, bool, bool]


def decided(reports: list[RelocationReport]) -> dict[tuple[str, str, int], Decision]:
    """What a relocation decided, without target type ids (renumbered by design)."""
    out = {}
    for r in reports:
        target = None if r.kind == RelocKind.TYPE_ID_TARGET else r.target
        out[r.program, r.section, r.index] = (
            r.kind.libbpf_name, r.local, None if r.poisoned else target, r.poisoned,
            r.error is not None)
    return out


def objects() -> list[ObjectSpec]:
    return [load_object(PROGS / f"{name}.bpf.o") for name in OBJECTS]


class Kernel:
    """One kernel's full BTF (raw file for peers) and our minimized BTF of all objects."""

    def __init__(self, path: Path, tmp: Path):
        self.path = path
        self.spec = btf.load(path, index_cache=False)
        self.raw = raw_copy(path, tmp)
        self.minimized = minimize(objects(), self.spec)
        self.out = tmp / f"{self.raw.stem}.min.btf"
        self.out.write_bytes(self.minimized)


@pytest.fixture(scope="module", params=KERNELS, ids=file_id)
def kernel(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    yield Kernel(request.param, tmp_path_factory.mktemp("btfgen"))


def test_there_are_kernels() -> None:
    assert KERNELS, "no kernel BTF at all (no /sys/kernel/btf/vmlinux, no tests/data/btf)"


def test_same_decisions_as_full_btf(kernel: Kernel) -> None:
    minimized = btf.from_bytes(kernel.minimized, source=str(kernel.out))
    assert minimized.type_count < kernel.spec.type_count // 20
    for obj in objects():
        full, _ = relocate(obj, kernel.spec)
        small, _ = relocate(obj, minimized)
        assert decided(small) == decided(full), f"{obj.source} on {kernel.path}"
        # and each object's own minimized BTF
        alone = btf.from_bytes(minimize([obj], kernel.spec))
        assert decided(relocate(obj, alone)[0]) == decided(full), f"{obj.source} alone"


def test_one_parse_serves_many_objects(kernel: Kernel) -> None:
    m = Minimizer(kernel.spec)
    for obj in objects():
        m.add_object(obj)
    assert m.to_bytes() == kernel.minimized
    assert btf.from_bytes(m.to_bytes()).type_count - 1 == m.type_count


def _bpftool_min(raw: Path, out: Path, objs: list[Path]) -> int | None:
    """Size of bpftool's output, None when bpftool refuses the input."""
    r = subprocess.run([bpftool(), "gen", "min_core_btf", str(raw), str(out),
                        *map(str, objs)], capture_output=True, text=True, check=False)
    return os.path.getsize(out) if r.returncode == 0 else None


def test_size_within_bpftool(kernel: Kernel, tmp_path: Path) -> None:
    paths = [PROGS / f"{name}.bpf.o" for name in OBJECTS]
    theirs = _bpftool_min(kernel.raw, tmp_path / "all.btf", paths)
    if theirs is not None:
        assert len(kernel.minimized) <= SIZE_FACTOR * theirs, (len(kernel.minimized), theirs)
    for path in paths:
        ours = len(minimize([load_object(path)], kernel.spec))
        theirs = _bpftool_min(kernel.raw, tmp_path / f"{path.stem}.btf", [path])
        if theirs is not None:
            assert ours <= SIZE_FACTOR * theirs, f"{path.name}: {ours} > {theirs}"


def test_bpftool_reads_it(kernel: Kernel) -> None:
    text = subprocess.run([bpftool(), "btf", "dump", "file", str(kernel.out)],
                          capture_output=True, text=True, check=True).stdout
    assert "STRUCT 'task_struct'" in text


def test_libbpf_decides_the_same(kernel: Kernel, oracle: None) -> None:
    """libbpf 1.1 itself, given the minimized BTF as btf_custom_path."""
    for name in OBJECTS:
        path = PROGS / f"{name}.bpf.o"
        type_id_target = {(r.program, r.index) for r in relocate(load_object(path),
                                                                  kernel.spec)[0]
                          if r.kind == RelocKind.TYPE_ID_TARGET}
        full = decisions(path, kernel.raw)
        small = decisions(path, kernel.out)
        assert full, f"libbpf logged nothing for {name}"
        for key in type_id_target:  # renumbered: only the verdict must agree
            if key in full and key in small:
                full[key] = (full[key][0], None)
                small[key] = (small[key][0], None)
        assert small == full, f"{name} on {kernel.path}"


@pytest.mark.skipif(os.geteuid() != 0, reason="BPF_BTF_LOAD needs root")
def test_kernel_accepts_it(kernel: Kernel) -> None:
    from corebpf.sys import btf_load

    if kernel.spec.endian != "<" or os.uname().machine not in ("x86_64", "aarch64"):
        pytest.skip("the kernel loads BTF of its own byte order only")
    with btf_load(kernel.minimized) as fd:
        assert fd.fd >= 0
