"""Disassembly text, form by form, as kernel/bpf/disasm.c prints it; the helper table."""

from __future__ import annotations

from pathlib import Path

import pytest

from corebpf.asm import (
    FUNC_MAX_ID,
    HELPER_NAMES,
    Instruction,
    Pseudo,
    PseudoCall,
    disassemble,
    format_instruction,
    helper_id,
    helper_name,
)

I = Instruction  # noqa: E741 - a short name keeps the table below readable

# (instruction, the kernel's text) -- strings written from print_bpf_insn's format strings.
CASES = [
    (I(0xBF, 6, 1), "r6 = r1"),
    (I(0xBC, 1, 2), "w1 = w2"),
    (I(0xB7, 0, 0, 0, -1), "r0 = -1"),
    (I(0xB4, 2, 0, 0, 7), "w2 = 7"),
    (I(0x07, 1, 0, 0, -4), "r1 += -4"),
    (I(0x0F, 3, 1), "r3 += r1"),
    (I(0x1C, 4, 1), "w4 -= w1"),
    (I(0x27, 1, 0, 0, 3), "r1 *= 3"),
    (I(0x3F, 3, 1), "r3 /= r1"),
    (I(0x3F, 3, 1, 1), "r3 s/= r1"),
    (I(0x37, 3, 0, 1, -3), "r3 s/= -3"),
    (I(0x9C, 4, 1, 1), "w4 s%= w1"),
    (I(0x97, 1, 0, 0, 7), "r1 %= 7"),
    (I(0x4F, 1, 2), "r1 |= r2"),
    (I(0x57, 1, 0, 0, 255), "r1 &= 255"),
    (I(0x6F, 1, 2), "r1 <<= r2"),
    (I(0x77, 1, 0, 0, 1), "r1 >>= 1"),
    (I(0xC7, 1, 0, 0, 1), "r1 s>>= 1"),
    (I(0xAC, 4, 1), "w4 ^= w1"),
    (I(0x87, 1), "r1 = -r1"),
    (I(0x84, 1), "w1 = -w1"),
    (I(0xBF, 5, 3, 8), "r5 = (s8)r3"),
    (I(0xBF, 5, 3, 16), "r5 = (s16)r3"),
    (I(0xBF, 5, 3, 32), "r5 = (s32)r3"),
    (I(0xBC, 5, 4, 8), "w5 = (s8)w4"),
    (I(0xBF, 1, 2, 1, 0x10002), "r1 = addr_space_cast(r2, 1, 2)"),
    (I(0xBF, 1, 2, -1), "r1 = &(void __percpu *)(r2)"),
    (I(0xDC, 3, 0, 0, 16), "r3 = be16 r3"),
    (I(0xD4, 3, 0, 0, 64), "r3 = le64 r3"),
    (I(0xD7, 3, 0, 0, 32), "r3 = bswap32 r3"),
    (I(0x79, 1, 6, 8), "r1 = *(u64 *)(r6 +8)"),
    (I(0x61, 7, 6, 0), "r7 = *(u32 *)(r6 +0)"),
    (I(0x71, 1, 10, -1), "r1 = *(u8 *)(r10 -1)"),
    (I(0x91, 5, 10, -24), "r5 = *(s8 *)(r10 -24)"),
    (I(0x89, 5, 10, -20), "r5 = *(s16 *)(r10 -20)"),
    (I(0x81, 5, 10, -16), "r5 = *(s32 *)(r10 -16)"),
    (I(0x7B, 10, 3, -8), "*(u64 *)(r10 -8) = r3"),
    (I(0x6B, 10, 4, -20), "*(u16 *)(r10 -20) = r4"),
    (I(0x62, 10, 0, -36, -1), "*(u32 *)(r10 -36) = -1"),
    (I(0x72, 10, 0, -39, 1), "*(u8 *)(r10 -39) = 1"),
    (I(0xDB, 10, 1, -8, 0x00), "lock *(u64 *)(r10 -8) += r1"),
    (I(0xC3, 10, 1, -16, 0x50), "lock *(u32 *)(r10 -16) &= r1"),
    (I(0xDB, 10, 1, -8, 0x41), "r1 = atomic64_fetch_or((u64 *)(r10 -8), r1)"),
    (I(0xC3, 10, 1, -16, 0xA1), "r1 = atomic_fetch_xor((u32 *)(r10 -16), r1)"),
    (I(0xDB, 10, 1, -8, 0xE1), "r1 = atomic64_xchg((u64 *)(r10 -8), r1)"),
    (I(0xC3, 10, 1, -16, 0xF1), "r0 = atomic_cmpxchg((u32 *)(r10 -16), r0, r1)"),
    (I(0xDB, 5, 10, -8, 0x100), "r5 = load_acquire((u64 *)(r10 -8))"),
    (I(0xCB, 10, 5, -20, 0x110), "store_release((u16 *)(r10 -20), r5)"),
    (I(0x30, 0, 0, 0, 14), "r0 = *(u8 *)skb[14]"),
    (I(0x48, 0, 2, 0, 3), "r0 = *(u16 *)skb[r2 + 3]"),
    (I(0x18, 1, 0, 0, 0x1234_5678_9ABC_DEF0), "r1 = 0x123456789abcdef0"),
    (I(0x18, 1, Pseudo.MAP_FD, 0, 5), "r1 = 0x5"),
    (I(0x85, 0, 0, 0, 14), "call bpf_get_current_pid_tgid#14"),
    (I(0x85, 0, 0, 0, 211), "call bpf_cgrp_storage_delete#211"),
    (I(0x85, 0, 0, 0, 212), "call unknown#212"),
    (I(0x85, 0, PseudoCall.CALL, 0, 29), "call pc+29"),
    (I(0x85, 0, PseudoCall.CALL, 0, -3), "call pc-3"),
    (I(0x85, 0, PseudoCall.KFUNC_CALL, 0, 63537), "call kernel-function#63537"),
    (I(0x95), "exit"),
    (I(0x05, 0, 0, 3), "goto pc+3"),
    (I(0x06, 0, 0, 0, -70000), "gotol pc-70000"),
    (I(0xE5, 0, 0, 1), "may_goto pc+1"),
    (I(0x0D, 3), "gotox r3"),
    (I(0x15, 1, 0, 3, 0), "if r1 == 0x0 goto pc+3"),
    (I(0x65, 1, 0, 0, -3), "if r1 s> 0xfffffffd goto pc+0"),
    (I(0x4D, 1, 2, -2), "if r1 & r2 goto pc-2"),
    (I(0xA6, 3, 0, 0, 5), "if w3 < 0x5 goto pc+0"),
    (I(0xDE, 3, 4, 1), "if w3 s<= w4 goto pc+1"),
    # encodings the verifier rejects: the kernel's fallbacks, never an exception
    (I(0x00, 1), "BUG_ld_00"),
    (I(0x69, 1, 2), "r1 = *(u16 *)(r2 +0)"),
    (I(0xA1, 1, 2), "BUG_ldx_a1"),
    (I(0x99, 1, 2), "r1 = *((null) *)(r2 +0)"),
    (I(0x82, 1), "BUG_st_82"),
    (I(0xC2, 1), "nospec"),
    (I(0x83, 1, 2), "BUG_83"),
    (I(0xDB, 1, 2, 0, 0x02), "BUG_db"),
    (I(0xF7, 1, 0, 0, 2), "r1 (null) 2"),
    (I(0xE5, 0, 1, 2), "if r0 (null) 0x0 goto pc+2"),
    (I(0x96, 1), "if w1 exit 0x0 goto pc+0"),
]


