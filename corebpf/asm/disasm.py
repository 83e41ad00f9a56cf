"""Disassembly in the kernel's own syntax (kernel/bpf/disasm.c, ``print_bpf_insn``).

Lines read as the verifier log and ``bpftool prog dump xlated`` print them —
``3: (79) r1 = *(u64 *)(r6 +8)`` — so that corebpf's output can be diffed against the
kernel's. Encodings the kernel would reject print its fallbacks (``BUG_ld_..``, ``(null)``
where its string tables have holes) rather than raising: disassembly never fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .helpers import FUNC_MAX_ID, HELPER_NAMES
from .instruction import Instruction
from .opcodes import (
    ADDR_PERCPU,
    ADDR_SPACE_CAST,
    LD_IMM64,
    NOSPEC,
    AluOp,
    AtomicOp,
    Class,
    CondPseudoJmp,
    Endian,
    JmpOp,
    Mode,
    PseudoCall,
    Size,
    Source,
)

#: Name of a call's target, as the kernel's ``cb_call``: for bpf-to-bpf calls the text that
#: follows ``call pc`` (bpftool returns ``+5#name``); None keeps the default.
CallNamer = Callable[[Instruction], str | None]
#: Text of ld_imm64's constant, as the kernel's ``cb_imm`` (bpftool: ``map[id:3]``).
ImmFormatter = Callable[[Instruction], str | None]
#: A note for the instruction at a slot, appended as ``  ; note``.
Annotator = Callable[[int], str | None]

_NULL = "(null)"  # what printk prints for the holes in disasm.c's string tables

_ALU: dict[int, str] = {
    AluOp.ADD: "+=", AluOp.SUB: "-=", AluOp.MUL: "*=", AluOp.DIV: "/=", AluOp.OR: "|=",
    AluOp.AND: "&=", AluOp.LSH: "<<=", AluOp.RSH: ">>=", AluOp.NEG: "neg", AluOp.MOD: "%=",
    AluOp.XOR: "^=", AluOp.MOV: "=", AluOp.ARSH: "s>>=", AluOp.END: "endian",
}
_ALU_SIGNED: dict[int, str] = {AluOp.DIV: "s/=", AluOp.MOD: "s%="}
_MOVSX: dict[int, str] = {8: "(s8)", 16: "(s16)", 32: "(s32)"}
_ATOMIC_ALU: dict[int, str] = {AluOp.ADD: "add", AluOp.AND: "and", AluOp.OR: "or", AluOp.XOR: "xor"}
_LDST: dict[int, str] = {Size.W: "u32", Size.H: "u16", Size.B: "u8", Size.DW: "u64"}
_LDSX: dict[int, str] = {Size.W: "s32", Size.H: "s16", Size.B: "s8"}
_JMP: dict[int, str] = {
    JmpOp.JA: "jmp", JmpOp.JEQ: "==", JmpOp.JGT: ">", JmpOp.JLT: "<", JmpOp.JGE: ">=",
    JmpOp.JLE: "<=", JmpOp.JSET: "&", JmpOp.JNE: "!=", JmpOp.JSGT: "s>", JmpOp.JSLT: "s<",
    JmpOp.JSGE: "s>=", JmpOp.JSLE: "s<=", JmpOp.CALL: "call", JmpOp.EXIT: "exit",
}
_PLAIN_ATOMIC = frozenset((AtomicOp.ADD, AtomicOp.AND, AtomicOp.OR, AtomicOp.XOR))
_FETCH_ATOMIC = frozenset((AtomicOp.FETCH_ADD, AtomicOp.FETCH_AND, AtomicOp.FETCH_OR,
                           AtomicOp.FETCH_XOR))
_MOV_X64 = Class.ALU64 | AluOp.MOV | Source.X


def format_instruction(insn: Instruction, *, call_name: CallNamer | None = None,
                       imm: ImmFormatter | None = None) -> str:
    """The kernel's text for one instruction, without the ``N: (code)`` prefix."""
    code = insn.opcode
    c = code & 0x07
    dst, src, off = insn.dst, insn.src, insn.off
    if c == Class.ALU or c == Class.ALU64:
        return _alu(insn, c == Class.ALU64)
    if c == Class.STX:
        return _stx(insn)
    size = code & 0x18
    if c == Class.ST:
        if code & 0xE0 == Mode.MEM:
            return f"*({_LDST[size]} *)(r{dst} {off:+d}) = {insn.imm}"
        if code & 0xE0 == NOSPEC:
            return "nospec"
        return f"BUG_st_{code:02x}"
    if c == Class.LDX:
        mode = code & 0xE0
        if mode == Mode.MEM:
            return f"r{dst} = *({_LDST[size]} *)(r{src} {off:+d})"
        if mode == Mode.MEMSX:
            return f"r{dst} = *({_LDSX.get(size, _NULL)} *)(r{src} {off:+d})"
        return f"BUG_ldx_{code:02x}"
    if c == Class.LD:
        mode = code & 0xE0
        if mode == Mode.ABS:
            return f"r0 = *({_LDST[size]} *)skb[{insn.imm}]"
        if mode == Mode.IND:
            return f"r0 = *({_LDST[size]} *)skb[r{src} + {insn.imm}]"
        if mode == Mode.IMM and size == Size.DW:
            text = imm(insn) if imm is not None else None
            return f"r{dst} = {text if text is not None else f'{insn.imm & ((1 << 64) - 1):#x}'}"
        return f"BUG_ld_{code:02x}"
    return _jmp(insn, c == Class.JMP32, call_name)


