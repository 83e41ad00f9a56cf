"""Loading real objects into this kernel (root and BPF required; no mocks)."""

from __future__ import annotations

import ctypes
import os
import struct

import pytest

from corebpf import sys as ksys
from corebpf.errors import VerifierError
from corebpf.loader import load
from tests.conftest import PROGS

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/sys/kernel/btf/vmlinux"),
    reason="loading BPF programs needs root and a kernel with BTF",
)


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_global_data_subprogram_and_rodata() -> None:
    before = _fds()
    with load(PROGS / "btf_shapes.bpf.o", rodata={"g_ro": 1234}) as coll:
        assert set(coll.programs) == {"prog"}
        rodata = coll.maps["btf_shap.rodata"]
        assert rodata.mmap is not None
        assert struct.unpack_from("<i", rodata.mmap, 0)[0] == 1234
        data = coll.maps["btf_shap.data"]
        assert data.mmap is not None
        assert struct.unpack_from("<i", data.mmap, 0)[0] == 1  # g_counter's initial value
        struct.pack_into("<i", data.mmap, 0, 99)  # writable through the mapping
        key, val = ctypes.c_uint32(0), ctypes.create_string_buffer(4)
        ksys.map_elem(ksys.BPFCommand.MAP_LOOKUP_ELEM, data.fd.fd, key, val)
        assert struct.unpack("<i", val.raw)[0] == 99
        # func_info/line_info went along: the kernel accepted BTF-described subprograms
        assert coll.btf_fd is not None
    assert _fds() == before


def test_map_in_map_prog_array_and_pinning(tmp_path: object) -> None:
    with load(PROGS / "maps.bpf.o") as coll:
        outer = coll.maps["outer"]
        key, val = ctypes.c_uint32(0), ctypes.c_uint32(0)
        ksys.map_elem(ksys.BPFCommand.MAP_LOOKUP_ELEM, outer.fd.fd, key, val)
        in1_id = struct.unpack_from("<I", ksys.obj_info(coll.maps["in1"].fd.fd), 4)[0]
        assert val.value == in1_id  # the slot holds in1 (lookups return map ids)
        jmp = coll.maps["jmp"]
        key = ctypes.c_uint32(1)
        ksys.map_elem(ksys.BPFCommand.MAP_LOOKUP_ELEM, jmp.fd.fd, key, val)
        assert val.value > 0  # tail's program id
        pinned = coll.maps["h"].pinned
        assert pinned is not None and os.path.exists(pinned)
    try:
        with load(PROGS / "maps.bpf.o") as again:  # reuses the pinned map
            assert again.maps["h"].pinned == pinned
    finally:
        os.unlink(pinned)


def test_core_object_loads_against_the_running_kernel() -> None:
    with load(PROGS / "core_module.bpf.o") as coll:
        assert "module_types" in coll.programs
        assert coll.core_reports and not any(r.error for r in coll.core_reports)


def test_poisoned_field_is_explained() -> None:
    with pytest.raises(VerifierError) as e:
        load(PROGS / "core_poison.bpf.o")
    msg = str(e.value)
    assert "struct task_struct has no field no_such_field_anywhere on the running kernel" in msg
    assert "195896080" in e.value.log


def test_verifier_refusal_shows_the_log_tail() -> None:
    """A map value read without a NULL check: the message ends with the verifier's
    reason and the instruction it refused; ``log`` has all of it."""
    bad = PROGS / "verifier_bad.bpf.o"
    with pytest.raises(VerifierError) as e:
        load(bad)
    msg, log = str(e.value), e.value.log
    head, _, tail = msg.partition("\n")
    assert head == f"{bad}: program no_null_check: BPF_PROG_LOAD failed: Permission denied"
    total = len(log.rstrip("\n").splitlines())
    assert total > 20 and tail.startswith(f"verifier log (last 20 of {total} lines):\n")
    shown = tail.splitlines()[1:]
    assert len(shown) == 20 and all(line.startswith("  ") for line in shown)
    assert "  R0 invalid mem access 'map_value_or_null'" in shown
    assert any(line.endswith("r0 = *(u64 *)(r0 +0)") for line in shown)
    assert "processed" in shown[-1]
    with pytest.raises(VerifierError) as e:
        load(bad, verifier_log_lines=None)
    full = e.value.log.rstrip("\n").splitlines()  # this load's (map addresses differ)
    assert str(e.value).endswith("\n  " + "\n  ".join(full))
    assert "\nverifier log:\n" in str(e.value)
