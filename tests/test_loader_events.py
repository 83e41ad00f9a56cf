"""Ring buffer and perf event array maps that name their event type (``__type(value,
struct event)``): created as the kernel wants them, read back typed; and the tools'
shared header loading both ways (ring buffer, or perf event array with use_ringbuf=false).
Real kernel, root."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corebpf import sys as ksys
from corebpf.loader import MAP_TYPE_PERF_EVENT_ARRAY, MAP_TYPE_RINGBUF, load
from corebpf.obj import ObjectSpec
from corebpf.perf import PerfBuffer
from corebpf.ringbuf import RingBufferPoller
from corebpf.run import attach_programs, event_decoder
from corebpf.sys.fs import possible_cpu_count
from tests.conftest import PROGS

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/sys/kernel/btf/vmlinux"),
    reason="loading BPF programs needs root and a kernel with BTF",
)

EVENTS = PROGS / "events.bpf.o"
TOOL_EVENTS = PROGS / "tool_events.bpf.o"


def _map_info(fd: int) -> dict[str, int]:
    """struct bpf_map_info's sizes and BTF type ids as the kernel reports them."""
    info = ksys.obj_info(fd, 80)
    mtype, _id, key, value, max_entries = struct.unpack_from("=5I", info, 0)
    key_id, value_id = struct.unpack_from("=2I", info, 68)
    return {"type": mtype, "key": key, "value": value, "max": max_entries,
            "btf_key": key_id, "btf_value": value_id}


def test_the_spec_keeps_the_event_type() -> None:
    obj = ObjectSpec.load(EVENTS)
    assert obj.btf is not None
    for name in ("ring", "perf"):
        m = obj.maps[name]
        assert obj.btf.type(m.value_type_id).name == "event" and m.value_size == 20


def test_typed_ring_and_perf_maps_are_created_as_the_kernel_wants() -> None:
    with load(EVENTS) as coll:
        ring = _map_info(coll.maps["ring"].fd.fd)
        perf = _map_info(coll.maps["perf"].fd.fd)
    assert ring == {"type": MAP_TYPE_RINGBUF, "key": 0, "value": 0, "max": 4096,
                    "btf_key": 0, "btf_value": 0}
    assert perf == {"type": MAP_TYPE_PERF_EVENT_ARRAY, "key": 4, "value": 4,
                    "max": possible_cpu_count(), "btf_key": 0, "btf_value": 0}


class _Sink:
    def __init__(self, dec: Callable[[bytes], dict[str, Any]], out: list[Any]):
        self.dec, self.out = dec, out

    def ring(self, data: bytes) -> None:
        self.out.append(self.dec(data)["event"])

    def perf(self, cpu: int, data: bytes) -> None:
        self.out.append(self.dec(data)["event"])


def _read_events(obj: ObjectSpec, rodata: dict[str, object]) -> dict[str, list[Any]]:
    """Load, attach, call getppid three times, and the decoded records by map."""
    got: dict[str, list[Any]] = {}
    with load(obj, rodata=rodata) as coll:
        readers = [m for m in obj.maps.values()
                   if m.type in (MAP_TYPE_RINGBUF, MAP_TYPE_PERF_EVENT_ARRAY)]
        with RingBufferPoller() as rings:
            perfs = []
            for m in readers:
                sink = _Sink(event_decoder(obj, m), got.setdefault(m.name, []))
                if m.type == MAP_TYPE_RINGBUF:
                    rings.add(coll.maps[m.name], sink.ring)
                else:
                    perfs.append(PerfBuffer(coll.maps[m.name], on_sample=sink.perf))
            links, _ = attach_programs(coll)
            try:
                for _ in range(3):
                    os.getppid()
            finally:
                for link in links:
                    link.close()
            rings.consume()
            for pb in perfs:
                pb.consume()
                pb.close()
    return got


def _comm(n: int) -> str:
    return Path("/proc/self/comm").read_text().strip()[:n - 1]


def test_typed_events_are_read_back() -> None:
    got = _read_events(ObjectSpec.load(EVENTS), {"target_pid": os.getpid()})
    want = {"pid": os.getpid(), "tag": -3, "comm": _comm(12)}
    assert got == {"ring": [want] * 3, "perf": [want] * 3}


def test_tools_header_as_a_ring_buffer() -> None:
    obj = ObjectSpec.load(TOOL_EVENTS)
    got = _read_events(obj, {"target_pid": os.getpid()})
    assert got == {"events": [{"pid": os.getpid(), "seq": i, "comm": _comm(16)}
                              for i in range(3)]}


def test_tools_header_as_a_perf_event_array() -> None:
    """events made a PERF_EVENT_ARRAY and use_ringbuf=false: the program loads only if
    the verifier, reading frozen .rodata as a constant, never checks the ring buffer
    call against a perf event array (it would refuse bpf_ringbuf_output on it)."""
    obj = ObjectSpec.load(TOOL_EVENTS)
    ev = obj.maps["events"]
    ev.type, ev.max_entries = MAP_TYPE_PERF_EVENT_ARRAY, 0
    got = _read_events(obj, {"target_pid": os.getpid(), "use_ringbuf": False})
    assert got == {"events": [{"pid": os.getpid(), "seq": i, "comm": _comm(16)}
                              for i in range(3)]}


def test_perf_array_with_use_ringbuf_left_true_is_refused() -> None:
    """The other half of the pruning check: with use_ringbuf still true, the ring buffer
    call is live and the verifier refuses it on a perf event array."""
    from corebpf.errors import LoadError

    obj = ObjectSpec.load(TOOL_EVENTS)
    obj.maps["events"].type = MAP_TYPE_PERF_EVENT_ARRAY
    with pytest.raises(LoadError) as e:
        load(obj).close()
    assert "cannot pass map_type 4 into func bpf_ringbuf_output" in e.value.log