def _alu(insn: Instruction, wide: bool) -> str:
    code, dst, src, off = insn.opcode, insn.dst, insn.src, insn.off
    op = code & 0xF0
    r = "r" if wide else "w"
    if op == AluOp.END:
        if wide:
            return f"r{dst} = bswap{insn.imm} r{dst}"
        return f"r{dst} = {'be' if code & 0x08 == Endian.TO_BE else 'le'}{insn.imm} r{dst}"
    if op == AluOp.NEG:
        return f"{r}{dst} = -{r}{dst}"
    if code == _MOV_X64 and off == ADDR_SPACE_CAST:
        u = insn.imm & 0xFFFF_FFFF
        return f"r{dst} = addr_space_cast(r{src}, {u >> 16}, {u & 0xFFFF})"
    if code == _MOV_X64 and off == ADDR_PERCPU:
        return f"r{dst} = &(void __percpu *)(r{src})"
    name = _ALU_SIGNED[op] if off == 1 and op in _ALU_SIGNED else _ALU.get(op, _NULL)
    if code & Source.X:
        sx = _MOVSX[off] if op == AluOp.MOV and off in _MOVSX else ""
        return f"{r}{dst} {name} {sx}{r}{src}"
    return f"{r}{dst} {name} {insn.imm}"


def _stx(insn: Instruction) -> str:
    code, dst, src, off, imm = insn.opcode, insn.dst, insn.src, insn.off, insn.imm
    mode = code & 0xE0
    size = _LDST[code & 0x18]
    if mode == Mode.MEM:
        return f"*({size} *)(r{dst} {off:+d}) = r{src}"
    if mode != Mode.ATOMIC:
        return f"BUG_{code:02x}"
    bits = "64" if code & 0x18 == Size.DW else ""
    if imm in _PLAIN_ATOMIC:
        return f"lock *({size} *)(r{dst} {off:+d}) {_ALU[imm & 0xF0]} r{src}"
    if imm in _FETCH_ATOMIC:
        return (f"r{src} = atomic{bits}_fetch_{_ATOMIC_ALU[imm & 0xF0]}"
                f"(({size} *)(r{dst} {off:+d}), r{src})")
    if imm == AtomicOp.CMPXCHG:
        return f"r0 = atomic{bits}_cmpxchg(({size} *)(r{dst} {off:+d}), r0, r{src})"
    if imm == AtomicOp.XCHG:
        return f"r{src} = atomic{bits}_xchg(({size} *)(r{dst} {off:+d}), r{src})"
    if imm == AtomicOp.LOAD_ACQ:
        return f"r{dst} = load_acquire(({size} *)(r{src} {off:+d}))"
    if imm == AtomicOp.STORE_REL:
        return f"store_release(({size} *)(r{dst} {off:+d}), r{src})"
    return f"BUG_{code:02x}"


def _jmp(insn: Instruction, narrow: bool, call_name: CallNamer | None) -> str:
    code, dst, src, off, imm = insn.opcode, insn.dst, insn.src, insn.off, insn.imm
    op = code & 0xF0
    if op == JmpOp.CALL:
        name = None
        if src == 0 and 0 <= imm < FUNC_MAX_ID:
            name = "bpf_" + HELPER_NAMES[imm]
        elif call_name is not None:
            name = call_name(insn)
        if src == PseudoCall.CALL:
            return f"call pc{name if name is not None else f'{imm:+d}'}"
        if name is None:
            name = "kernel-function" if src == PseudoCall.KFUNC_CALL else "unknown"
        return f"call {name}#{imm}"
    if code == Class.JMP | JmpOp.JA:
        return f"goto pc{off:+d}"
    if code == Class.JMP | JmpOp.JA | Source.X:
        return f"gotox r{dst}"
    if code == Class.JMP | JmpOp.JCOND and src == CondPseudoJmp.MAY_GOTO:
        return f"may_goto pc{off:+d}"
    if code == Class.JMP32 | JmpOp.JA:
        return f"gotol pc{imm:+d}"
    if code == Class.JMP | JmpOp.EXIT:
        return "exit"
    r = "w" if narrow else "r"
    if code & Source.X:
        return f"if {r}{dst} {_JMP.get(op, _NULL)} {r}{src} goto pc{off:+d}"
    return f"if {r}{dst} {_JMP.get(op, _NULL)} {imm & 0xFFFF_FFFF:#x} goto pc{off:+d}"


def disassemble(insns: Iterable[Instruction], *, annotate: Annotator | None = None,
                call_name: CallNamer | None = None, imm: ImmFormatter | None = None,
                first_slot: int = 0, opcodes: bool = True) -> list[str]:
    """One line per instruction: ``slot: (code) text``, as the verifier log prints them.

    ``annotate(slot)`` may add a note (the object dumper marks CO-RE relocations);
    ``call_name``/``imm`` play the kernel's ``cb_call``/``cb_imm`` callbacks; ``first_slot``
    numbers a program that starts inside a section; ``opcodes=False`` drops ``(code)``.
    """
    out: list[str] = []
    slot = first_slot
    for insn in insns:
        text = format_instruction(insn, call_name=call_name, imm=imm)
        line = f"{slot}: ({insn.opcode:02x}) {text}" if opcodes else f"{slot}: {text}"
        if annotate is not None:
            note = annotate(slot)
            if note:
                line = f"{line}  ; {note}"
        out.append(line)
        slot += 2 if insn.opcode == LD_IMM64 else 1
    return out


__all__ = ["Annotator", "CallNamer", "ImmFormatter", "disassemble", "format_instruction"]
