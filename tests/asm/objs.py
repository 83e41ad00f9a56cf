"""The BPF objects the asm tests decode, and their code sections, functions and relocations."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from corebpf.elf import ElfFile
from tests.conftest import PROGS

ASM_PROGS = Path(__file__).resolve().parent / "progs"
SHF_EXECINSTR = 0x4
SHT_REL = 9
STT_FUNC = 2


def objects() -> list[Path]:
    """Every committed BPF object: this package's own and the project's (both byte orders)."""
    return sorted(ASM_PROGS.glob("*.o")) + sorted(PROGS.glob("*.o"))


class Code(NamedTuple):
    name: str
    data: bytes
    endian: str
    index: int


def code_sections(path: Path) -> Iterator[Code]:
    elf = ElfFile(path.read_bytes(), source=str(path))
    for sec in elf.sections:
        if sec.flags & SHF_EXECINSTR and sec.size:
            yield Code(sec.name, bytes(elf.section_data(sec)), elf.endian, sec.index)


def tool(name: str) -> str | None:
    """A peer tool on PATH (or in /usr/sbin, where Debian puts bpftool)."""
    found = shutil.which(name)
    if found is None and os.path.exists(f"/usr/sbin/{name}"):
        found = f"/usr/sbin/{name}"
    return found
