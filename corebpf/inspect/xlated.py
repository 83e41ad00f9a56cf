"""A loaded program's instructions as the kernel holds them after verification
(``bpftool prog dump xlated``), disassembled in the kernel's syntax as ``corebpf obj
dump`` prints them, with the program's functions and source lines where its BTF and
line info give them.

The kernel hands the instructions back with map references as map ids (``map[id:5]``,
``map[id:5][0]+12`` for a global's address), helper calls as offsets from
``__bpf_call_base`` and bpf-to-bpf calls as function indexes: calls are named from
/proc/kallsyms (``call bpf_get_current_pid_tgid#278656``,
``call pc+42#bpf_prog_317c93b20fbfa630_count_event``), as bpftool names them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .. import sys as ksys
from .._record import record
from ..asm import LD_IMM64, Instruction, PseudoCall, decode, format_instruction
from ..asm.opcodes import CALL, Pseudo
from ..btf import Spec
from ..errors import BTFError
from .common import BTFCache, InspectError, Selector, hex_text, reason
from .programs import Program, _read, header_json, header_text, open_programs
from .values import Obj, func_signature

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "LineInfo",
    "XlatedInsn",
    "XlatedProgram",
    "dump_xlated",
    "print_imm",
    "xlated_json",
    "xlated_text",
]

_M64 = (1 << 64) - 1


@record(frozen=True)
class LineInfo:
    """A source line the program's line info points at (line_col split as the kernel
    packs it: line number in the top 22 bits, column in the low 10)."""

    src: str | None
    file: str | None
    line_num: int
    line_col: int


@record(frozen=True)
class XlatedInsn:
    """One instruction (ld_imm64 is one, two slots wide) at slot ``index``: ``text`` is
    the kernel's disassembly without the ``(code)`` prefix; ``proto`` starts a function,
    ``line`` a source line."""

    index: int
    code: int
    text: str
    raw: bytes
    proto: str | None = None
    line: LineInfo | None = None


@record
class XlatedProgram:
    program: Program
    insns: list[XlatedInsn]


def _line(spec: Spec | None, rec: tuple[int, int, int, int]) -> LineInfo:
    _off, file_off, line_off, line_col = rec

    def s(off: int) -> str | None:
        if spec is None:
            return None
        try:
            return spec.string(off)
        except (BTFError, IndexError, ValueError):
            return None

    src = s(line_off)
    return LineInfo(src.lstrip() if src is not None else None, s(file_off), line_col >> 10,
                    line_col & 0x3FF)


def _call_namer(insns: list[Instruction], ksyms: list[int]) -> Callable[[Instruction], str]:
    """bpftool's print_call: helpers by the kernel symbol at __bpf_call_base + imm,
    bpf-to-bpf calls by their function's jited symbol."""
    wanted: set[int] = set()
    calls = [i for i in insns if i.opcode == CALL]
    for insn in calls:
        if insn.src == PseudoCall.CALL and 0 <= insn.imm < len(ksyms):
            wanted.add(ksyms[insn.imm])
    by_addr, by_name = ksys.kallsyms_lookup(wanted, ["__bpf_call_base"])
    base = by_name.get("__bpf_call_base", 0)
    if base:
        by_addr.update(ksys.kallsyms_lookup([(base + i.imm) & _M64 for i in calls])[0])

    def name(insn: Instruction) -> str:
        addr = (base + insn.imm) & _M64
        if insn.src == PseudoCall.CALL:
            if 0 <= insn.imm < len(ksyms):
                addr = ksyms[insn.imm]
            if not ksyms:  # interpreted: no address to show
                return f"{insn.off:+d}"
            sym = by_addr.get(addr) if by_name else None
            return f"{insn.off:+d}#{sym}" if sym is not None else f"{insn.off:+d}#{addr:#x}"
        sym = by_addr.get(addr) if by_name else None
        return sym if sym is not None else f"{addr:#x}"

    return name


def print_imm(insn: Instruction) -> str | None:
    """bpftool's print_imm (xlated_dumper.c): map references by map id, subprogram
    offsets; None leaves other immediates to the disassembler (unsigned hex, as bpftool)."""
    lo, hi = insn.imm & 0xFFFF_FFFF, insn.imm >> 32
    if insn.src == Pseudo.MAP_FD:
        return f"map[id:{lo}]"
    if insn.src == Pseudo.MAP_VALUE:
        return f"map[id:{lo}][0]+{hi}"
    if insn.src == Pseudo.MAP_IDX_VALUE:
        return f"map[idx:{lo}]+{hi}"
    if insn.src == Pseudo.FUNC:
        return f"subprog[{lo - (1 << 32) if lo >> 31 else lo:+d}]"
    return None


