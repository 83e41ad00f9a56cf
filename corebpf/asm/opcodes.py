"""The fields of a BPF opcode byte, named as include/uapi/linux/bpf.h names them.

Members drop the uapi ``BPF_`` prefix (``Class.ALU64`` is ``BPF_ALU64``) but keep its
values, so they can be or-ed into an opcode: ``Class.LDX | Size.DW | Mode.MEM == 0x79``.
Encodings newer than the header this machine ships (MEMSX, movsx, sdiv/smod, bswap, gotol,
may_goto, load-acquire/store-release, gotox) are spelled as in the current kernel tree.
"""

from __future__ import annotations

from enum import IntEnum


class Class(IntEnum):
    """The low three bits: which family the instruction belongs to."""

    LD = 0x00
    LDX = 0x01
    ST = 0x02
    STX = 0x03
    ALU = 0x04
    JMP = 0x05
    JMP32 = 0x06
    ALU64 = 0x07


class Size(IntEnum):
    """Load/store width (bits 3-4)."""

    W = 0x00
    H = 0x08
    B = 0x10
    DW = 0x18

    @property
    def nbytes(self) -> int:
        return _SIZE_BYTES[self]


_SIZE_BYTES = {Size.W: 4, Size.H: 2, Size.B: 1, Size.DW: 8}


class Mode(IntEnum):
    """Load/store addressing mode (bits 5-7)."""

    IMM = 0x00
    ABS = 0x20
    IND = 0x40
    MEM = 0x60
    MEMSX = 0x80  # sign-extending LDX (classic BPF's BPF_LEN)
    ATOMIC = 0xC0


class Source(IntEnum):
    """Operand source (bit 3) of ALU and JMP classes: immediate or register."""

    K = 0x00
    X = 0x08


class AluOp(IntEnum):
    """ALU/ALU64 operation (bits 4-7)."""

    ADD = 0x00
    SUB = 0x10
    MUL = 0x20
    DIV = 0x30
    OR = 0x40
    AND = 0x50
    LSH = 0x60
    RSH = 0x70
    NEG = 0x80
    MOD = 0x90
    XOR = 0xA0
    MOV = 0xB0
    ARSH = 0xC0
    END = 0xD0


class JmpOp(IntEnum):
    """JMP/JMP32 operation (bits 4-7)."""

    JA = 0x00
    JEQ = 0x10
    JGT = 0x20
    JGE = 0x30
    JSET = 0x40
    JNE = 0x50
    JSGT = 0x60
    JSGE = 0x70
    CALL = 0x80
    EXIT = 0x90
    JLT = 0xA0
    JLE = 0xB0
    JSLT = 0xC0
    JSLE = 0xD0
    JCOND = 0xE0


class Endian(IntEnum):
    """Source bit of ALU|END: the byte order converted to (ALU64|END is bswap)."""

    TO_LE = 0x00
    TO_BE = 0x08
    FROM_LE = 0x00
    FROM_BE = 0x08


#: BPF_FETCH: or-ed into an atomic operation, the old value is loaded into src_reg.
FETCH = 0x01


class AtomicOp(IntEnum):
    """The ``imm`` of a BPF_ATOMIC store (uapi spells the fetch forms ``BPF_ADD | BPF_FETCH``)."""

    ADD = 0x00
    OR = 0x40
    AND = 0x50
    XOR = 0xA0
    FETCH_ADD = 0x01
    FETCH_OR = 0x41
    FETCH_AND = 0x51
    FETCH_XOR = 0xA1
    XCHG = 0xE1
    CMPXCHG = 0xF1
    LOAD_ACQ = 0x100
    STORE_REL = 0x110


class Pseudo(IntEnum):
    """src_reg of ld_imm64: how the loader/kernel reads the 64-bit constant."""

    MAP_FD = 1
    MAP_VALUE = 2
    BTF_ID = 3
    FUNC = 4
    MAP_IDX = 5
    MAP_IDX_VALUE = 6


class PseudoCall(IntEnum):
    """src_reg of BPF_CALL: helper (0), bpf-to-bpf call, or kernel function."""

    HELPER = 0
    CALL = 1
    KFUNC_CALL = 2


class CondPseudoJmp(IntEnum):
    """src_reg of JMP|JCOND (enum bpf_cond_pseudo_jmp)."""

    MAY_GOTO = 0


#: ``off`` of ALU64|MOV|X that casts between address spaces (imm = dst_as << 16 | src_as).
ADDR_SPACE_CAST = 1
#: ``off`` of DIV/MOD selecting the signed form (sdiv/smod).
SIGNED_DIVMOD = 1
#: ``off`` values of MOV|X that sign-extend from 8, 16 or 32 bits (movsx).
MOVSX_BITS = (8, 16, 32)
#: ``off`` of the kernel-internal ALU64|MOV|X that adds the per-CPU base (never in objects).
ADDR_PERCPU = -1
#: Mode of the kernel-internal ST speculation barrier (BPF_NOSPEC, not in uapi).
NOSPEC = 0xC0

#: opcode of ld_imm64 (BPF_LD | BPF_DW | BPF_IMM), the one instruction using two slots.
LD_IMM64 = Class.LD | Size.DW | Mode.IMM
#: opcode of a call (helper, bpf-to-bpf or kfunc, told apart by src_reg).
CALL = Class.JMP | JmpOp.CALL
#: opcode of exit.
EXIT = Class.JMP | JmpOp.EXIT
#: registers r0-r10; r10 is the read-only frame pointer.
MAX_REG = 11
FRAME_POINTER = 10


__all__ = [
    "ADDR_PERCPU",
    "ADDR_SPACE_CAST",
    "CALL",
    "EXIT",
    "FETCH",
    "FRAME_POINTER",
    "LD_IMM64",
    "MAX_REG",
    "MOVSX_BITS",
    "NOSPEC",
    "SIGNED_DIVMOD",
    "AluOp",
    "AtomicOp",
    "Class",
    "CondPseudoJmp",
    "Endian",
    "JmpOp",
    "Mode",
    "Pseudo",
    "PseudoCall",
    "Size",
    "Source",
]
