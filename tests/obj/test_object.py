"""BPF objects as data: programs, maps, data sections, relocations, .BTF.ext."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corebpf.errors import Error, ObjectError
from corebpf.obj import ObjectSpec, ProgramType, RelocType, section_def
from corebpf.obj.sections import AttachKind, AttachType, attach_target
from tests.conftest import PROGS


def test_programs_maps_and_relocations() -> None:
    o = ObjectSpec.load(PROGS / "btf_shapes.bpf.o")
    assert o.license == "GPL"
    prog = o.programs["prog"]
    assert prog.section == "tracepoint/syscalls/sys_enter_execve"
    assert prog.prog_type == ProgramType.TRACEPOINT
    assert prog.attach_target == "syscalls/sys_enter_execve"
    assert not prog.is_subprog and o.programs["helper"].is_subprog
    assert {m.name for m in o.maps.values()} == {"btf_shap.data", "btf_shap.rodata",
                                                   "btf_shap.bss"}
    bss = o.maps["btf_shap.bss"]
    assert {v.name: v.offset for v in bss.variables} == {"g_static": 0, "g_uses": 16}
    assert o.maps["btf_shap.rodata"].read_only
    kinds = {(r.type, r.target) for r in prog.relocations}
    assert (RelocType.DATA, "btf_shap.data") in kinds
    assert (RelocType.DATA, "btf_shap.rodata") in kinds
    assert prog.func_info and prog.line_info
    assert prog.func_info[0].insn_off == 0


def test_big_endian_object_parses_the_same() -> None:
    le = ObjectSpec.load(PROGS / "btf_shapes.bpf.o")
    be = ObjectSpec.load(PROGS / "btf_shapes.bpfeb.o")
    assert le.programs.keys() == be.programs.keys()
    assert [r.type for r in le.programs["prog"].relocations] == [
        r.type for r in be.programs["prog"].relocations]


@pytest.mark.parametrize(
    ("name", "ptype", "atype", "attach", "target"),
    [
        ("tp/sched/sched_switch", ProgramType.TRACEPOINT, None, AttachKind.TRACEPOINT,
         "sched/sched_switch"),
        ("fentry/do_unlinkat", ProgramType.TRACING, AttachType.TRACE_FENTRY, AttachKind.TRACING,
         "do_unlinkat"),
        ("kretprobe/tcp_v4_connect", ProgramType.KPROBE, None, AttachKind.KPROBE,
         "tcp_v4_connect"),
        ("uprobe//bin/bash:readline", ProgramType.KPROBE, None, AttachKind.UPROBE,
         "/bin/bash:readline"),
        ("lsm/file_open", ProgramType.LSM, AttachType.LSM_MAC, AttachKind.LSM, "file_open"),
        ("xdp", ProgramType.XDP, AttachType.XDP, AttachKind.XDP, ""),
        ("tcx/ingress", ProgramType.SCHED_CLS, AttachType.TCX_INGRESS, AttachKind.TCX, ""),
        ("cgroup/connect4", ProgramType.CGROUP_SOCK_ADDR, AttachType.CGROUP_INET4_CONNECT,
         AttachKind.CGROUP, ""),
        ("iter/task", ProgramType.TRACING, AttachType.TRACE_ITER, AttachKind.ITER, "task"),
        ("raw_tp/sched_switch", ProgramType.RAW_TRACEPOINT, None, AttachKind.RAW_TRACEPOINT,
         "sched_switch"),
        ("socket", ProgramType.SOCKET_FILTER, None, AttachKind.SOCKET, ""),
        ("struct_ops/init", ProgramType.STRUCT_OPS, None, AttachKind.STRUCT_OPS, "init"),
    ],
)
def test_section_table(name: str, ptype: ProgramType, atype: AttachType | None,
                       attach: AttachKind, target: str) -> None:
    d = section_def(name)
    assert d is not None
    assert (d.prog_type, d.attach_type, d.attach) == (ptype, atype, attach)
    assert attach_target(name, d) == target


@pytest.mark.parametrize("name", ["tpx/foo", "xdp_foo", "socketx", "fentryfoo"])
def test_section_names_libbpf_rejects(name: str) -> None:
    assert section_def(name) is None


def test_truncated_object() -> None:
    data = (PROGS / "btf_shapes.bpf.o").read_bytes()
    with pytest.raises(ObjectError):
        ObjectSpec(data[:100], source="trunc.o")


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for pos, val in edits:
        pos %= len(buf)
        pos -= pos % 4
        buf[pos:pos + 4] = struct.pack("<I", val)[: len(buf) - pos]
    return bytes(buf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 1 << 16),
                          st.sampled_from([0, 1, 2, 7, 8, 0x100, 0xFFFF, 0xFFFFFFFF,
                                           0x7FFFFFFF, 0x12, 0x1000])),
                min_size=1, max_size=4))
def test_mutated_objects_raise_only_corebpf_errors(edits: list[tuple[int, int]]) -> None:
    from corebpf.btf import load
    from corebpf.core import relocate

    data = _mutate((PROGS / "btf_shapes.bpf.o").read_bytes(), edits)
    try:
        obj = ObjectSpec(data, source="fuzz.o")
        if obj.btf is not None:
            relocate(obj, load(PROGS / "btf_shapes.bpf.o"))
    except Error:
        pass


def test_btf_defined_maps_and_initial_values() -> None:
    o = ObjectSpec.load(PROGS / "maps.bpf.o")
    outer = o.maps["outer"]
    assert (outer.type, outer.key_size, outer.value_size, outer.max_entries) == (12, 4, 4, 4)
    assert outer.inner is not None and outer.inner.type == 2 and outer.inner.value_size == 4
    assert outer.initial_values == {0: "in1", 2: "in2"}
    assert o.maps["jmp"].initial_values == {1: "tail"}
    h = o.maps["h"]
    assert (h.type, h.key_size, h.value_size, h.max_entries, h.pinning) == (1, 4, 8, 64, 1)
    assert o.btf is not None and o.btf.size_of(h.value_type_id) == 8
    kinds = [(r.type, r.target) for r in o.programs["p"].relocations]
    assert kinds == [(RelocType.LD64, "h"), (RelocType.LD64, "jmp")]
