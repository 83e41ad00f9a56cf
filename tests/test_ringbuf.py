"""Ring buffer reader against the real kernel: hand-assembled tc programs produce the
records (BPF_PROG_TEST_RUN makes them run on demand), the reader must see exactly those."""

from __future__ import annotations

import asyncio
import ctypes
import mmap
import os
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from corebpf.ringbuf import BUSY_BIT, ReaderError, RingBuffer, RingBufferPoller
from corebpf.sys import calls

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="BPF maps, programs and perf events need root"
)

BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_RINGBUF = 27
BPF_PROG_TYPE_SCHED_CLS = 3  # test runs of XDP programs pay ~16 ms each when repeat > 1
TC_ACT_OK = 0
PKT = bytes(64)  # test runs want at least an Ethernet header

# helper ids
MAP_LOOKUP_ELEM, GET_SMP_PROCESSOR_ID, PERF_EVENT_OUTPUT = 1, 8, 25
RINGBUF_OUTPUT, RINGBUF_RESERVE, RINGBUF_SUBMIT, RINGBUF_DISCARD = 130, 131, 132, 133
LOOP = 181


# -- a tiny assembler ---------------------------------------------------------------------

class Asm:
    """eBPF instructions with named jump targets; ``code()`` resolves the offsets."""

    def __init__(self) -> None:
        self.insns: list[list[int | str]] = []
        self.labels: dict[str, int] = {}

    def i(self, op: int, dst: int = 0, src: int = 0, off: int | str = 0,
          imm: int | str = 0) -> Asm:
        self.insns.append([op, dst, src, off, imm])
        return self

    def label(self, name: str) -> Asm:
        self.labels[name] = len(self.insns)
        return self

    def ld_map(self, dst: int, fd: int) -> Asm:
        return self.i(0x18, dst, 1, 0, fd).i(0)  # ld_imm64, src BPF_PSEUDO_MAP_FD

    def ld_func(self, dst: int, label: str) -> Asm:
        return self.i(0x18, dst, 4, 0, label).i(0)  # src BPF_PSEUDO_FUNC

    def mov(self, dst: int, imm: int) -> Asm:
        return self.i(0xB7, dst, imm=imm)

    def movr(self, dst: int, src: int) -> Asm:
        return self.i(0xBF, dst, src)

    def call(self, helper: int) -> Asm:
        return self.i(0x85, imm=helper)

    def exit(self, ret: int = TC_ACT_OK) -> Asm:
        return self.mov(0, ret).i(0x95)

    def lookup(self, map_fd: int, key: int) -> Asm:
        """r0 = &map[key] (NULL-checked by the caller); clobbers r1-r5."""
        return (self.i(0x62, 10, 0, -4, key).movr(2, 10).i(0x07, 2, imm=-4)
                .ld_map(1, map_fd).call(MAP_LOOKUP_ELEM))

    def count(self, map_fd: int, key: int, done: str) -> Asm:
        """Atomically add 1 to u64 map[key], then jump to ``done``."""
        return (self.lookup(map_fd, key).i(0x15, 0, 0, done, 0).mov(1, 1)
                .i(0xDB, 0, 1, 0, 0).i(0x05, off=done))

    def seq(self, map_fd: int, dst: int, fail: str) -> Asm:
        """dst = map[0]++ (a u64 sequence number shared by every run and CPU)."""
        return (self.lookup(map_fd, 0).i(0x15, 0, 0, fail, 0).mov(dst, 1)
                .i(0xDB, 0, dst, 0, 0x01))  # atomic fetch-add

    def code(self) -> bytes:
        out = bytearray()
        for idx, (op, dst, src, off, imm) in enumerate(self.insns):
            if isinstance(off, str):
                off = self.labels[off] - idx - 1
            if isinstance(imm, str):
                imm = self.labels[imm] - idx - 1
            out += struct.pack("<BBhi", op, int(dst) | int(src) << 4, off, imm)
        return bytes(out)


def load(asm: Asm, name: str) -> calls.FD:
    return calls.prog_load(BPF_PROG_TYPE_SCHED_CLS, asm.code(), "GPL", name=name).fd


def run(prog: calls.FD, repeat: int = 1) -> int:
    return calls.prog_test_run(prog.fd, PKT, repeat=repeat)[0]


def counters(n: int = 2) -> calls.FD:
    """An array of u64: [0] sequence numbers, [1] failures."""
    return calls.map_create(BPF_MAP_TYPE_ARRAY, 4, 8, n, name="counters")


