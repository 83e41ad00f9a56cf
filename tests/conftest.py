"""Shared test data: this machine's BTF, the project's Debian kernels, the shared corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
PROGS = ROOT / "tests" / "progs"
CORPUS = ROOT.parent / "shared" / "btf-corpus"
KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")


def corpus_files() -> list[Path]:
    """BTFHub-layout kernels in ../shared/btf-corpus (empty when absent)."""
    return sorted(CORPUS.rglob("*.btf.tar.xz")) if CORPUS.is_dir() else []


def debian_files() -> list[Path]:
    """The project's own Debian kernel BTFs (tests/data/btf/*.btf.xz)."""
    return sorted((DATA / "btf").glob("*.btf.xz"))


def real_btf_files() -> list[Path]:
    files = [KERNEL_BTF] if KERNEL_BTF.exists() else []
    return files + debian_files() + corpus_files()


def bpftool() -> str:
    path = shutil.which("bpftool") or ("/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool")
                                       else None)
    if path is None:
        pytest.skip("bpftool is not installed (apt-get install bpftool)")
    return path


def run_bpftool(*args: str) -> str:
    return subprocess.run(
        [bpftool(), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="session")
def kernel_spec():  # type: ignore[no-untyped-def]
    import corebpf.btf as btf

    if not KERNEL_BTF.exists():
        pytest.skip("this kernel exposes no /sys/kernel/btf/vmlinux")
    return btf.load(KERNEL_BTF)


def raw_copy(path: Path, tmp_dir: Path) -> Path:
    """A raw BTF file for peers that want one (bpftool reads no .tar.xz)."""
    import corebpf.btf as btf

    if path == KERNEL_BTF:
        return path
    out = tmp_dir / (path.name.split(".btf")[0] + ".btf")
    if not out.exists():
        out.write_bytes(btf.load(path, index_cache=False).raw)
    return out


def file_id(path: Path) -> str:
    return path.name


def module_files() -> list[tuple[Path, Path]]:
    """(split module BTF, its base) pairs from the project's Debian data."""
    out = []
    for mod in sorted((DATA / "btf" / "modules").glob("*/*.btf.xz")):
        base = DATA / "btf" / f"{mod.parent.name}.btf.xz"
        if base.exists():
            out.append((mod, base))
    return out


@pytest.fixture(scope="module")
def oracle() -> None:
    """libbpf 1.1's decisions through tests/core/core_oracle.c (skips without libbpf-dev)."""
    from tests.core.libbpf_oracle import OracleUnavailable, harness

    try:
        harness()
    except OracleUnavailable as e:
        pytest.skip(str(e))
