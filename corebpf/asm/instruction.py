"""BPF instructions as data: decode bytes into ``Instruction`` records and encode them back.

One record per instruction, not per 8-byte slot: ld_imm64 is a single ``Instruction`` holding
the whole 64-bit constant (``size == 2``). Relocations, .BTF.ext and the verifier count in
slots, so ``slot_offsets``/``index_by_slot`` translate between the two.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from .._record import record
from ..errors import ObjectError
from .opcodes import (
    ADDR_SPACE_CAST,
    CALL,
    EXIT,
    LD_IMM64,
    AluOp,
    Class,
    JmpOp,
    Mode,
    Pseudo,
    PseudoCall,
    Size,
    Source,
)

_M32 = 0xFFFF_FFFF
_M64 = 0xFFFF_FFFF_FFFF_FFFF

# code, regs, off, imm.  Decoding splits the regs byte by table lookup, without branching.
_SLOT = {"<": struct.Struct("<BBhi"), ">": struct.Struct(">BBhi")}
# ld_imm64's two slots with unsigned halves of the constant.
_WIDE = {"<": struct.Struct("<BBhIBBhI"), ">": struct.Struct(">BBhIBBhI")}
# regs byte -> (dst, src): little-endian BPF keeps dst in the low nibble, big-endian in the high.
_SPLIT = {
    "<": tuple((r & 0xF, r >> 4) for r in range(256)),
    ">": tuple((r >> 4, r & 0xF) for r in range(256)),
}

_NO_EXT = (0, 0, 0, 0)
_MAP_PSEUDO = frozenset((Pseudo.MAP_FD, Pseudo.MAP_VALUE, Pseudo.MAP_IDX, Pseudo.MAP_IDX_VALUE))
_JA32 = Class.JMP32 | JmpOp.JA


@record
class Instruction:
    """One BPF instruction: ``imm`` is signed 32-bit, or ld_imm64's unsigned 64-bit constant.

    ``ext`` keeps the (code, dst, src, off) fields of ld_imm64's second slot, zero in any
    program the kernel accepts, so that ``encode(decode(b)) == b`` holds for every input.
    Mutable, so that relocation can patch ``imm``/``off`` in place.
    """

    opcode: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    ext: tuple[int, int, int, int] = _NO_EXT

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def ld_imm64(cls, dst: int, value: int, src: int = 0) -> Instruction:
        """``dst = value ll`` (value signed or unsigned 64-bit, stored unsigned); ``src`` is a
        ``Pseudo`` kind for map/BTF/function references."""
        if not -(1 << 63) <= value <= _M64:
            raise ObjectError(f"ld_imm64 constant {value:#x} does not fit in 64 bits")
        return cls(LD_IMM64, dst, int(src), 0, value & _M64)

    @classmethod
    def mov(cls, dst: int, src: int | None = None, imm: int = 0, *,
            alu64: bool = True) -> Instruction:
        """``dst = src`` (register) or ``dst = imm``; 32-bit ``wN`` with ``alu64=False``."""
        klass = Class.ALU64 if alu64 else Class.ALU
        if src is None:
            return cls(klass | AluOp.MOV | Source.K, dst, 0, 0, imm)
        return cls(klass | AluOp.MOV | Source.X, dst, src, 0, 0)

    @classmethod
    def call(cls, imm: int, kind: PseudoCall = PseudoCall.HELPER) -> Instruction:
        """A helper call (imm = helper id), bpf-to-bpf call (imm = relative slot) or kfunc."""
        return cls(CALL, 0, int(kind), 0, imm)

    @classmethod
    def exit(cls) -> Instruction:
        return cls(EXIT)

    @classmethod
    def ja(cls, off: int) -> Instruction:
        """``goto pc+off``."""
        return cls(Class.JMP | JmpOp.JA, 0, 0, off, 0)

    # --- fields of the opcode -------------------------------------------------------------

    @property
    def size(self) -> int:
        """Slots taken: 2 for ld_imm64, 1 otherwise."""
        return 2 if self.opcode == LD_IMM64 else 1

    @property
    def cls(self) -> Class:
        return Class(self.opcode & 0x07)

    @property
    def op(self) -> int:
        """BPF_OP: an ``AluOp`` or ``JmpOp`` value for ALU/JMP classes."""
        return self.opcode & 0xF0

    @property
    def source(self) -> Source:
        return Source(self.opcode & 0x08)

    @property
    def mode(self) -> int:
        """BPF_MODE: a ``Mode`` value for load/store classes."""
        return self.opcode & 0xE0

    @property
    def mem_size(self) -> Size:
        return Size(self.opcode & 0x18)

    @property
    def mem_bytes(self) -> int:
        """Bytes a load or store accesses."""
        return Size(self.opcode & 0x18).nbytes

    # --- predicates ---------------------------------------------------------------------

    @property
    def is_ldimm64(self) -> bool:
        return self.opcode == LD_IMM64

    @property
    def is_map_load(self) -> bool:
        """ld_imm64 of a map (fd/index) or a pointer into a map's value."""
        return self.opcode == LD_IMM64 and self.src in _MAP_PSEUDO

    @property
    def is_pseudo_func(self) -> bool:
        """ld_imm64 of a subprogram's address (callbacks: bpf_loop, timers, ...)."""
        return self.opcode == LD_IMM64 and self.src == Pseudo.FUNC

    @property
    def is_call(self) -> bool:
        return self.opcode == CALL

    @property
    def is_helper_call(self) -> bool:
        return self.opcode == CALL and self.src == PseudoCall.HELPER

    @property
    def is_pseudo_call(self) -> bool:
        """A bpf-to-bpf call: imm is the callee's slot relative to the next instruction."""
        return self.opcode == CALL and self.src == PseudoCall.CALL

    @property
    def is_kfunc_call(self) -> bool:
        return self.opcode == CALL and self.src == PseudoCall.KFUNC_CALL

    @property
    def is_exit(self) -> bool:
        return self.opcode == EXIT

    @property
    def is_jump(self) -> bool:
        """A branch: goto, gotol, may_goto, gotox (no static target) or a conditional jump;
        not call or exit."""
        c = self.opcode & 0x07
        return (c == Class.JMP or c == Class.JMP32) and self.op not in (JmpOp.CALL, JmpOp.EXIT)

    @property
    def is_conditional_jump(self) -> bool:
        """A branch that may also fall through: ``if ...`` and may_goto."""
        return self.is_jump and self.op != JmpOp.JA

    @property
    def is_ldx(self) -> bool:
        return self.opcode & 0x07 == Class.LDX

    @property
    def is_st(self) -> bool:
        return self.opcode & 0x07 == Class.ST

    @property
    def is_stx(self) -> bool:
        return self.opcode & 0x07 == Class.STX

    @property
    def is_atomic(self) -> bool:
        return self.opcode & 0x07 == Class.STX and self.opcode & 0xE0 == Mode.ATOMIC

    @property
    def is_alu(self) -> bool:
        """ALU or ALU64 (use ``is_alu64`` to tell them apart)."""
        c = self.opcode & 0x07
        return c == Class.ALU or c == Class.ALU64

    @property
    def is_alu64(self) -> bool:
        return self.opcode & 0x07 == Class.ALU64

    @property
    def is_addr_space_cast(self) -> bool:
        return (self.opcode == Class.ALU64 | AluOp.MOV | Source.X
                and self.off == ADDR_SPACE_CAST)

    # --- control flow ---------------------------------------------------------------------

    @property
    def jump_offset(self) -> int | None:
        """Slots from the next instruction to the target, for branches, bpf-to-bpf calls and
        ld_imm64 of a function; None for everything else (helpers, exit, gotox, ...)."""
        code = self.opcode
        if code == LD_IMM64:
            if self.src != Pseudo.FUNC:
                return None
            lo = self.imm & _M32
            return lo - (1 << 32) if lo & 0x8000_0000 else lo
        c = code & 0x07
        if c != Class.JMP and c != Class.JMP32:
            return None
        op = code & 0xF0
        if op == JmpOp.CALL:
            return self.imm if self.src == PseudoCall.CALL else None
        if op == JmpOp.EXIT or (op == JmpOp.JA and code & Source.X):
            return None
        return self.imm if code == _JA32 else self.off

    def jump_target(self, slot: int) -> int | None:
        """The slot this instruction, placed at ``slot``, branches/calls to (or None)."""
        rel = self.jump_offset
        return None if rel is None else slot + 1 + rel

    def __str__(self) -> str:
        from .disasm import format_instruction

        return format_instruction(self)


