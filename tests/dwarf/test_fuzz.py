"""Damaged DWARF: mutated .debug_info/.debug_abbrev end in DWARFError or BTF, never a traceback."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
from corebpf.dwarf import DWARFError, btf_from_dwarf

from .conftest import SRC

pytest.importorskip("elftools")


@cache
def seed(tmp: Path) -> tuple[bytes, dict[str, tuple[int, int]]]:
    """A small -g object and where its DWARF sections are."""
    from elftools.elf.elffile import ELFFile

    out = tmp / "lib.o"
    subprocess.run(["gcc", "-g", "-O0", "-c", "-o", str(out), str(SRC / "lib.c")], check=True)
    data = out.read_bytes()
    with out.open("rb") as f:
        elf = ELFFile(f)
        where = {s.name: (s["sh_offset"], s["sh_size"]) for s in elf.iter_sections()
                 if s.name in (".debug_info", ".debug_abbrev", ".debug_str")}
    return data, where


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, tuple[int, int]]]:
    return seed(tmp_path_factory.mktemp("fuzz"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from([".debug_info", ".debug_info", ".debug_abbrev", ".debug_str"]),
       edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=6))
def test_mutated_dwarf(seeded: tuple[bytes, dict[str, tuple[int, int]]], section: str,
                       edits: list[tuple[float, int]]) -> None:
    data, where = seeded
    start, size = where[section]
    buf = bytearray(data)
    for pos, value in edits:
        buf[start + int(pos * size)] = value
    try:
        out = btf_from_dwarf(bytes(buf))
    except DWARFError:
        return
    spec = btf.from_bytes(out)
    for tid in spec.ids():
        spec.type(tid)


def test_truncated(seeded: tuple[bytes, dict[str, tuple[int, int]]]) -> None:
    data, where = seeded
    start, size = where[".debug_info"]
    for cut in (start + 3, start + size // 2, start + size - 1):
        buf = bytearray(data)
        buf[cut:start + size] = bytes(start + size - cut)  # zeroed tail
        try:
            btf_from_dwarf(bytes(buf))
        except DWARFError:
            pass


def test_sibling_loop(tmp_path: Path) -> None:
    """A DW_AT_sibling pointing back at its own DIE: an error, not an endless walk."""
    from elftools.elf.elffile import ELFFile

    out = tmp_path / "lib.o"
    subprocess.run(["gcc", "-g", "-O0", "-c", "-o", str(out), str(SRC / "lib.c")], check=True)
    data = bytearray(out.read_bytes())
    with out.open("rb") as f:
        elf = ELFFile(f)
        start = elf.get_section_by_name(".debug_info")["sh_offset"]
        cu = next(elf.get_dwarf_info().iter_CUs())
        die = next(d for d in cu.iter_DIEs() if "DW_AT_sibling" in d.attributes)
        attr = die.attributes["DW_AT_sibling"]
        assert attr.form == "DW_FORM_ref4"
        data[start + attr.offset:start + attr.offset + 4] = \
            (die.offset - cu.cu_offset).to_bytes(4, "little")
    with pytest.raises(DWARFError, match=r"<bytes>: DIE .* loop back .*DW_AT_sibling"):
        btf_from_dwarf(bytes(data))