@pytest.mark.parametrize(("insn", "text"), CASES, ids=[t for _, t in CASES])
def test_kernel_text(insn: Instruction, text: str) -> None:
    assert format_instruction(insn) == text


def test_lines_are_numbered_by_slot_with_the_opcode() -> None:
    insns = [I(0xBF, 6, 1), I(0x79, 1, 6, 8), I(0x85, 0, 0, 0, 14),
             I.ld_imm64(1, 0, Pseudo.MAP_FD), I(0x15, 1, 0, 3), I(0x95)]
    assert disassemble(insns) == [
        "0: (bf) r6 = r1",
        "1: (79) r1 = *(u64 *)(r6 +8)",
        "2: (85) call bpf_get_current_pid_tgid#14",
        "3: (18) r1 = 0x0",
        "5: (15) if r1 == 0x0 goto pc+3",
        "6: (95) exit",
    ]
    assert disassemble(insns[:2], first_slot=10, opcodes=False) == [
        "10: r6 = r1", "11: r1 = *(u64 *)(r6 +8)"]


def test_callbacks_annotate_and_rename() -> None:
    insns = [I.ld_imm64(1, 7, Pseudo.MAP_FD), I.call(4, PseudoCall.CALL),
             I.call(99, PseudoCall.KFUNC_CALL), I.call(1), I.exit()]
    notes = {0: "map: events", 3: "CO-RE <byte_off> [2] struct task_struct.pid"}
    lines = disassemble(
        insns,
        annotate=notes.get,
        imm=lambda i: f"map[id:{i.imm}]" if i.src == Pseudo.MAP_FD else None,
        call_name=lambda i: {PseudoCall.CALL: "+4#sub", PseudoCall.KFUNC_CALL: "bpf_rcu_read_lock",
                             0: "never asked"}[i.src],
    )
    assert lines == [
        "0: (18) r1 = map[id:7]  ; map: events",
        "2: (85) call pc+4#sub",
        "3: (85) call bpf_rcu_read_lock#99  ; CO-RE <byte_off> [2] struct task_struct.pid",
        "4: (85) call bpf_map_lookup_elem#1",  # the kernel's table wins for helpers
        "5: (95) exit",
    ]


def test_helper_table() -> None:
    assert FUNC_MAX_ID == 212 and HELPER_NAMES[0] == "unspec"
    assert helper_name(1) == "bpf_map_lookup_elem" and helper_name(14) == (
        "bpf_get_current_pid_tgid")
    assert helper_name(181) == "bpf_loop" and helper_name(212) is None and helper_name(-1) is None
    assert helper_id("bpf_ringbuf_output") == helper_id("ringbuf_output") == 130
    assert helper_id("nope") is None


def test_helper_table_matches_the_kernel_btf(kernel_spec) -> None:  # type: ignore[no-untyped-def]
    """enum bpf_func_id of the running kernel names the same ids."""
    import corebpf.btf as btf

    enum = kernel_spec.type(kernel_spec.find("bpf_func_id", btf.Kind.ENUM))
    values = {v.name: v.value for v in enum.values}
    assert values.pop("__BPF_FUNC_MAX_ID") == FUNC_MAX_ID
    assert values == {f"BPF_FUNC_{n}": i for i, n in enumerate(HELPER_NAMES)}


def test_helper_table_matches_the_installed_header() -> None:
    header = Path("/usr/include/linux/bpf.h")
    if not header.exists():
        pytest.skip("no /usr/include/linux/bpf.h (apt-get install linux-libc-dev)")
    import re

    names = re.findall(r"\bFN\(([a-z_0-9]+)", header.read_text())
    assert names and list(HELPER_NAMES[: len(names)]) == names
