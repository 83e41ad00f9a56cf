"""Differential test against the running kernel's own disassembler.

Each socket-filter object under tests/asm/progs is loaded with ``bpftool -d prog loadall``,
which makes libbpf ask for a level-2 verifier log. That log prints instructions with the
kernel's kernel/bpf/disasm.c (every instruction in its "Live regs" table, then those it
walks). The program the kernel saw is rebuilt from the object: the main function, then the
subprograms in the order the log's ``func#N @slot`` lines give, with libbpf's relocations
applied (bpf-to-bpf calls and callbacks resolved, kfuncs to vmlinux BTF ids); only the map
and global-data pointers the kernel substituted into ld_imm64 are masked.

Then the program is read back with ``bpftool prog dump xlated``: its raw bytes (``file``) are
decoded and disassembled with bpftool's own ``print_imm`` rules and compared with bpftool's
text, for every instruction bpftool's (older) disassembler knows.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from corebpf.asm import (
    AluOp,
    Class,
    Instruction,
    JmpOp,
    Mode,
    Pseudo,
    PseudoCall,
    decode,
    disassemble,
    slot_offsets,
)
from corebpf.elf import ElfFile
from corebpf.errors import NotFoundError
from corebpf.inspect.xlated import print_imm
from tests.asm.objs import ASM_PROGS, SHF_EXECINSTR, SHT_REL, STT_FUNC, tool

LOADED = ["every", "alu", "calls"]  # socket filters the verifier accepts
BPFFS = "/sys/fs/bpf"
SHN_UNDEF = 0


def _bpftool() -> str:
    exe = tool("bpftool")
    if exe is None:
        pytest.skip("bpftool is not installed (apt-get install bpftool)")
    if os.geteuid() != 0:
        pytest.skip("loading BPF programs needs root")
    if not os.path.ismount(BPFFS):
        r = subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS], capture_output=True, text=True)
        if r.returncode:
            pytest.skip(f"no bpffs at {BPFFS} and mounting one failed: {r.stderr.strip()}")
    return exe


def _kernel_release() -> tuple[int, int]:
    m = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)


class Loaded(NamedTuple):
    log: str  # the verifier log of the object's one program
    pin: Path  # where bpftool pinned it


@pytest.fixture(scope="module")
def loaded() -> Iterator[dict[str, Loaded]]:
    exe = _bpftool()
    root = Path(BPFFS) / f"corebpf_asm_test_{os.getpid()}"
    out: dict[str, Loaded] = {}
    try:
        root.mkdir()
        for name in LOADED:
            pin = root / name
            r = subprocess.run([exe, "-d", "prog", "loadall", str(ASM_PROGS / f"{name}.bpf.o"),
                                str(pin)], capture_output=True, text=True)
            if r.returncode:
                if "Operation not permitted" in r.stderr or "EPERM" in r.stderr:
                    pytest.skip(f"the kernel refuses BPF programs here: {r.stderr[-300:]}")
                if _kernel_release() < (6, 15):
                    pytest.skip(f"{name}.bpf.o needs Linux 6.15+ (load-acquire, may_goto, "
                                f"cpu v4), this is {os.uname().release}")
                pytest.fail(f"bpftool prog loadall {name}.bpf.o failed:\n{r.stderr[-3000:]}")
            m = re.search(r"-- BEGIN PROG LOAD LOG --\n(.*?)-- END PROG LOAD LOG --", r.stderr,
                          re.S)
            if m is None:
                pytest.skip("libbpf printed no verifier log (bpftool -d needs libbpf >= 0.8)")
            out[name] = Loaded(m.group(1), pin / name)
        yield out
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the verifier log ----------------------------------------------------------------------

_TABLE = re.compile(r"^\s*(\d+): [0-9.]{10} \(([0-9a-f]{2})\) (.*)$")
_WALK = re.compile(r"^(\d+): \(([0-9a-f]{2})\) (.*?)(?:\s+; .*)?$")
_FUNC = re.compile(r"^func#(\d+) @(\d+)$")


def kernel_lines(log: str) -> dict[int, str]:
    """slot -> ``(code) text`` from the log, checking that the table and the walk agree."""
    lines: dict[int, str] = {}
    for line in log.splitlines():
        m = _TABLE.match(line) or _WALK.match(line)
        if m is None:
            continue
        slot, text = int(m.group(1)), f"({m.group(2)}) {m.group(3).rstrip()}"
        assert lines.setdefault(slot, text) == text, f"log disagrees with itself at {slot}"
    return lines


class Func(NamedTuple):
    name: str
    section: int  # ELF section index
    start: int  # slot within the section
    insns: list[Instruction]


def object_functions(elf: ElfFile) -> dict[tuple[int, int], Func]:
    """(section index, start slot) -> function, for every function symbol in code sections."""
    out = {}
    code = {s.index: s for s in elf.sections if s.flags & SHF_EXECINSTR and s.size}
    decoded = {i: decode(elf.section_data(s), elf.endian) for i, s in code.items()}
    for sym in elf.symbols:
        if sym.type == STT_FUNC and sym.shndx in code:
            insns, slots = decoded[sym.shndx], slot_offsets(decoded[sym.shndx])
            first, last = sym.value // 8, (sym.value + sym.size) // 8
            body = [i for i, s in zip(insns, slots, strict=True) if first <= s < last]
            out[(sym.shndx, first)] = Func(sym.name, sym.shndx, first, body)
    return out


def rebuild(name: str, log: str, kfunc_id: Callable[[str], int]) -> tuple[
        list[Instruction], set[int], dict[int, str]]:
    """The program as libbpf handed it to the kernel: (instructions, slots holding a map or
    data pointer, kfunc names by BTF id)."""
    elf = ElfFile((ASM_PROGS / f"{name}.bpf.o").read_bytes())
    funcs = object_functions(elf)
    main = next(f for f in funcs.values() if f.name == name)
    starts = [int(m.group(2)) for m in map(_FUNC.match, log.splitlines()) if m]
    assert starts[0] == 0
    codes = kernel_lines(log)
    layout: list[tuple[int, Func]] = [(0, main)]
    last = max(codes)
    ends = [*starts[1:], last + (2 if codes[last].startswith("(18)") else 1)]
    for start, end in zip(starts[1:], ends[1:], strict=True):
        # which subprogram did libbpf append there? the one whose opcodes are listed there
        def fits(f: Func, start: int = start, end: int = end) -> bool:
            slots = slot_offsets(f.insns)
            return f is not main and start + sum(i.size for i in f.insns) == end and all(
                codes[start + s][1:3] == f"{i.opcode:02x}"
                for i, s in zip(f.insns, slots, strict=True) if start + s in codes)
        (func,) = [f for f in funcs.values() if fits(f)]
        layout.append((start, func))
    final_start = {(f.section, f.start): s for s, f in layout}

    relocs: dict[tuple[int, int], tuple[str, int, int]] = {}  # (sec, slot) -> sym name/sec/value
    symbols = elf.symbols
    for sec in elf.sections:
        if sec.type == SHT_REL:
            for r in elf.relocations(sec):
                sym = symbols[r.symbol]
                relocs[(sec.info, r.offset // 8)] = (sym.name, sym.shndx, sym.value)

    program: list[Instruction] = []
    pointers: set[int] = set()
    kfuncs: dict[int, str] = {}
    for start, func in layout:
        assert sum(i.size for i in program) == start
        for insn, local in zip(func.insns, slot_offsets(func.insns), strict=True):
            insn = Instruction(insn.opcode, insn.dst, insn.src, insn.off, insn.imm, insn.ext)
            slot = start + local
            rel = relocs.get((func.section, func.start + local))
            if rel is not None:
                sym_name, shndx, value = rel
                if insn.is_call and shndx == SHN_UNDEF:  # kfunc
                    insn.src, insn.imm = PseudoCall.KFUNC_CALL, kfunc_id(sym_name)
                    kfuncs[insn.imm] = sym_name
                elif insn.is_call:  # bpf-to-bpf call: libbpf's sym_off / 8 + imm + 1
                    target = final_start[(shndx, value // 8 + insn.imm + 1)]
                    insn.src, insn.imm = PseudoCall.CALL, target - slot - 1
                elif shndx in {f.section for f in funcs.values()}:  # callback address
                    target = final_start[(shndx, (value + insn.imm) // 8)]
                    insn.src, insn.imm = Pseudo.FUNC, (target - slot - 1) & 0xFFFFFFFF
                else:  # map or global data: the kernel prints its own pointer
                    pointers.add(slot)
            program.append(insn)
    return program, pointers, kfuncs


def _kfunc_id(kernel_spec):  # type: ignore[no-untyped-def]
    """libbpf's kfunc resolution: the FUNC's id in vmlinux BTF."""
    import corebpf.btf as btf

    def find(name: str) -> int:
        try:
            return int(kernel_spec.find(name, btf.Kind.FUNC))
        except NotFoundError:  # libbpf would have failed the load
            return -1

    return find


@pytest.mark.parametrize("name", LOADED)
def test_disassembly_matches_the_verifier_log(name: str, loaded: dict[str, Loaded],
                                              kernel_spec) -> None:  # type: ignore[no-untyped-def]
    log = loaded[name].log
    program, pointers, kfuncs = rebuild(name, log, _kfunc_id(kernel_spec))
    kernel = kernel_lines(log)
    lines = disassemble(program, call_name=lambda i: kfuncs.get(i.imm) if i.is_kfunc_call else None)
    compared = 0
    for line in lines:
        slot, text = int(line.split(": ", 1)[0]), line.split(": ", 1)[1]
        if slot not in kernel:
            continue  # neither listed nor walked (only with an older kernel's log)
        want = kernel[slot]
        if slot in pointers:
            want = re.sub(r"= 0x[0-9a-f]+$", "= <ptr>", want)
            text = re.sub(r"= 0x[0-9a-f]+$", "= <ptr>", text)
        assert text == want, f"{name} slot {slot}"
        compared += 1
    if "Live regs before insn" in log:  # 6.15+: the log lists every instruction
        assert compared == len(program), f"the log showed {compared} of {len(program)}"
    assert compared


# --- bpftool prog dump xlated ---------------------------------------------------------------

def newer_than_bpftool(insn: Instruction) -> bool:
    """Encodings an older bpftool's copy of disasm.c prints wrongly (kernel 6.6+/6.8+/6.15+)."""
    c = insn.opcode & 0x07
    if c in (Class.ALU, Class.ALU64):
        # movsx, sdiv/smod, addr_space_cast (off != 0); bswap
        return insn.off != 0 or insn.opcode & 0xF7 == Class.ALU64 | AluOp.END
    if c == Class.LDX:
        return insn.opcode & 0xE0 == Mode.MEMSX
    if insn.is_atomic:
        return insn.imm >= 0x100  # load-acquire, store-release
    return insn.opcode in (Class.JMP32 | JmpOp.JA, Class.JMP | JmpOp.JCOND,
                           Class.JMP | JmpOp.JA | 0x08)


