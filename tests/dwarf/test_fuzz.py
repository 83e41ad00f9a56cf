"""Damaged DWARF: mutated .debug_info/.debug_abbrev end in DWARFError or BTF, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
from corebpf.dwarf import DWARFError, btf_from_dwarf

from .conftest import SRC

pytest.importorskip("elftools")


Seed = tuple[bytes, dict[str, tuple[int, int]]]
SECTIONS = (".debug_info", ".debug_abbrev", ".debug_str", ".debug_addr", ".debug_str_offsets")


def seed(tmp: Path, cmd: list[str], name: str) -> Seed:
    """A small -g binary and where its DWARF sections are."""
    from elftools.elf.elffile import ELFFile

    out = tmp / name
    subprocess.run([*cmd, "-o", str(out), str(SRC / "lib.c")], check=True)
    data = out.read_bytes()
    with out.open("rb") as f:
        where = {s.name: (s["sh_offset"], s["sh_size"]) for s in ELFFile(f).iter_sections()
                 if s.name in SECTIONS and s["sh_size"]}
    return data, where


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[Seed]:
    """gcc's object file (relocated DWARF), clang's DWARF 5 library (.debug_addr, string
    offsets)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    out = [seed(tmp, ["gcc", "-g", "-O0", "-c"], "lib.o")]
    if shutil.which("clang-19"):
        out.append(seed(tmp, ["clang-19", "-gdwarf-5", "-O2", "-shared", "-fPIC"], "lib.so"))
    return out


@pytest.fixture(scope="module")
def seeded(seeds: list[Seed]) -> Seed:
    return seeds[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, 1), section=st.sampled_from(SECTIONS),
       edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=6))
def test_mutated_dwarf(seeds: list[Seed], which: int, section: str,
                       edits: list[tuple[float, int]]) -> None:
    data, where = seeds[which % len(seeds)]
    if section not in where:
        section = ".debug_info"
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


def test_truncated(seeded: Seed) -> None:
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
