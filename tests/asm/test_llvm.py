"""Differential test against LLVM: llvm-objdump-19's view of every committed object.

For each code section: the same number of instructions at the same slots; per instruction the
opcode, registers, offset and immediate read from objdump's raw-bytes column; relocations that
land where an instruction starts (ld_imm64 for R_BPF_64_64, call for R_BPF_64_32); and the
disassembly text itself, once both syntaxes are brought to a common form.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from typing import NamedTuple

import pytest

from corebpf.asm import (
    Class,
    Instruction,
    Mode,
    decode,
    format_instruction,
    index_by_slot,
    slot_offsets,
)
from tests.asm.objs import code_sections, objects, tool

LLVM_OBJDUMP = "llvm-objdump-19"


class Line(NamedTuple):
    slot: int
    raw: bytes
    text: str


class Dump(NamedTuple):
    lines: list[Line]
    relocs: list[tuple[int, str]]  # (byte offset, type)


_INSN = re.compile(r"^\s*(\d+):\t((?:[0-9a-f]{2} )*[0-9a-f]{2})\t(.*)$")
_RELOC = re.compile(r"^\t\t([0-9a-f]+):\s+(R_BPF_\w+)\s")
_SECTION = re.compile(r"^Disassembly of section (.+):$")


@cache
def objdump(path: Path) -> dict[str, Dump]:
    exe = tool(LLVM_OBJDUMP)
    if exe is None:
        pytest.skip(f"{LLVM_OBJDUMP} is not installed (apt-get install llvm-19)")
    out = subprocess.run([exe, "-d", "-r", str(path)], check=True, capture_output=True,
                         text=True).stdout
    dumps: dict[str, Dump] = {}
    cur: Dump | None = None
    for line in out.splitlines():
        if m := _SECTION.match(line):
            cur = dumps.setdefault(m.group(1), Dump([], []))
        elif cur is not None and (m := _INSN.match(line)):
            cur.lines.append(Line(int(m.group(1)), bytes.fromhex(m.group(2)), m.group(3)))
        elif cur is not None and (m := _RELOC.match(line)):
            cur.relocs.append((int(m.group(1), 16), m.group(2)))
    return dumps


def fields(raw: bytes, endian: str) -> tuple[int, int, int, int, int]:
    """(code, dst, src, off, imm) from objdump's bytes, independently of corebpf's structs."""
    assert len(raw) in (8, 16), raw.hex()
    order = "little" if endian == "<" else "big"
    regs = raw[1]
    dst, src = (regs & 0xF, regs >> 4) if endian == "<" else (regs >> 4, regs & 0xF)
    off = int.from_bytes(raw[2:4], order, signed=True)
    imm = int.from_bytes(raw[4:8], order, signed=True)
    if len(raw) == 16:  # ld_imm64: the constant's high half is the second slot's imm
        imm = (imm & 0xFFFFFFFF) | (int.from_bytes(raw[12:16], order) << 32)
    return raw[0], dst, src, off, imm


@pytest.mark.parametrize("path", objects(), ids=lambda p: p.name)
def test_fields_match_llvm_objdump(path: Path) -> None:
    dumps = objdump(path)
    for code in code_sections(path):
        insns = decode(code.data, code.endian)
        dump = dumps[code.name]
        assert len(dump.lines) == len(insns), code.name
        assert [ln.slot for ln in dump.lines] == slot_offsets(insns)
        for ln, insn in zip(dump.lines, insns, strict=True):
            got = (insn.opcode, insn.dst, insn.src, insn.off, insn.imm)
            assert got == fields(ln.raw, code.endian), f"{code.name} slot {ln.slot}: {ln.text}"
            assert len(ln.raw) == 8 * insn.size
        starts = index_by_slot(insns)
        for offset, rtype in dump.relocs:
            assert offset % 8 == 0 and offset // 8 in starts, (code.name, offset)
            insn = insns[starts[offset // 8]]
            if rtype == "R_BPF_64_64":
                assert insn.is_ldimm64
            elif rtype == "R_BPF_64_32":
                assert insn.is_call


# --- the text, in a common form -------------------------------------------------------------

def _number(m: re.Match[str]) -> str:
    return f"#{int(m.group(0).replace(' ', ''), 0) % (1 << 32)}"


def normalize(text: str) -> str:
    """Both syntaxes to one: decimal numbers modulo 2**32 (LLVM prints -0x3 where the kernel
    prints 0xfffffffd), w registers as r, no labels, no "pc", no "ll", no spaces."""
    text = re.sub(r" <[\w.+-]+>$", "", text).replace(" ll", "")
    text = re.sub(r"\b(goto|gotol|may_goto) pc", r"\1 ", text)
    text = re.sub(r"(?<![\w)])[-+]? ?(0x[0-9a-f]+|\d+)\b", _number, text)
    text = re.sub(r"\bw(\d+)\b", r"r\1", text)
    return text.replace(" ", "")


def comparable(insn: Instruction) -> bool:
    """Forms both disassemblers spell alike (calls, fetch-atomics and packet loads differ)."""
    c = insn.opcode & 0x07
    if insn.is_call or (c == Class.LD and insn.opcode & 0xE0 == Mode.IND):
        return False
    return not (insn.is_atomic and insn.imm not in (0x00, 0x40, 0x50, 0xA0))


@pytest.mark.parametrize("path", [p for p in objects() if p.name.endswith(".bpf.o")],
                         ids=lambda p: p.name)
def test_text_agrees_with_llvm_objdump(path: Path) -> None:
    dumps = objdump(path)
    compared = 0
    for code in code_sections(path):
        insns = decode(code.data, code.endian)
        for ln, insn in zip(dumps[code.name].lines, insns, strict=True):
            if ln.text == "<unknown>" or not comparable(insn):
                continue
            ours = format_instruction(insn)
            assert normalize(ours) == normalize(ln.text), f"slot {ln.slot}: {ours!r} vs {ln.text!r}"
            compared += 1
    assert compared