def counter(fd: calls.FD, key: int) -> int:
    k, v = ctypes.c_uint32(key), ctypes.c_uint64()
    calls.map_elem(calls.BPFCommand.MAP_LOOKUP_ELEM, fd.fd, k, v)
    return v.value


def ringbuf_map(size: int) -> calls.FD:
    return calls.map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, size, name="rb")


def pattern(seq: int, size: int) -> bytes:
    """What the reserve program writes: the u64 sequence number, then bytes i ^ 0x5a."""
    return struct.pack("<Q", seq) + bytes(i ^ 0x5A for i in range(8, size))


def reserve_prog(rb: calls.FD, cnt: calls.FD, size: int, discard_every: int = 0) -> calls.FD:
    """Reserve ``size`` bytes, fill them with pattern(seq), submit (or discard when
    seq % discard_every == 0); a failed reserve bumps counter 1."""
    a = Asm().seq(cnt.fd, 7, "out")
    a.ld_map(1, rb.fd).mov(2, size).mov(3, 0).call(RINGBUF_RESERVE)
    a.i(0x55, 0, 0, "got", 0).count(cnt.fd, 1, "out")
    a.label("got").i(0x7B, 0, 7, 0)  # *(u64 *)(r0 + 0) = seq
    for i in range(8, size):
        a.i(0x72, 0, 0, i, i ^ 0x5A)  # *(u8 *)(r0 + i) = i ^ 0x5a
    a.movr(1, 0).mov(2, 0)
    if discard_every:
        a.movr(3, 7).i(0x97, 3, imm=discard_every).i(0x55, 3, 0, "keep", 0)
        a.call(RINGBUF_DISCARD).i(0x05, off="out")
    a.label("keep").call(RINGBUF_SUBMIT)
    return load(a.label("out").exit(), "rb_reserve")


def output_prog(rb: calls.FD, cnt: calls.FD) -> calls.FD:
    """bpf_ringbuf_output of 8 + (seq & 31) bytes (8..39, mostly not a multiple of 8)
    copied from a stack buffer holding pattern(seq, 40)."""
    a = Asm().seq(cnt.fd, 7, "out")
    a.i(0x7B, 10, 7, -40)
    for i in range(8, 40):
        a.i(0x72, 10, 0, -40 + i, i ^ 0x5A)
    a.movr(3, 7).i(0x57, 3, imm=31).i(0x07, 3, imm=8)  # r3 = (seq & 31) + 8
    a.ld_map(1, rb.fd).movr(2, 10).i(0x07, 2, imm=-40).mov(4, 0).call(RINGBUF_OUTPUT)
    a.i(0x15, 0, 0, "out", 0).count(cnt.fd, 1, "out")
    return load(a.label("out").exit(), "rb_output")


def seqs(records: list[bytes]) -> list[int]:
    return [struct.unpack_from("<Q", r)[0] for r in records]


def fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def maps() -> list[str]:
    with open("/proc/self/maps") as f:
        return [line for line in f if "anon_inode:bpf-map" in line or "perf_event" in line]


@pytest.fixture
def cnt() -> Iterator[calls.FD]:
    fd = counters()
    yield fd
    fd.close()


# -- tests --------------------------------------------------------------------------------

def test_ten_thousand_records_exactly(cnt: calls.FD) -> None:
    rbm = ringbuf_map(1 << 19)  # 10,000 x (8 + 24) bytes = 320 KB fit
    prog = reserve_prog(rbm, cnt, 24)
    with RingBuffer(rbm) as rb:
        assert rb.size == 1 << 19
        assert run(prog, repeat=10_000) == TC_ACT_OK
        got: list[bytes] = []
        n = 0
        while len(got) < 10_000:
            n += rb.poll(1000, got.append)
        assert n == 10_000 and counter(cnt, 0) == 10_000 and counter(cnt, 1) == 0
        assert got == [pattern(i, 24) for i in range(10_000)]
        assert rb.consumer_pos == rb.producer_pos == 10_000 * 32
        assert rb.poll(0, got.append) == 0


