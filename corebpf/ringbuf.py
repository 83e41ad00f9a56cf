"""Reading BPF_MAP_TYPE_RINGBUF maps from user space, as libbpf's ring_buffer does.

The kernel lets a reader mmap the map twice: one read-write page holding the consumer
position, then (read-only) the producer position page followed by the data area mapped
twice in a row, so that a record crossing the end of the ring reads as one contiguous
slice. Each record starts with an 8-byte header whose first u32 is the length with two
flag bits (BUSY: reserved but not yet submitted; DISCARD: submitted as discarded); records
are 8-byte aligned. The reader owns the consumer position and writes it only after the
records before it have been handed to the caller, so the kernel never overwrites data that
is still being read.

Memory ordering: positions and headers are read through memoryviews, each read a fresh
load from the shared mapping, and a record's bytes are read only after its header showed
it committed. On x86 (TSO) loads are acquire and stores are release, which is what the
protocol needs; elsewhere the interpreter's own work between the loads stands in for the
barriers libbpf uses (smp_load_acquire / smp_store_release).

Records reach callbacks, iterators and async iterators as ``bytes``, copied out of the
ring before the consumer position moves past them, so they stay valid (zero-copy views
would cost as much to hand out safely in Python as the copy of a typical record does).
Readers are not thread-safe: poll each from one thread.
"""

from __future__ import annotations

import mmap
import os
import select
import struct
from collections import deque
from itertools import starmap
from operator import length_hint

from .errors import Error
from .sys.calls import obj_info

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator, Iterator
    from typing import Protocol, Self, TypeVar

    _R = TypeVar("_R")

    class _HasFd(Protocol):
        @property
        def fd(self) -> object: ...

    MapLike = int | _HasFd
    RecordCallback = Callable[[bytes], object]

BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_MAP_TYPE_RINGBUF = 27

BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
LEN_MASK = DISCARD_BIT - 1
HDR_SZ = 8

_BUSY = BUSY_BIT
_DISCARD = DISCARD_BIT


class ReaderError(Error):
    """A ring or perf buffer that cannot be read: wrong map type, closed, corrupt ring."""


def map_fd(m: MapLike) -> int:
    """The fd of an int, an FD, or a map object with ``.fd`` (an int or an FD)."""
    if isinstance(m, int):
        return m
    fd = getattr(m, "fd", None)
    if fd is None:
        raise TypeError(f"{m!r} is neither an fd nor a map with .fd")
    return fd if isinstance(fd, int) else int(fd)


def map_info(fd: int) -> tuple[int, int, int, int]:
    """(map_type, key_size, value_size, max_entries) from struct bpf_map_info."""
    info = obj_info(fd, 80)
    mtype, _id, key_size, value_size, max_entries = struct.unpack_from("=5I", info, 0)
    return mtype, key_size, value_size, max_entries


def _timeout_s(timeout_ms: int) -> float:
    return timeout_ms / 1000 if timeout_ms >= 0 else -1


def _matching_prefix(got: bytes, want: bytes) -> int:
    """How many leading u32 of ``got`` equal those of ``want`` (the first one does)."""
    lo, hi = 1, len(got) // 4
    while hi - lo > 1:  # got[:4 * lo] matches, got[:4 * hi] does not
        mid = (lo + hi) // 2
        if got[:4 * mid] == want[:4 * mid]:
            lo = mid
        else:
            hi = mid
    return lo


_U32 = struct.Struct("=I")
_RUN_MIN = 8  # records of one length in a row before the run path pays off
_RUN_BACKOFF = 64  # records to take one by one after a short run


