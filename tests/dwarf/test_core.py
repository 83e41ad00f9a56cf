"""A CO-RE relocation through a 2-D array: works on from-dwarf's BTF, not on pahole's."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.core import relocate
from corebpf.dwarf import btf_from_dwarf
from corebpf.obj import ObjectSpec

from .conftest import SRC

pytest.importorskip("elftools")


@pytest.mark.parametrize("variant", ["gcc-O0-dwarf5", "clang-19-O2-dwarf4"])
def test_2d_array_relocation(build: Callable[..., Path], tmp_path: Path, variant: str) -> None:
    for tool in ("clang-19", "pahole"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    binary = build(variant)
    obj = tmp_path / "read_2d.bpf.o"
    machine = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True,
                             check=True).stdout.strip()
    subprocess.run(["clang-19", "-O2", "-g", "-target", "bpfel", f"-I/usr/include/{machine}",
                    "-c", "-o", str(obj), str(SRC / "read_2d.bpf.c")], check=True)
    ours = btf.from_bytes(btf_from_dwarf(binary))
    node = ours.type(ours.find("node", btf.Kind.STRUCT))
    assert isinstance(node, btf.Struct)
    m_offset = next(m.offset for m in node.members if m.name == "m") // 8
    (report,), _ = relocate(ObjectSpec.load(obj), ours)
    # &n->m[1]: 1 row of 3 ints past m, wherever m now is
    assert (report.local, report.target, report.poisoned) == (12, m_offset + 12, False)

    subprocess.run(["pahole", f"--btf_encode_detached={tmp_path / 'p.btf'}", str(binary)],
                   check=True)
    (theirs,), _ = relocate(ObjectSpec.load(obj), btf.load(tmp_path / "p.btf"))
    assert theirs.poisoned  # pahole's int m[6] has no m[1] of 3 ints
