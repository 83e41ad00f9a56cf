"""Binaries built from tests/dwarf/src with the installed compilers, once per session."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SRC = Path(__file__).parent / "src"

# (name, compiler, flags): executables of two compile units, a shared library, an object
VARIANTS = [
    (f"{cc}-O{opt}-dwarf{ver}", cc, [f"-O{opt}", f"-gdwarf-{ver}"])
    for cc in ("gcc", "clang-19")
    for opt in (0, 2)
    for ver in (4, 5)
]


def _build(out: Path, cc: str, flags: list[str], kind: str) -> Path:
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    c = [cc, *flags]
    if kind == "exe":
        target = out / "shapes"
        cmd = [*c, "-o", str(target), str(SRC / "shapes.c"), str(SRC / "lib.c")]
    elif kind == "so":
        target = out / "liblib.so"
        cmd = [*c, "-shared", "-fPIC", "-o", str(target), str(SRC / "lib.c")]
    else:
        target = out / "shapes.o"
        cmd = [*c, "-c", "-o", str(target), str(SRC / "shapes.c")]
    subprocess.run(cmd, check=True, capture_output=True)
    return target


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """build(variant, kind) -> path of the built binary (cached)."""
    cache: dict[tuple[str, str], Path] = {}
    by_name = {v[0]: v for v in VARIANTS}

    def get(variant: str, kind: str = "exe") -> Path:
        key = (variant, kind)
        if key not in cache:
            _, cc, flags = by_name[variant]
            out = tmp_path_factory.mktemp(f"{variant}-{kind}")
            cache[key] = _build(out, cc, flags, kind)
        return cache[key]

    return get
