"""Instructions as data: decode/encode, ld_imm64, byte orders, slots, predicates, errors."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corebpf.asm import (
    LD_IMM64,
    AluOp,
    AtomicOp,
    Class,
    Instruction,
    JmpOp,
    Mode,
    Pseudo,
    PseudoCall,
    Size,
    Source,
    decode,
    disassemble,
    encode,
    index_by_slot,
    slot_count,
    slot_offsets,
)
from corebpf.errors import ObjectError
from tests.asm.objs import code_sections, objects


def raw(code: int, dst: int, src: int, off: int, imm: int, endian: str = "<") -> bytes:
    regs = (src << 4 | dst) if endian == "<" else (dst << 4 | src)
    return struct.pack(endian + "BBhi", code, regs, off, imm)


def test_opcode_values_match_uapi() -> None:
    assert Class.LDX | Size.DW | Mode.MEM == 0x79
    assert Class.ALU64 | AluOp.MOV | Source.X == 0xBF
    assert Class.JMP | JmpOp.CALL == 0x85 and Class.JMP | JmpOp.EXIT == 0x95
    assert Class.LD | Size.DW | Mode.IMM == LD_IMM64 == 0x18
    assert Class.LDX | Size.B | Mode.MEMSX == 0x91
    assert Class.STX | Size.DW | Mode.ATOMIC == 0xDB
    assert Class.JMP | JmpOp.JCOND == 0xE5 and Class.JMP32 | JmpOp.JA == 0x06
    assert (AtomicOp.XCHG, AtomicOp.CMPXCHG, AtomicOp.FETCH_ADD) == (0xE1, 0xF1, 0x01)
    assert (AtomicOp.LOAD_ACQ, AtomicOp.STORE_REL) == (0x100, 0x110)
    assert [p.value for p in Pseudo] == [1, 2, 3, 4, 5, 6]
    assert (PseudoCall.CALL, PseudoCall.KFUNC_CALL) == (1, 2)
    assert [s.nbytes for s in (Size.B, Size.H, Size.W, Size.DW)] == [1, 2, 4, 8]


def test_register_nibbles_swap_with_byte_order() -> None:
    le = bytes.fromhex("bf16000000000000")  # r6 = r1
    be = bytes.fromhex("bf61000000000000")
    assert decode(le, "<") == decode(be, ">") == [Instruction(0xBF, 6, 1, 0, 0)]
    assert encode(decode(le), ">") == be
    ldx = raw(0x79, 1, 6, 8, 0, ">")  # r1 = *(u64 *)(r6 +8)
    assert decode(ldx, ">")[0] == Instruction(0x79, 1, 6, 8, 0)


def test_ld_imm64_is_one_instruction_of_two_slots() -> None:
    for e in "<>":
        data = (raw(0x18, 1, 0, 0, -0x65432110, e) + raw(0, 0, 0, 0, 0x12345678, e)
                + raw(0x95, 0, 0, 0, 0, e))
        insns = decode(data, e)
        assert len(insns) == 2 and slot_count(insns) == 3
        assert insns[0].imm == 0x12345678_9ABCDEF0 and insns[0].size == 2
        assert insns[0].is_ldimm64 and insns[1].is_exit
        assert slot_offsets(insns) == [0, 2] and index_by_slot(insns) == {0: 0, 2: 1}
        assert encode(insns, e) == data
    assert Instruction.ld_imm64(1, -1).imm == 0xFFFF_FFFF_FFFF_FFFF
    assert encode([Instruction(LD_IMM64, 1, 0, 0, -1)]) == encode([Instruction.ld_imm64(1, -1)])


def test_ld_imm64_second_slot_fields_survive_a_round_trip() -> None:
    """The kernel wants zeros there; a decoder that drops them is not byte-identical."""
    for e in "<>":
        data = raw(0x18, 2, 1, 7, 5, e) + raw(0xAB, 3, 4, -2, -1, e)
        (insn,) = decode(data, e)
        assert insn.ext == (0xAB, 3, 4, -2) and insn.off == 7
        assert encode([insn], e) == data


def test_truncated_input_names_the_offset() -> None:
    with pytest.raises(ObjectError, match=r"3 bytes left over at offset 0x10"):
        decode(bytes(19))
    with pytest.raises(ObjectError, match=r"offset 0x28"):
        decode(bytes(3), base=0x28)
    lone = raw(0xB7, 0, 0, 0, 0) + raw(0x18, 1, 0, 0, 0)
    with pytest.raises(ObjectError, match=r"ld_imm64 at offset 0x108 \(slot 1\) is missing"):
        decode(lone, base=0x100)
    with pytest.raises(ObjectError, match="byte order"):
        decode(b"", "big")
    assert decode(b"") == [] and encode([]) == b""


@pytest.mark.parametrize(
    ("insn", "field"),
    [
        (Instruction(0x1BF), "opcode"),
        (Instruction(0xBF, 16, 0), "dst"),
        (Instruction(0xBF, 0, -1), "src"),
        (Instruction(0x79, 1, 2, 1 << 15), "off"),
        (Instruction(0xB7, 1, 0, 0, 1 << 31), "imm"),
        (Instruction(LD_IMM64, 1, 0, 0, 1 << 64), "imm"),
        (Instruction(LD_IMM64, 1, 0, 0, 0, (0, 16, 0, 0)), "ext dst"),
        (Instruction(0xB7, 1, 0, 0, "x"), "imm"),  # type: ignore[arg-type]
    ],
)
def test_encode_rejects_fields_out_of_range(insn: Instruction, field: str) -> None:
    with pytest.raises(ObjectError, match=rf"instruction 1 \(slot 1\).*{field}="):
        encode([Instruction.mov(0, imm=0), insn])


def test_predicates_and_fields() -> None:
    call = Instruction.call(14)
    assert call.is_call and call.is_helper_call and not call.is_pseudo_call
    assert not call.is_jump and call.jump_offset is None
    sub = Instruction.call(-7, PseudoCall.CALL)
    assert sub.is_pseudo_call and sub.jump_target(10) == 4
    assert Instruction.call(5, PseudoCall.KFUNC_CALL).is_kfunc_call
    ldx = Instruction(0x61, 7, 6, 0, 0)
    assert ldx.is_ldx and ldx.cls is Class.LDX and ldx.mem_size is Size.W and ldx.mem_bytes == 4
    assert ldx.mode == Mode.MEM
    lock = Instruction(0xDB, 10, 1, -8, AtomicOp.FETCH_ADD)
    assert lock.is_atomic and lock.is_stx and not lock.is_st
    alu = Instruction(0x3F, 3, 1, 1, 0)
    assert alu.is_alu and alu.is_alu64 and alu.op == AluOp.DIV and alu.source is Source.X
    assert Instruction(0xBF, 1, 2, 1, 0).is_addr_space_cast
    cond = Instruction(0x15, 1, 0, 3, 0)
    assert cond.is_jump and cond.is_conditional_jump and cond.jump_target(4) == 8
    assert Instruction.ja(-3).jump_target(9) == 7 and not Instruction.ja(0).is_conditional_jump
    gotol = Instruction(Class.JMP32 | JmpOp.JA, 0, 0, 0, 70000)
    assert gotol.jump_offset == 70000
    may_goto = Instruction(0xE5, 0, 0, 5, 0)
    assert may_goto.is_conditional_jump and may_goto.jump_target(0) == 6
    assert Instruction(0x0D, 3).jump_offset is None  # gotox: indirect
    assert Instruction.exit().is_exit and Instruction.exit().jump_offset is None
    func = Instruction.ld_imm64(2, (1 << 32) - 5, Pseudo.FUNC)
    assert func.is_pseudo_func and func.jump_target(20) == 16
    assert Instruction.ld_imm64(1, 0, Pseudo.MAP_VALUE).is_map_load
    assert Instruction.ld_imm64(1, 7).jump_offset is None
    assert str(Instruction.mov(1, 2, alu64=False)) == "w1 = w2"


def test_decode_is_linear_and_fast() -> None:
    """A 100k-slot program decodes and encodes in well under a second."""
    import time

    prog = encode([Instruction.mov(1, imm=i & 0x7FFF) for i in range(90_000)]
                  + [Instruction.ld_imm64(2, i) for i in range(5_000)])
    t = time.perf_counter()
    insns = decode(prog)
    assert encode(insns) == prog
    assert time.perf_counter() - t < 1.0


@pytest.mark.parametrize("path", objects(), ids=lambda p: p.name)
def test_every_object_round_trips(path: Path) -> None:
    """decode then encode gives back each code section byte for byte (bpfel and bpfeb)."""
    seen = 0
    for code in code_sections(path):
        insns = decode(code.data, code.endian)
        assert slot_count(insns) * 8 == len(code.data)
        assert encode(insns, code.endian) == code.data
        other = ">" if code.endian == "<" else "<"
        assert decode(encode(insns, other), other) == insns
        assert len(disassemble(insns)) == len(insns)
        seen += 1
    assert seen


# --- property tests -------------------------------------------------------------------------

_regs = st.integers(0, 15)
_off = st.integers(-(1 << 15), (1 << 15) - 1)
_imm = st.integers(-(1 << 31), (1 << 31) - 1)
_plain = st.builds(Instruction, st.integers(0, 255).filter(lambda c: c != LD_IMM64),
                   _regs, _regs, _off, _imm)
_wide = st.builds(Instruction, st.just(LD_IMM64), _regs, _regs, _off,
                  st.integers(0, (1 << 64) - 1),
                  st.one_of(st.just((0, 0, 0, 0)),
                            st.tuples(st.integers(0, 255), _regs, _regs, _off)))
_programs = st.lists(st.one_of(_plain, _wide), max_size=40)


@settings(max_examples=300, deadline=None)
@given(_programs, st.sampled_from("<>"))
def test_random_instructions_round_trip(insns: list[Instruction], endian: str) -> None:
    data = encode(insns, endian)
    assert len(data) == 8 * slot_count(insns)
    assert decode(data, endian) == insns
    assert encode(decode(data, endian), endian) == data
    assert len(disassemble(insns)) == len(insns)  # never raises, whatever the encoding


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.sampled_from("<>"))
def test_fuzzed_bytes_decode_or_raise_object_error(data: bytes, endian: str) -> None:
    try:
        insns = decode(data, endian)
    except ObjectError:  # anything else fails the test
        return
    assert encode(insns, endian) == data
    disassemble(insns)