def decode(data: bytes | bytearray | memoryview, endian: str = "<", *,
           base: int = 0) -> list[Instruction]:
    """Instructions from raw bytes; ``base`` is added to offsets named in errors.

    Raises ObjectError on a trailing partial slot or an ld_imm64 missing its second half.
    """
    n = memoryview(data).nbytes
    if endian not in _SLOT:
        raise ObjectError(f"unknown byte order {endian!r} (want '<' or '>')")
    if n % 8:
        raise ObjectError(f"instructions at offset {base:#x}: {n} bytes is not a whole number"
                          f" of 8-byte slots ({n % 8} bytes left over at offset"
                          f" {base + n - n % 8:#x})")
    split = _SPLIT[endian]
    out: list[Instruction] = []
    append = out.append
    slots = _SLOT[endian].iter_unpack(data)
    i = 0
    for code, regs, off, imm in slots:
        dst, src = split[regs]
        if code == LD_IMM64:
            second = next(slots, None)
            if second is None:
                raise ObjectError(f"ld_imm64 at offset {base + i * 8:#x} (slot {i}) is missing its"
                                  " second half")
            code2, regs2, off2, imm2 = second
            ext = _NO_EXT if not (code2 or regs2 or off2) else (code2, *split[regs2], off2)
            append(Instruction(code, dst, src, off, (imm & _M32) | ((imm2 & _M32) << 32), ext))
            i += 2
        else:
            append(Instruction(code, dst, src, off, imm))
            i += 1
    return out