class _Ring:
    """One mapped ring buffer: the consumer loop and nothing else."""

    __slots__ = ("_chunk", "_cons", "_cons_mm", "_data_mm", "_fd", "_page", "_prod", "_raw",
                 "_runs", "_words", "callback", "mask", "size")

    def __init__(self, fd: int, callback: RecordCallback | None = None):
        mtype, _k, _v, size = map_info(fd)
        if mtype != BPF_MAP_TYPE_RINGBUF:
            raise ReaderError(f"map fd {fd} has type {mtype}, not BPF_MAP_TYPE_RINGBUF (27)")
        page = self._page = mmap.PAGESIZE
        self.size = size
        self.mask = size - 1
        # hand the consumer position back at least every quarter ring during a long batch,
        # so a producer is never kept waiting on a whole ring's worth of callbacks
        self._chunk = max(size // 4, HDR_SZ)
        self.callback = callback
        self._fd = os.dup(fd)  # ours for epoll: the caller may close the map first
        try:
            self._cons_mm = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            try:
                self._data_mm = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ,
                                          offset=page)
            except BaseException:
                self._cons_mm.close()
                raise
        except BaseException:
            os.close(self._fd)
            raise
        self._cons = memoryview(self._cons_mm)[:8].cast("Q")
        whole = memoryview(self._data_mm)
        self._prod = whole[:8].cast("Q")
        # the producer page then the data area twice, as u32: headers are words[off >> 2]
        self._words = whole.cast("I")
        self._raw = whole
        self._runs: dict[int, Callable[[memoryview], Iterator[tuple[bytes]]]] = {}

    def _run_struct(self, ln: int, step: int) -> Callable[[memoryview], Iterator[tuple[bytes]]]:
        """iter_unpack for records of ``ln`` bytes: skip the header, take ln bytes, skip
        the padding."""
        if len(self._runs) >= 64:  # lengths seen in runs; a bound against odd streams
            self._runs.clear()
        unpack = self._runs[ln] = struct.Struct(f"<8x{ln}s{step - 8 - ln}x").iter_unpack
        return unpack

    def fileno(self) -> int:
        """The reader's own dup of the map fd (what epoll watches)."""
        return self._fd

    @property
    def producer_pos(self) -> int:
        return int(self._prod[0])

    @property
    def consumer_pos(self) -> int:
        return int(self._cons[0])

    def process(self, cb: RecordCallback) -> int:
        """Hand every committed record to ``cb`` as bytes; stop at the first BUSY one.

        ``off`` is an offset into the data mapping (producer page included), and as the
        data area is mapped twice it may run past the end of the ring without masking
        (never past twice its size: at most one ring's worth is unconsumed). Records of
        one length in a row, the usual case, are checked as a run: their headers, a
        strided view, are compared with the expected header in one go (before their
        data is read), then a struct iter_unpack that skips each header copies the
        records out and itertools.starmap makes the calls, with no bytecode per record."""
        cons_v, prod_v, words, mm = self._cons, self._prod, self._words, self._data_mm
        raw, runs = self._raw, self._runs
        mask, chunk, page = self.mask, self._chunk, self._page
        cons = cons_v[0]
        n = 0
        base = off = page + (cons & mask)
        retry = 0  # no run before this offset (the last one was short)
        try:
            while True:
                avail = prod_v[0] - cons
                if avail <= 0:
                    return n
                end = off + (avail if avail <= chunk else chunk)
                while off < end:
                    ln = words[off >> 2]
                    if ln >= _DISCARD:  # a flag is set
                        if ln & _BUSY:
                            return n
                        off += ((ln & LEN_MASK) + 15) & ~7
                        continue
                    step = (ln + 15) & ~7
                    if off >= retry and (k := (end - off) // step) >= _RUN_MIN:
                        q, i = step >> 2, off >> 2
                        got, want = words[i:i + k * q:q].tobytes(), _U32.pack(ln) * k
                        if got != want:
                            k = _matching_prefix(got, want)
                        if k >= _RUN_MIN:
                            unpack = runs.get(ln) or self._run_struct(ln, step)
                            it = unpack(raw[off:off + k * step])
                            try:
                                deque(starmap(cb, it), 0)  # cb(rec) for each, in C
                            except BaseException:
                                # the record that raised is consumed; drop the iterator
                                # now: it holds the mapping (close() would fail)
                                off += (k - length_hint(it)) * step
                                del it
                                raise
                            off += k * step
                            n += k
                            continue
                        retry = off + _RUN_BACKOFF * step
                    start = off + 8
                    off += step
                    cb(mm[start:start + ln])
                    n += 1
                cons += off - base
                cons_v[0] = cons
                base = off = page + (cons & mask)
        finally:
            if off != base:
                cons_v[0] = cons + off - base

    def next_record(self) -> bytes | None:
        """The next committed record as bytes (skipping discarded ones), or None."""
        cons_v, words, page = self._cons, self._words, self._page
        start = cons = cons_v[0]
        try:
            while cons < self._prod[0]:
                off = page + (cons & self.mask)
                ln = words[off >> 2]
                if ln & _BUSY:
                    return None
                size = ln & LEN_MASK
                cons += (size + 15) & ~7
                if not ln & _DISCARD:
                    return self._data_mm[off + 8:off + 8 + size]
            return None
        finally:
            if cons != start:
                cons_v[0] = cons

    def close(self) -> None:
        self._runs.clear()
        for view in (self._cons, self._prod, self._words, self._raw):
            view.release()
        try:
            self._data_mm.close()
            self._cons_mm.close()
        finally:
            os.close(self._fd)


class _Closable:
    """Context-manager and finaliser plumbing shared by the readers."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class RingBuffer(_Closable):
    """A reader for one BPF_MAP_TYPE_RINGBUF map.

    ``map`` is an fd, an FD, or a map object with ``.fd``; the reader keeps its own
    references (the mappings), so the map may be closed first.
    """

    def __init__(self, map: MapLike):
        self._ring: _Ring | None = None
        self._epoll: select.epoll | None = None
        ring = _Ring(map_fd(map))
        try:
            self._epoll = select.epoll()
            self._epoll.register(ring.fileno(), select.EPOLLIN)
        except BaseException:
            ring.close()
            raise
        self._ring = ring

    def _r(self) -> _Ring:
        if self._ring is None:
            raise ReaderError("ring buffer reader is closed")
        return self._ring

    @property
    def size(self) -> int:
        """Bytes in the data area (the map's max_entries)."""
        return self._r().size

    @property
    def producer_pos(self) -> int:
        return self._r().producer_pos

    @property
    def consumer_pos(self) -> int:
        return self._r().consumer_pos

    def available_bytes(self) -> int:
        """Bytes written by producers (committed or not) and not yet consumed."""
        r = self._r()
        return r.producer_pos - r.consumer_pos

    def fileno(self) -> int:
        """The epoll fd: readable when the ring has data (for select/selectors/asyncio)."""
        if self._epoll is None:
            raise ReaderError("ring buffer reader is closed")
        return self._epoll.fileno()

    def consume(self, callback: RecordCallback) -> int:
        """Hand every available record to ``callback`` without waiting; returns how many.

        An exception from ``callback`` propagates; its record counts as consumed."""
        return self._r().process(callback)

    def _wait(self, timeout_s: float) -> bool:
        if self._epoll is None:
            raise ReaderError("ring buffer reader is closed")
        return bool(self._epoll.poll(timeout_s, 1))

    def poll(self, timeout_ms: int, callback: RecordCallback) -> int:
        """Consume what is there; if nothing, wait up to ``timeout_ms`` (-1: forever) for
        the kernel's wakeup and consume again. Returns the number of records."""
        ring = self._r()
        n = ring.process(callback)
        if n or timeout_ms == 0:
            return n
        if self._wait(_timeout_s(timeout_ms)):
            n = ring.process(callback)
        return n

    def records(self, timeout: float | None = None) -> Generator[bytes, None, None]:
        """Yield records as bytes, one at a time; stop once none arrives for ``timeout``
        seconds (None: never). A record is consumed when it is yielded."""
        ring = self._r()
        wait = -1.0 if timeout is None else timeout
        while True:
            rec = ring.next_record()
            if rec is not None:
                yield rec
            elif not self._wait(wait):
                return

    async def aiter(self, timeout: float | None = None) -> AsyncIterator[bytes]:
        """``records()`` for asyncio: waits on the epoll fd with loop.add_reader."""
        async for rec in epoll_aiter(self.fileno(), self._r().next_record, timeout):
            yield rec

    def close(self) -> None:
        """Unmap the ring and close the epoll fd; idempotent."""
        ring, self._ring = self._ring, None
        ep, self._epoll = self._epoll, None
        try:
            if ring is not None:
                ring.close()
        finally:
            if ep is not None:
                ep.close()

    def __enter__(self) -> RingBuffer:
        return self

    def __repr__(self) -> str:
        if self._ring is None:
            return "RingBuffer(closed)"
        return f"RingBuffer(size={self._ring.size}, available={self.available_bytes()})"


class RingBufferPoller(_Closable):
    """Several ring buffers behind one epoll, each with its own callback (libbpf's
    ring_buffer__new + ring_buffer__add)."""

    def __init__(self) -> None:
        self._epoll: select.epoll | None = select.epoll()
        self._rings: dict[int, _Ring] = {}

    def add(self, map: MapLike, callback: RecordCallback) -> None:
        """Read ``map`` too, handing its records to ``callback``."""
        if self._epoll is None:
            raise ReaderError("ring buffer poller is closed")
        ring = _Ring(map_fd(map), callback)
        try:
            self._epoll.register(ring.fileno(), select.EPOLLIN)
        except BaseException:
            ring.close()
            raise
        self._rings[ring.fileno()] = ring

    def __len__(self) -> int:
        return len(self._rings)

    def fileno(self) -> int:
        if self._epoll is None:
            raise ReaderError("ring buffer poller is closed")
        return self._epoll.fileno()

    def consume(self) -> int:
        """Drain every ring without waiting; returns the number of records."""
        if self._epoll is None:
            raise ReaderError("ring buffer poller is closed")
        n = 0
        for ring in self._rings.values():
            n += ring.process(ring.callback)  # type: ignore[arg-type]
        return n

    def poll(self, timeout_ms: int = -1) -> int:
        """Drain what is there; if nothing, wait up to ``timeout_ms`` (-1: forever) and
        drain the rings that became ready. Returns the number of records."""
        n = self.consume()
        if n or timeout_ms == 0:
            return n
        assert self._epoll is not None
        for fd, _ev in self._epoll.poll(_timeout_s(timeout_ms)):
            ring = self._rings[fd]
            n += ring.process(ring.callback)  # type: ignore[arg-type]
        return n

    def close(self) -> None:
        """Unmap every ring and close the epoll fd; idempotent."""
        rings, self._rings = self._rings, {}
        ep, self._epoll = self._epoll, None
        try:
            for ring in rings.values():
                ring.close()
        finally:
            if ep is not None:
                ep.close()

    def __enter__(self) -> RingBufferPoller:
        return self


__all__ = [
    "BUSY_BIT",
    "DISCARD_BIT",
    "HDR_SZ",
    "ReaderError",
    "RingBuffer",
    "RingBufferPoller",
]


async def epoll_aiter(fd: int, next_record: Callable[[], _R | None],
                      timeout: float | None) -> AsyncIterator[_R]:
    """Yield ``next_record()`` results, waiting on ``fd`` with loop.add_reader in between;
    stop once nothing arrives for ``timeout`` seconds (None: never). Shared by the ring
    buffer and perf buffer readers."""
    import asyncio

    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    try:
        while True:
            rec = next_record()
            if rec is not None:
                yield rec
                continue
            ready.clear()
            rec = next_record()  # committed between the two looks
            if rec is not None:
                yield rec
                continue
            try:
                await asyncio.wait_for(ready.wait(), timeout)
            except TimeoutError:
                return
    finally:
        loop.remove_reader(fd)