def _disassemble(info: ksys.ProgInfo, spec: Spec | None) -> list[XlatedInsn]:
    raw = info.xlated_insns or b""
    endian = "<" if sys.byteorder == "little" else ">"
    insns = decode(raw[:len(raw) // 8 * 8], endian)
    namer = _call_namer(insns, info.jited_ksyms)
    funcs = {off: tid for off, tid in info.func_info} if spec is not None else {}
    lines = info.line_info
    nr_skip = 0
    out: list[XlatedInsn] = []
    slot = 0
    for insn in insns:
        width = 2 if insn.opcode == LD_IMM64 else 1
        proto = None
        if slot in funcs and spec is not None:
            proto = func_signature(spec, funcs[slot]) or None
        line = None
        # libbpf's bpf_prog_linfo__lfind, as bpftool calls it: the last record at or
        # before this slot, searched from the one after the last shown
        if nr_skip < len(lines) and lines[nr_skip][0] <= slot:
            j = nr_skip
            while j + 1 < len(lines) and lines[j + 1][0] <= slot:
                j += 1
            line = _line(spec, lines[j])
            nr_skip += 1
        text = format_instruction(insn, call_name=namer, imm=print_imm)
        out.append(XlatedInsn(slot, insn.opcode, text, raw[slot * 8:(slot + width) * 8],
                              proto, line))
        slot += width
    return out


def dump_xlated(sel: Selector) -> list[XlatedProgram]:
    """The translated instructions of each program ``sel`` names."""
    fds = open_programs(sel)
    btfs = BTFCache()
    out = []
    try:
        for fd in fds:
            prog = _read(fd.fd, btfs, None)
            try:
                info = ksys.prog_info(fd.fd, map_ids=False, xlated=True, func_info=True,
                                      line_info=True, jited_ksyms=True)
            except OSError as e:
                raise InspectError(f"program {prog.id}: can't get program info: "
                                   f"{reason(e)}") from None
            if not info.xlated_insns:
                raise InspectError(f"program {prog.id}: the kernel returned no instructions "
                                   "(kernel.kptr_restrict set, or not root?)")
            spec = None
            if info.btf_id:
                try:
                    spec = btfs.get(info.btf_id)
                except (InspectError, BTFError) as e:
                    raise InspectError(f"program {prog.id}: failed to get its BTF: {e}") \
                        from None
            out.append(XlatedProgram(prog, _disassemble(info, spec)))
    finally:
        for fd in fds:
            fd.close()
    return out


def xlated_text(progs: list[XlatedProgram], *, opcodes: bool = False,
                linum: bool = False) -> str:
    """``bpftool prog dump xlated``'s text (``opcodes``: each instruction's bytes;
    ``linum``: each source line's file, line and column); programs after the first
    are separated as bpftool separates them, each under its ``prog show`` line when there
    are several."""
    out: list[str] = []
    for n, xp in enumerate(progs):
        if len(progs) > 1:
            out.append(header_text(xp.program))
        for insn in xp.insns:
            if insn.proto:
                out.append(f"{insn.proto}:\n")
            if insn.line is not None and insn.line.src is not None:
                ln = insn.line
                extra = (f" [file:{ln.file or ''} line_num:{ln.line_num} "
                         f"line_col:{ln.line_col}]") if linum else ""
                out.append(f"; {ln.src}{extra}\n")
            out.append(f"{insn.index:4d}: ({insn.code:02x}) {insn.text}\n")
            if opcodes:
                first, second = insn.raw[:8], insn.raw[8:]
                tail = " " + hex_text(second) if second else ""
                out.append(f"       {hex_text(first)}{tail}\n")
        if len(progs) > 1 and n != len(progs) - 1:
            out.append("\n")
    return "".join(out)


def _insns_json(xp: XlatedProgram, opcodes: bool, linum: bool) -> list[Obj]:
    items = []
    for insn in xp.insns:
        o = Obj()
        if insn.proto:
            o.append(("proto", insn.proto))
        ln = insn.line
        if ln is not None:
            if ln.src is not None:
                o.append(("src", ln.src))
            if linum:
                if ln.file is not None:
                    o.append(("file", ln.file))
                if ln.line_num:
                    o.append(("line_num", ln.line_num))
                if ln.line_col:
                    o.append(("line_col", ln.line_col))
        o.append(("disasm", f"({insn.code:02x}) {insn.text}"))
        if opcodes:
            b = insn.raw
            o.append(("opcodes", Obj([
                ("code", f"0x{b[0]:02x}"),
                ("src_reg", f"{b[1] >> 4 if sys.byteorder == 'little' else b[1] & 0xF:#x}"),
                ("dst_reg", f"{b[1] & 0xF if sys.byteorder == 'little' else b[1] >> 4:#x}"),
                ("off", [f"0x{c:02x}" for c in b[2:4]]),
                ("imm", [f"0x{c:02x}" for c in (b[4:16] if len(b) == 16 else b[4:8])]),
            ])))
        items.append(o)
    return items


def xlated_json(progs: list[XlatedProgram], *, opcodes: bool = False,
                linum: bool = False) -> Any:
    """``bpftool -j prog dump xlated``: the instruction list of one program, or for
    several an array of their ``prog show`` headers with ``insns``."""
    if len(progs) == 1:
        return _insns_json(progs[0], opcodes, linum)
    out = []
    for xp in progs:
        o = header_json(xp.program)
        o.append(("insns", _insns_json(xp, opcodes, linum)))
        out.append(o)
    return out