def test_concurrent_producer_no_loss(cnt: calls.FD) -> None:
    """A producer thread (the test run releases the GIL) while the reader polls: 200,000
    records through a 64 KiB ring, every sequence number once and in order."""
    rbm = ringbuf_map(1 << 16)
    prog = reserve_prog(rbm, cnt, 16)
    got: list[int] = []
    with RingBuffer(rbm) as rb:
        def produce() -> None:
            for _ in range(200):  # small bursts: the ring holds ~2,700 records
                run(prog, repeat=1000)
                while rb.available_bytes() > rb.size // 2:
                    time.sleep(0.0005)

        t = threading.Thread(target=produce)
        t.start()
        while t.is_alive() or rb.available_bytes():
            rb.poll(100, lambda r: got.append(struct.unpack_from("<Q", r)[0]))
        t.join()
    assert counter(cnt, 1) == 0
    assert got == list(range(200_000))


def test_discarded_records_are_skipped(cnt: calls.FD) -> None:
    rbm = ringbuf_map(1 << 14)
    prog = reserve_prog(rbm, cnt, 16, discard_every=3)
    with RingBuffer(rbm) as rb:
        run(prog, repeat=300)
        got: list[bytes] = []
        assert rb.consume(got.append) == 200
        assert got == [pattern(i, 16) for i in range(300) if i % 3]
        # discarded space is consumed too
        assert rb.consumer_pos == rb.producer_pos == 300 * 24


def test_odd_lengths_alignment_and_wraparound(cnt: calls.FD) -> None:
    """bpf_ringbuf_output of 8..39 bytes into a one-page ring, 40 rounds: positions pass
    the end of the ring ~17 times and records straddle it; each must read back whole."""
    size = mmap.PAGESIZE
    rbm = ringbuf_map(size)
    prog = output_prog(rbm, cnt)
    got: list[bytes] = []
    with RingBuffer(rbm) as rb:
        for _ in range(40):
            run(prog, repeat=50)
            assert rb.consume(got.append) == 50
        end = rb.consumer_pos
    assert counter(cnt, 1) == 0
    want = [pattern(i, 40)[:8 + (i & 31)] for i in range(2000)]
    assert got == want
    pos, straddling = 0, 0
    for rec in want:
        step = (8 + len(rec) + 7) & ~7
        straddling += pos % size + step > size
        pos += step
    assert pos == end and pos > 10 * size and straddling >= 5


def test_full_ring_drops_and_recovers(cnt: calls.FD) -> None:
    """A 4 KiB ring takes 127 records of 8 + 24 bytes (the kernel keeps it from being
    completely full); the other 73 reserves fail and are counted by the program."""
    rbm = ringbuf_map(4096)
    prog = reserve_prog(rbm, cnt, 24)
    with RingBuffer(rbm) as rb:
        run(prog, repeat=200)
        assert counter(cnt, 1) == 73
        got: list[bytes] = []
        assert rb.consume(got.append) == 127
        assert seqs(got) == list(range(127))
        run(prog, repeat=10)  # room again
        got.clear()
        assert rb.consume(got.append) == 10
        assert seqs(got) == list(range(200, 210)) and counter(cnt, 1) == 73


def _func_btf() -> calls.FD:
    """BTF with two static functions, "prog" and "cb", returning int: the verifier wants
    func_info for a program whose subprogram is a bpf_loop callback."""
    strings = b"\0int\0prog\0cb\0"
    types = struct.pack("<IIII", 1, 1 << 24, 4, 0x01000020)  # [1] int (signed, 32 bits)
    types += struct.pack("<III", 0, 13 << 24, 1)  # [2] int (void)
    types += struct.pack("<III", 5, 12 << 24, 2)  # [3] static int prog(void)
    types += struct.pack("<III", 10, 12 << 24, 2)  # [4] static int cb(void)
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return calls.btf_load(hdr + types + strings)


def _slow_prog(rb: calls.FD, cnt: calls.FD, loops: int) -> calls.FD:
    """Reserve, spin ``loops`` bpf_loop iterations, then submit: a record that stays BUSY
    (reserved, uncommitted) for milliseconds."""
    a = Asm().seq(cnt.fd, 7, "out")
    a.ld_map(1, rb.fd).mov(2, 16).mov(3, 0).call(RINGBUF_RESERVE)
    a.i(0x15, 0, 0, "out", 0).movr(8, 0).i(0x7B, 8, 7, 0).i(0x7A, 8, 0, 8, 0)
    a.mov(1, loops).ld_func(2, "cb").mov(3, 0).mov(4, 0).call(LOOP)
    a.movr(1, 8).mov(2, 0).call(RINGBUF_SUBMIT)
    a.label("out").exit()
    a.label("cb").exit(0)
    with _func_btf() as btf:
        return calls.prog_load(BPF_PROG_TYPE_SCHED_CLS, a.code(), "GPL", name="rb_slow",
                               prog_btf_fd=btf.fd, func_info_rec_size=8,
                               func_info=struct.pack("<IIII", 0, 3, a.labels["cb"], 4)).fd


