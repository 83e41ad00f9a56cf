"""Perf buffer reader against the real kernel: a hand-assembled tc program calls
bpf_perf_event_output(BPF_F_CURRENT_CPU) from test runs pinned to chosen CPUs."""

from __future__ import annotations

import asyncio
import mmap
import os
import struct
from collections.abc import Iterator

import pytest

from corebpf.perf import PerfBuffer, PerfRecord, ReaderError, parse_cpu_list, possible_cpus
from corebpf.sys import calls
from tests.test_ringbuf import (
    GET_SMP_PROCESSOR_ID,
    PERF_EVENT_OUTPUT,
    Asm,
    counter,
    counters,
    fds,
    load,
    maps,
    run,
)

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="BPF maps, programs and perf events need root"
)

BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_F_CURRENT_CPU = 0xFFFFFFFF
CPUS = sorted(os.sched_getaffinity(0))


def perf_map() -> calls.FD:
    return calls.map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, max(possible_cpus()) + 1,
                            name="events")


def sample(seq: int, cpu: int, size: int) -> bytes:
    """What the program sends: u64 seq, u32 cpu, then u32 words 0xa5000000 + i."""
    words = [0xA5000000 + i for i in range((size - 12) // 4)]
    return struct.pack(f"<QI{len(words)}I", seq, cpu, *words)


def output_prog(events: calls.FD, cnt: calls.FD, size: int = 12) -> calls.FD:
    """bpf_perf_event_output(ctx, events, BPF_F_CURRENT_CPU, &sample(seq, cpu), size);
    a failed output bumps counter 1."""
    assert size % 4 == 0 and 12 <= size <= 256
    buf = -8 - (size + 7) // 8 * 8  # 8-byte aligned, below the map key slot at fp-4
    a = Asm().movr(6, 1).seq(cnt.fd, 7, "out")
    a.i(0x7B, 10, 7, buf).call(GET_SMP_PROCESSOR_ID).i(0x63, 10, 0, buf + 8)
    for i in range((size - 12) // 4):
        a.i(0x62, 10, 0, buf + 12 + 4 * i, 0xA5000000 + i - (1 << 32))
    a.movr(1, 6).ld_map(2, events.fd).i(0xB4, 3, imm=-1)  # w3 = BPF_F_CURRENT_CPU
    a.movr(4, 10).i(0x07, 4, imm=buf).mov(5, size).call(PERF_EVENT_OUTPUT)
    a.i(0x15, 0, 0, "out", 0).count(cnt.fd, 1, "out")
    return load(a.label("out").exit(), "perf_out")


def run_on(cpu: int, prog: calls.FD, repeat: int) -> None:
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        run(prog, repeat)
    finally:
        os.sched_setaffinity(0, old)


def unpack(data: bytes) -> tuple[int, int]:
    seq, cpu = struct.unpack_from("<QI", data)
    return seq, cpu


@pytest.fixture
def cnt() -> Iterator[calls.FD]:
    fd = counters()
    yield fd
    fd.close()


def test_cpu_list_parsing() -> None:
    assert parse_cpu_list("0-3,5,7-8\n") == [0, 1, 2, 3, 5, 7, 8]
    assert parse_cpu_list("0") == [0]
    assert possible_cpus()[0] == 0


def test_samples_arrive_per_cpu(cnt: calls.FD) -> None:
    """Runs pinned to each CPU in turn: every sample comes from the ring of the CPU it was
    produced on, carries that CPU's id as the program saw it, and none is lost."""
    events = perf_map()
    prog = output_prog(events, cnt)
    got: dict[int, list[bytes]] = {c: [] for c in CPUS}
    with PerfBuffer(events, page_count=8,
                    on_sample=lambda cpu, data: got[cpu].append(data)) as pb:
        assert set(CPUS) <= set(pb.cpus)
        want: dict[int, list[bytes]] = {c: [] for c in CPUS}
        seq = 0
        for k, cpu in enumerate(CPUS):
            n = 100 + 50 * k
            run_on(cpu, prog, n)
            want[cpu] += [sample(s, cpu, 12) for s in range(seq, seq + n)]
            seq += n
        total = 0
        while total < seq:
            total += pb.poll(1000)
        assert got == want
        assert pb.poll(0) == 0 and sum(pb.lost.values()) == 0 and counter(cnt, 1) == 0


def test_raw_size_padding(cnt: calls.FD) -> None:
    """The kernel pads u32 size + data to 8 bytes and reports the padded size: 12 bytes
    arrive as 12, 16 as 20 (4 zero bytes of padding), 100 as 100."""
    got: list[bytes] = []
    for size, padded in ((12, 12), (16, 20), (100, 100)):
        events = perf_map()
        prog = output_prog(events, cnt, size)
        got.clear()
        with PerfBuffer(events, on_sample=lambda cpu, d: got.append(d)) as pb:
            run_on(CPUS[0], prog, 1)
            assert pb.poll(1000) == 1
        assert len(got[0]) == padded and got[0][:size] == sample(unpack(got[0])[0], CPUS[0],
                                                                 size)
        events.close()


def test_records_wrapping_the_ring(cnt: calls.FD) -> None:
    """100-byte samples make 112-byte records in a one-page ring: 20 rounds of 30 pass
    the end of the ring 16 times, and records cut in two must read back whole."""
    events = perf_map()
    prog = output_prog(events, cnt, 100)
    cpu = CPUS[0]
    got: list[bytes] = []
    with PerfBuffer(events, page_count=1, on_sample=lambda c, d: got.append(d),
                    cpus=[cpu]) as pb:
        for _ in range(20):
            run_on(cpu, prog, 30)
            assert pb.consume() == 30
    assert counter(cnt, 1) == 0
    assert got == [sample(s, cpu, 100) for s in range(600)]
    page = mmap.PAGESIZE
    assert sum((i * 112) % page + 112 > page for i in range(600)) >= 10  # cut records


def test_overflow_reports_lost_samples(cnt: calls.FD) -> None:
    """500 samples into a one-page ring nobody reads: the program sees the failures, the
    reader gets what fit and then one PERF_RECORD_LOST with exactly that many."""
    events = perf_map()
    prog = output_prog(events, cnt, 12)  # 24-byte records
    cpu = CPUS[0]
    samples: list[int] = []
    lost: list[tuple[int, int]] = []
    with PerfBuffer(events, page_count=1, cpus=[cpu],
                    on_sample=lambda c, d: samples.append(unpack(d)[0]),
                    on_lost=lambda c, n: lost.append((c, n))) as pb:
        run_on(cpu, prog, 500)
        failed = counter(cnt, 1)
        assert failed > 300
        assert pb.consume() == 500 - failed
        assert samples == list(range(500 - failed)) and lost == []
        run_on(cpu, prog, 1)  # the kernel reports the loss before the next sample
        assert pb.consume() == 1
        assert lost == [(cpu, failed)] and pb.lost[cpu] == failed
        assert samples[-1] == 500


def test_iterator_and_asyncio(cnt: calls.FD) -> None:
    events = perf_map()
    prog = output_prog(events, cnt, 12)
    cpu = CPUS[-1]
    with PerfBuffer(events, page_count=1, cpus=[cpu]) as pb:
        run_on(cpu, prog, 200)  # overflows: 170 fit
        failed = counter(cnt, 1)
        recs = list(pb.records(timeout=0.05))
        assert [unpack(r.data)[0] for r in recs] == list(range(200 - failed))
        run_on(cpu, prog, 3)

        async def main() -> list[PerfRecord]:
            return [r async for r in pb.aiter(timeout=0.2)]

        recs = asyncio.run(main())
        assert recs[0] == PerfRecord(cpu, lost=failed) and pb.lost[cpu] == failed
        assert [unpack(r.data) for r in recs[1:]] == [(s, cpu) for s in (200, 201, 202)]


def test_close_disables_and_releases_everything(cnt: calls.FD) -> None:
    events = perf_map()
    prog = output_prog(events, cnt)
    fds0, maps0 = fds(), maps()
    pb = PerfBuffer(events, page_count=4)
    assert len(maps()) == len(maps0) + len(pb.cpus)
    run_on(CPUS[0], prog, 5)
    assert pb.poll(1000) == 5 and counter(cnt, 1) == 0
    pb.close()
    pb.close()
    assert fds() == fds0 and maps() == maps0
    run_on(CPUS[0], prog, 5)  # the map slots were cleared: the program's output fails
    assert counter(cnt, 1) == 5
    with pytest.raises(ReaderError):
        pb.poll(0)


def test_bad_arguments(cnt: calls.FD) -> None:
    with pytest.raises(ReaderError, match="not BPF_MAP_TYPE_PERF_EVENT_ARRAY"):
        PerfBuffer(cnt)
    with pytest.raises(ValueError, match="power of two"):
        PerfBuffer(perf_map(), page_count=3)
    small = calls.map_create(BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 1, name="small")
    if len(possible_cpus()) > 1:
        with pytest.raises(ReaderError, match="no slot for CPU 1"):
            PerfBuffer(small)
    fds0 = fds()
    with PerfBuffer(small, cpus=[0]) as pb:
        assert pb.cpus == [0]
    assert fds() == fds0
