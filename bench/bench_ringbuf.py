"""Ring buffer consumer benchmark: corebpf's RingBuffer next to libbpf's ring_buffer (C).

One hand-assembled tc program reserves a 64-byte event, fills it and submits it, and
counts failed reserves (drops) in an array map; BPF_PROG_TEST_RUN with a large repeat
drives it from this process, pinned to one CPU, as fast as the kernel can run it, or
paced to an offered rate. The ring buffer map is pinned in bpffs, and each consumer is a
separate process pinned to another CPU that opens the pinned map: ``bench/ringbuf_consumer.c``
(built here with ``cc -O2 ... -lbpf``) or this script with ``--consume``, whose callback,
like the C one, does nothing but be called (records are counted by poll's return value).

For each consumer: a full ring drained with no producer running (the consumer's own
speed: events per second and CPU nanoseconds per event); one unpaced live run (the
producer's top speed: what gets consumed, what is dropped); and a ladder of paced live
runs up to the highest offered rate with zero drops. A live trial ends when the ring is
drained (consumer position == producer position, watched through a read-only mapping),
so "consumed per second" includes the drain.

The machine's other load matters: a consumer that is kept off its CPU for longer than
the ring lasts at the offered rate drops events, so a zero-drop rate is a property of
the consumer, the ring size and the machine's quietness together.

Run: python bench/bench_ringbuf.py [--size BYTES] [--seconds S] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from corebpf.ringbuf import RingBuffer  # noqa: E402
from corebpf.sys import calls  # noqa: E402

EVENT = 64
BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_RINGBUF, BPF_PROG_TYPE_SCHED_CLS = 2, 27, 3
RINGBUF_RESERVE, RINGBUF_SUBMIT, MAP_LOOKUP_ELEM = 131, 132, 1
LADDER = [0.25, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5, 6, 7, 8, 10, 12, 14, 16, 20,
          24, 32]


def insn(op: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", op, dst | src << 4, off, imm)


def producer(rb_fd: int, drops_fd: int) -> calls.FD:
    """r0 = reserve(rb, 64); fill; submit; on failure drops[0] += 1."""
    fill = b"".join(insn(0x7A, 0, 0, k, k) for k in range(0, EVENT, 8))  # *(u64 *)(r0+k) = k
    ok = fill + insn(0xBF, 1, 0) + insn(0xB7, 2) + insn(0x85, imm=RINGBUF_SUBMIT)
    fail = (insn(0x62, 10, 0, -4, 0) + insn(0xBF, 2, 10) + insn(0x07, 2, imm=-4)
            + insn(0x18, 1, 1, 0, drops_fd) + insn(0) + insn(0x85, imm=MAP_LOOKUP_ELEM)
            + insn(0x15, 0, 0, 2) + insn(0xB7, 1, imm=1) + insn(0xDB, 0, 1, 0, 0))
    code = (insn(0x18, 1, 1, 0, rb_fd) + insn(0) + insn(0xB7, 2, imm=EVENT) + insn(0xB7, 3)
            + insn(0x85, imm=RINGBUF_RESERVE)
            + insn(0x15, 0, 0, len(ok) // 8 + 1) + ok + insn(0x05, off=len(fail) // 8)
            + fail + insn(0xB7, 0) + insn(0x95))
    return calls.prog_load(BPF_PROG_TYPE_SCHED_CLS, code, "GPL", name="bench_rb").fd


def consume_main(path: str, cpu: int, drain: bool) -> int:
    """The corebpf consumer process: mirror of ringbuf_consumer.c."""
    os.sched_setaffinity(0, {cpu})
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    count = 0

    def on_event(rec: bytes) -> None:
        pass

    with calls.obj_get(path) as fd, RingBuffer(fd) as rb:
        if drain:
            t0, c0 = time.perf_counter(), time.process_time()
            while n := rb.consume(on_event):
                count += n
            c1, t1 = time.process_time(), time.perf_counter()
            print(count, f"{t1 - t0:.9f} {c1 - c0:.9f}", flush=True)
            return 0
        print("ready", flush=True)
        while not stop:
            count += rb.poll(100, on_event)
    print(count, flush=True)
    return 0


def build_c(tmp: Path) -> Path:
    exe = tmp / "ringbuf_consumer"
    subprocess.run(["cc", "-O2", "-Wall", "-o", str(exe), str(HERE / "ringbuf_consumer.c"),
                    "-lbpf"], check=True)
    return exe


class Bench:
    def __init__(self, size: int, producer_cpu: int, consumer_cpu: int):
        self.size = size
        self.pcpu, self.ccpu = producer_cpu, consumer_cpu
        self.rb = calls.map_create(BPF_MAP_TYPE_RINGBUF, 0, 0, size, name="bench_rb")
        self.drops = calls.map_create(BPF_MAP_TYPE_ARRAY, 4, 8, 1, name="bench_drops")
        self.prog = producer(self.rb.fd, self.drops.fd)
        self.pin = f"/sys/fs/bpf/corebpf_bench_rb_{os.getpid()}"
        self.producer_alone = 0.0
        calls.obj_pin(self.rb.fd, self.pin)
        page = mmap.PAGESIZE
        self._cons = mmap.mmap(self.rb.fd, page, mmap.MAP_SHARED, mmap.PROT_READ)
        self._prod = mmap.mmap(self.rb.fd, page, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)

    def close(self) -> None:
        self._cons.close()
        self._prod.close()
        os.unlink(self.pin)

    def dropped(self, reset: bool = False) -> int:
        k, v = ctypes.c_uint32(0), ctypes.c_uint64(0)
        calls.map_elem(calls.BPFCommand.MAP_LOOKUP_ELEM, self.drops.fd, k, v)
        if reset:
            zero = ctypes.c_uint64(0)
            calls.map_elem(calls.BPFCommand.MAP_UPDATE_ELEM, self.drops.fd, k, zero)
        return v.value

    def drained(self) -> bool:
        cons = struct.unpack_from("<Q", self._cons, 0)[0]
        return bool(cons == struct.unpack_from("<Q", self._prod, 0)[0])

    def produce(self, events: int, rate: float | None) -> None:
        if rate is None:
            left = events
            while left:
                n = min(left, 1_000_000)
                calls.prog_test_run(self.prog.fd, bytes(64), repeat=n)
                left -= n
            return
        chunk = max(500, int(rate / 1000))  # ~1 ms of events per test run
        t0 = time.perf_counter()
        done = 0
        while done < events:
            n = min(chunk, events - done)
            calls.prog_test_run(self.prog.fd, bytes(64), repeat=n)
            done += n
            delay = t0 + done / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def fill(self) -> int:
        """Fill the empty ring to the brim with no consumer running; returns the count."""
        assert self.drained()
        events = (self.size - 1) // (EVENT + 8)
        self.dropped(reset=True)
        os.sched_setaffinity(0, {self.pcpu})
        t0 = time.perf_counter()
        self.produce(events, None)
        self.producer_alone = events / (time.perf_counter() - t0)
        assert self.dropped() == 0
        return events

    def drain(self, consumer: list[str]) -> tuple[float, float]:
        """(events per second, CPU ns per event) of a consumer emptying a full ring with
        nothing else running."""
        events = self.fill()
        out = subprocess.run([*consumer, self.pin, str(self.ccpu), "drain"], check=True,
                             capture_output=True, text=True).stdout.split()
        if int(out[0]) != events or not self.drained():
            raise RuntimeError(f"{consumer}: drained {out[0]} of {events} records")
        return events / float(out[1]), float(out[2]) / events * 1e9

    def trial(self, consumer: list[str], events: int, rate: float | None) -> dict[str, float]:
        self.dropped(reset=True)
        proc = subprocess.Popen([*consumer, self.pin, str(self.ccpu)], stdout=subprocess.PIPE,
                                text=True)
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"consumer {consumer} did not start")
            os.sched_setaffinity(0, {self.pcpu})
            t0 = time.perf_counter()
            self.produce(events, rate)
            t1 = time.perf_counter()
            deadline = t1 + 30
            while not self.drained() and time.perf_counter() < deadline:
                time.sleep(0.0002)
            t2 = time.perf_counter()
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        dropped = self.dropped()
        seen = int(out.split()[-1])
        if seen != events - dropped:
            raise RuntimeError(f"{consumer}: saw {seen} records, expected {events - dropped}")
        return {"offered": events / (t1 - t0), "consumed": seen / (t2 - t0), "dropped": dropped,
                "events": events}


def fmt(x: float) -> str:
    return f"{x / 1e6:.2f}"


def run(args: argparse.Namespace) -> str:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("needs two CPUs: one for the producer, one for the consumer")
    with tempfile.TemporaryDirectory() as tmp:
        consumers = {
            "libbpf ring_buffer (C, -O2)": [str(build_c(Path(tmp)))],
            "corebpf RingBuffer (Python 3.11)": [sys.executable, str(Path(__file__).resolve()),
                                                 "--consume"],
        }
        bench = Bench(args.size, cpus[0], cpus[1])
        rows = []
        alone = 0.0
        try:
            for name, cmd in consumers.items():
                drains = [bench.drain(cmd) for _ in range(5)]
                drain = max(d[0] for d in drains)
                cpu_ns = min(d[1] for d in drains)
                alone = max(alone, bench.producer_alone)
                log(f"{name}: drains a full ring at {fmt(drain)} M/s, {cpu_ns:.1f} CPU ns per "
                    f"event (producer alone: {fmt(bench.producer_alone)} M/s)")
                best = bench.trial(cmd, args.max_events, None)
                log(f"{name}: unpaced {show(best)}")
                # an unpaced run without drops already is a zero-drop rate
                zero = 0.0 if best["dropped"] else best["consumed"]
                limited = False
                for m in LADDER:
                    rate = m * 1e6
                    if rate <= zero:
                        continue
                    events = max(200_000, int(rate * args.seconds))
                    res = min((bench.trial(cmd, events, rate) for _ in range(args.repeats)),
                              key=lambda r: r["dropped"])
                    log(f"{name}: {m} M/s offered -> {show(res)}")
                    if res["dropped"]:
                        break
                    if res["offered"] < 0.97 * rate:
                        limited = True  # the producer cannot go this fast with this consumer
                        break
                    zero = max(zero, res["consumed"])
                rows.append((name, drain, cpu_ns, best, zero, limited))
        finally:
            bench.close()
    c_drain, c_zero = rows[0][1], rows[0][4]
    lines = [
        f"Ring buffer of {args.size >> 20} MiB, {EVENT}-byte events, producer "
        f"(BPF_PROG_TEST_RUN of a tc program) on CPU {cpus[0]}, consumer process on "
        f"CPU {cpus[1]}; {os.cpu_count()} CPUs, kernel {os.uname().release}. The producer "
        f"alone (empty ring, no consumer) reached {fmt(alone)} M events/s.",
        "",
        "| consumer | drain a full ring (M ev/s) | CPU ns per event | live, unpaced: "
        "offered / consumed (M ev/s) | dropped | live, highest zero-drop rate (M ev/s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, drain, cpu_ns, best, zero, limited in rows:
        lines.append(f"| {name} | {fmt(drain)} ({drain / c_drain:.0%}) | {cpu_ns:.1f} | "
                     f"{fmt(best['offered'])} / {fmt(best['consumed'])} | "
                     f"{int(best['dropped']):,} of {int(best['events']):,} | "
                     f"{fmt(zero)} ({zero / c_zero:.0%}){' *' if limited else ''} |")
    lines += ["", "\\* the producer could not reach the next rate of the ladder while this "
              "consumer was reading: the limit is the producer's, not the consumer's."]
    return "\n".join(lines) + "\n"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def show(res: dict[str, float]) -> str:
    return (f"offered {fmt(res['offered'])} M/s, consumed {fmt(res['consumed'])} M/s, "
            f"dropped {int(res['dropped']):,} of {int(res['events']):,}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=16 << 20,
                    help="ring buffer bytes (what absorbs the consumer's scheduling hiccups)")
    ap.add_argument("--seconds", type=float, default=1.5, help="length of each paced trial")
    ap.add_argument("--max-events", type=int, default=20_000_000,
                    help="events in each unpaced trial")
    ap.add_argument("--repeats", type=int, default=2,
                    help="paced trials per rate (the best counts: other load on the machine "
                    "can cause drops)")
    ap.add_argument("--markdown", help="also write the table into this file")
    ap.add_argument("--consume", nargs="+", metavar="PINNED_MAP CPU [drain]",
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.consume:
        return consume_main(args.consume[0], int(args.consume[1]), args.consume[2:] == ["drain"])
    if os.geteuid() != 0:
        raise SystemExit("needs root (BPF maps, programs, bpffs)")
    table = run(args)
    print(table)
    if args.markdown:
        from bench.bench_btf import _update_markdown

        _update_markdown(Path(args.markdown), "ringbuf", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