def test_busy_record_blocks_later_ones(cnt: calls.FD) -> None:
    """20 committed records, then one reserved on CPU 0 and not yet submitted, then one
    committed from CPU 1: the reader takes the 20 and stops at the BUSY header, though a
    record behind it is ready; once it is submitted both arrive, in ring order."""
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two CPUs to hold a reservation open while another commits")
    rbm = ringbuf_map(1 << 14)
    slow = _slow_prog(rbm, cnt, 1 << 23)
    fast = reserve_prog(rbm, cnt, 16)
    cpus = sorted(os.sched_getaffinity(0))
    with RingBuffer(rbm) as rb:
        hdr = mmap.mmap(rbm.fd, mmap.PAGESIZE + rb.size, mmap.MAP_SHARED, mmap.PROT_READ,
                        offset=mmap.PAGESIZE)

        def busy() -> bool:
            return bool(struct.unpack_from("<I", hdr, mmap.PAGESIZE + 20 * 24)[0] & BUSY_BIT)

        def slow_run() -> None:
            os.sched_setaffinity(0, {cpus[0]})
            run(slow)

        run(fast, 20)
        t = threading.Thread(target=slow_run)
        old = os.sched_getaffinity(0)
        got: list[bytes] = []
        try:
            os.sched_setaffinity(0, {cpus[1]})  # off the CPU the slow run will hold
            t.start()
            deadline = time.monotonic() + 5
            while rb.available_bytes() == 20 * 24 and time.monotonic() < deadline:
                pass
            run(fast)  # lands behind the busy one
            assert busy(), "the reservation was submitted before the test could look"
            assert rb.consume(got.append) == 20
            assert rb.consumer_pos == 20 * 24 and rb.available_bytes() == 48
            assert busy(), "the window closed during the check; loop longer"
        finally:
            t.join()
            os.sched_setaffinity(0, old)
        assert rb.consume(got.append) == 2
        assert got == [pattern(i, 16) for i in range(20)] + [
            pattern(20, 16)[:8] + bytes(8), pattern(21, 16)]
        hdr.close()


def test_callback_exception_consumes_its_record(cnt: calls.FD) -> None:
    rbm = ringbuf_map(1 << 14)
    prog = reserve_prog(rbm, cnt, 16)
    seen: list[bytes] = []

    def cb(rec: bytes) -> None:
        seen.append(rec)
        if len(seen) == 3:
            raise KeyError("stop")

    with RingBuffer(rbm) as rb:
        for repeat in (5, 40):  # one by one, then as a run of equal-length records
            run(prog, repeat=repeat)
            seen.clear()
            start = rb.consumer_pos
            with pytest.raises(KeyError):
                rb.consume(cb)
            assert len(seen) == 3 and rb.consumer_pos == start + 3 * 24
            got: list[bytes] = []
            assert rb.consume(got.append) == repeat - 3
            base = 0 if repeat == 5 else 5
            assert seen + got == [pattern(i, 16) for i in range(base, base + repeat)]
            assert all(type(r) is bytes for r in got)


def test_mixed_lengths_and_discards_around_runs(cnt: calls.FD) -> None:
    """Runs of equal-length records interleaved with other lengths and discards: what
    the run path checks in one go must match the one-by-one path exactly."""
    rbm = ringbuf_map(1 << 16)
    fixed, odd = reserve_prog(rbm, cnt, 16, discard_every=7), output_prog(rbm, cnt)
    got: list[bytes] = []
    want: list[bytes] = []
    with RingBuffer(rbm) as rb:
        seq = 0
        for rnd in range(30):
            for prog, n in ((fixed, 3 + rnd * 5), (odd, 1 + rnd % 4), (fixed, 20)):
                run(prog, repeat=n)
                for s in range(seq, seq + n):
                    if prog is fixed and s % 7:
                        want.append(pattern(s, 16))
                    elif prog is odd:
                        want.append(pattern(s, 40)[:8 + (s & 31)])
                seq += n
            rb.consume(got.append)
    assert got == want and counter(cnt, 1) == 0


