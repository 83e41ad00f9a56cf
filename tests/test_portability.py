"""Compile once, run everywhere: one built object gives right values on this kernel, and
its relocations against other kernels' BTF follow those kernels' layouts."""

from __future__ import annotations

import os
import struct
import subprocess
import time
from typing import Any

import pytest

import corebpf.btf as btf
from corebpf.core import relocate
from corebpf.links import attach
from corebpf.loader import Collection, load
from corebpf.obj import ObjectSpec
from corebpf.ringbuf import RingBuffer
from tests.conftest import KERNEL_BTF, PROGS, corpus_files, debian_files

OBJECT = PROGS / "execsnoop.bpf.o"
EVENT = struct.Struct("<IIIi16s128s")  # struct event in execsnoop.bpf.c


def _real_parent_offsets(target: btf.Spec) -> set[int]:
    """Byte offsets CO-RE gave to task_struct.real_parent (and what the BTF says)."""
    reports, _ = relocate(ObjectSpec.load(OBJECT), target)
    got = {r.target for r in reports if r.local_spec.endswith("real_parent (0:2 @ offset 8)")
           or "struct task_struct.real_parent" in r.local_spec}
    return {v for v in got if v is not None}


def exec_events(coll: Collection, argv: list[str]) -> tuple[int, list[tuple[Any, ...]]]:
    """Attach a loaded execsnoop, run ``argv``, and return its pid and the events read
    for it (waiting up to 5 s)."""
    events: list[tuple[Any, ...]] = []
    with attach(coll.programs["tracepoint__syscalls__sys_enter_execve"]), \
            RingBuffer(coll.maps["events"]) as rb:
        child = subprocess.Popen(argv)
        child.wait()
        deadline = time.monotonic() + 5
        while not any(e[0] == child.pid for e in events) and time.monotonic() < deadline:
            rb.poll(100, lambda data: events.append(EVENT.unpack_from(bytes(data))))
    return child.pid, [e for e in events if e[0] == child.pid]


@pytest.mark.skipif(os.geteuid() != 0 or not KERNEL_BTF.exists(),
                    reason="loading BPF programs needs root and a kernel with BTF")
def test_execsnoop_reports_the_right_process_here() -> None:
    with load(OBJECT, rodata={"target_uid": os.getuid()}) as coll:
        pid, mine = exec_events(coll, ["/bin/true", "portability-arg"])
    assert mine, f"no event for pid {pid}"
    _, ppid, uid, _, comm, filename = mine[0]
    assert ppid == os.getpid()  # BPF_CORE_READ(task, real_parent, tgid)
    assert uid == os.getuid()
    # the exec'ing task still runs the parent's image when the tracepoint fires
    assert comm.rstrip(b"\0") == open("/proc/self/comm", "rb").read().strip()[:15]
    assert filename.rstrip(b"\0") == b"/bin/true"


KERNELS = [*debian_files(), *corpus_files()]


@pytest.mark.skipif(not KERNELS, reason="no other kernels' BTF (tests/data/btf, corpus)")
def test_same_object_follows_each_kernels_layout() -> None:
    seen: dict[int, list[str]] = {}
    for path in KERNELS:
        target = btf.load(path)
        offsets = _real_parent_offsets(target)
        task = target.find("task_struct", btf.Kind.STRUCT)
        want = target.member_offset(task, "real_parent")[0] // 8
        assert offsets == {want}, path.name
        seen.setdefault(want, []).append(path.name)
    # the layouts really differ across these kernels: the object works on all of them
    assert len(seen) >= 3, seen
    if KERNEL_BTF.exists():
        here = btf.load(KERNEL_BTF)
        assert _real_parent_offsets(here) == {
            here.member_offset(here.find("task_struct", btf.Kind.STRUCT), "real_parent")[0] // 8}