_XLATED = re.compile(r"^\s*(\d+): (.*)$")  # "(code) text", or "BUG_.." for what it cannot read


def _calls_masked(line: str) -> str:
    """bpftool names calls from kallsyms (``call bpf_ktime_get_ns#269488``, the imm rewritten
    to an address offset) and prints a JITed bpf-to-bpf call's ``off`` (``call pc+47#bpf_prog_
    .._mix``, the imm rewritten too): keep what depends on neither."""
    line = re.sub(r"^(\(85\) call pc)[+-]\d+.*$", r"\1", line)
    return re.sub(r"^\(85\) call (?!pc)\S+#(-?\d+)$", r"(85) call ?#\1", line)


@pytest.mark.parametrize("name", LOADED)
def test_disassembly_matches_bpftool_xlated(name: str, loaded: dict[str, Loaded],
                                            tmp_path: Path) -> None:
    exe = _bpftool()
    pin = str(loaded[name].pin)
    raw = tmp_path / "xlated.bin"
    subprocess.run([exe, "prog", "dump", "xlated", "pinned", pin, "file", str(raw)], check=True,
                   capture_output=True)
    text = subprocess.run([exe, "prog", "dump", "xlated", "pinned", pin], check=True,
                          capture_output=True, text=True).stdout
    theirs = {int(m.group(1)): m.group(2) for m in map(_XLATED.match, text.splitlines()) if m}
    insns = decode(raw.read_bytes())
    assert sorted(theirs) == slot_offsets(insns)
    compared = 0
    for insn, line in zip(insns, disassemble(insns, imm=print_imm), strict=True):
        slot, ours = line.split(": ", 1)
        if newer_than_bpftool(insn):
            continue
        assert _calls_masked(ours) == _calls_masked(theirs[int(slot)]), f"{name} slot {slot}"
        compared += 1
    assert compared > len(insns) // 2