def test_poll_waits_for_the_wakeup(cnt: calls.FD) -> None:
    rbm = ringbuf_map(1 << 14)
    prog = reserve_prog(rbm, cnt, 16)
    with RingBuffer(rbm) as rb:
        t0 = time.monotonic()
        assert rb.poll(50, lambda r: None) == 0
        assert time.monotonic() - t0 >= 0.045
        timer = threading.Timer(0.1, run, (prog, 3))
        t0 = time.monotonic()
        timer.start()
        got: list[bytes] = []
        n = rb.poll(5000, got.append)
        waited = time.monotonic() - t0
        timer.join()
        assert 0.09 <= waited < 2
        n += rb.poll(0, got.append)
        assert n == 3 and seqs(got) == [0, 1, 2]


def test_iterator(cnt: calls.FD) -> None:
    rbm = ringbuf_map(1 << 14)
    prog = reserve_prog(rbm, cnt, 16, discard_every=2)
    with RingBuffer(rbm) as rb:
        run(prog, repeat=20)
        it = rb.records(timeout=0.05)
        first = [next(it) for _ in range(3)]
        it.close()  # what was not yet yielded stays in the ring
        assert seqs(first) == [1, 3, 5]
        t0 = time.monotonic()
        rest = list(rb.records(timeout=0.05))
        assert seqs(rest) == [7, 9, 11, 13, 15, 17, 19]
        assert 0.04 < time.monotonic() - t0 < 1


def test_asyncio(cnt: calls.FD) -> None:
    rbm = ringbuf_map(1 << 16)
    prog = reserve_prog(rbm, cnt, 16)

    async def main(rb: RingBuffer) -> list[int]:
        loop = asyncio.get_running_loop()
        producer = loop.run_in_executor(None, lambda: [run(prog, 100) for _ in range(10)])
        got = [struct.unpack_from("<Q", rec)[0] async for rec in rb.aiter(timeout=0.5)]
        await producer
        return got

    with RingBuffer(rbm) as rb:
        assert asyncio.run(main(rb)) == list(range(1000))


def test_poller_several_rings(cnt: calls.FD) -> None:
    rb1, rb2 = ringbuf_map(1 << 14), ringbuf_map(1 << 14)
    cnt2 = counters()
    p1, p2 = reserve_prog(rb1, cnt, 16), reserve_prog(rb2, cnt2, 24)
    a: list[bytes] = []
    b: list[bytes] = []
    with RingBufferPoller() as poller:
        poller.add(rb1, a.append)
        poller.add(rb2.fd, b.append)
        assert len(poller) == 2 and poller.poll(10) == 0
        run(p1, 5)
        run(p2, 7)
        n = 0
        while n < 12:
            n += poller.poll(1000)
        assert a == [pattern(i, 16) for i in range(5)]
        assert b == [pattern(i, 24) for i in range(7)]
        run(p2, 1)
        assert poller.consume() == 1 and len(b) == 8
    cnt2.close()


def test_close_leaves_no_fd_or_mapping(cnt: calls.FD) -> None:
    rbm = ringbuf_map(1 << 14)
    prog = reserve_prog(rbm, cnt, 16)
    fds0, maps0 = fds(), maps()
    rb = RingBuffer(rbm)
    poller = RingBufferPoller()
    poller.add(rbm, lambda r: None)
    assert len(maps()) == len(maps0) + 4 and len(fds()) > len(fds0)
    run(prog, 3)
    assert rb.poll(100, lambda r: None) == 3
    rb.close()
    poller.close()
    rb.close()  # idempotent
    assert fds() == fds0 and maps() == maps0
    with pytest.raises(ReaderError):
        rb.poll(0, lambda r: None)


def test_map_handle_may_close_first(cnt: calls.FD) -> None:
    rbm = ringbuf_map(1 << 14)
    prog = reserve_prog(rbm, cnt, 16)
    with RingBuffer(rbm) as rb:
        rbm.close()
        run(prog, 2)  # the program holds the map; the reader holds its own references
        assert rb.poll(1000, lambda r: None) == 2


def test_wrong_map_type(cnt: calls.FD) -> None:
    with pytest.raises(ReaderError, match="not BPF_MAP_TYPE_RINGBUF"):
        RingBuffer(cnt)
    with pytest.raises(TypeError):
        RingBuffer("nope")  # type: ignore[arg-type]