def encode(insns: Iterable[Instruction], endian: str = "<") -> bytes:
    """Raw bytes of instructions; ObjectError names the first field out of range."""
    if endian not in _SLOT:
        raise ObjectError(f"unknown byte order {endian!r} (want '<' or '>')")
    insns = insns if isinstance(insns, Sequence) else list(insns)
    big = endian == ">"
    one = _SLOT[endian].pack_into
    two = _WIDE[endian].pack_into
    buf = bytearray(8 * sum(2 if i.opcode == LD_IMM64 else 1 for i in insns))
    pos = 0
    for index, insn in enumerate(insns):
        code, dst, src, off, imm = insn.opcode, insn.dst, insn.src, insn.off, insn.imm
        regs = (dst << 4 | src) if big else (src << 4 | dst)
        try:
            if (dst | src) & ~0xF:
                raise struct.error
            if code == LD_IMM64:
                if not -(1 << 63) <= imm <= _M64:
                    raise struct.error
                imm &= _M64
                c2, d2, s2, o2 = insn.ext
                if (d2 | s2) & ~0xF:
                    raise struct.error
                two(buf, pos, code, regs, off, imm & _M32,
                    c2, (d2 << 4 | s2) if big else (s2 << 4 | d2), o2, imm >> 32)
                pos += 16
            else:
                one(buf, pos, code, regs, off, imm)
                pos += 8
        except (struct.error, TypeError, ValueError):
            raise ObjectError(f"instruction {index} (slot {pos // 8}) cannot be encoded: "
                              f"{_out_of_range(insn)}") from None
    return bytes(buf)


def _out_of_range(insn: Instruction) -> str:
    """Which field made ``encode`` fail, for the error message."""
    wide = insn.opcode == LD_IMM64
    checks: list[tuple[str, object, int, int]] = [
        ("opcode", insn.opcode, 0, 0xFF), ("dst", insn.dst, 0, 15), ("src", insn.src, 0, 15),
        ("off", insn.off, -(1 << 15), (1 << 15) - 1),
        ("imm", insn.imm, -(1 << 63) if wide else -(1 << 31), _M64 if wide else (1 << 31) - 1),
    ]
    if wide:
        ext = insn.ext if isinstance(insn.ext, tuple) and len(insn.ext) == 4 else (None,) * 4
        checks += [("ext code", ext[0], 0, 0xFF), ("ext dst", ext[1], 0, 15),
                   ("ext src", ext[2], 0, 15), ("ext off", ext[3], -(1 << 15), (1 << 15) - 1)]
    for name, value, lo, hi in checks:
        if not isinstance(value, int) or not lo <= value <= hi:
            return f"{name}={value!r} is not an integer in [{lo}, {hi}]"
    return repr(insn)


def slot_offsets(insns: Iterable[Instruction]) -> list[int]:
    """The slot at which each instruction starts (ld_imm64 advances by two)."""
    out: list[int] = []
    slot = 0
    for insn in insns:
        out.append(slot)
        slot += 2 if insn.opcode == LD_IMM64 else 1
    return out


def index_by_slot(insns: Iterable[Instruction]) -> dict[int, int]:
    """Slot -> instruction index, for slots where an instruction starts (not ld_imm64's
    second half): turns relocation and .BTF.ext offsets (bytes // 8) into list indices."""
    return {slot: i for i, slot in enumerate(slot_offsets(insns))}


def slot_count(insns: Iterable[Instruction]) -> int:
    """Total 8-byte slots (the kernel's insn_cnt)."""
    return sum(2 if insn.opcode == LD_IMM64 else 1 for insn in insns)


__all__ = [
    "Instruction",
    "decode",
    "encode",
    "index_by_slot",
    "slot_count",
    "slot_offsets",
]
