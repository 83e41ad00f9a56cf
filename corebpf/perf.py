"""Reading BPF_MAP_TYPE_PERF_EVENT_ARRAY maps: one perf ring per CPU, as libbpf's
perf_buffer does.

For each CPU a PERF_COUNT_SW_BPF_OUTPUT software event is opened and mmapped (a metadata
page, then 2^n data pages), and its fd is stored in the map at the CPU's index, which is
where bpf_perf_event_output(..., BPF_F_CURRENT_CPU, ...) writes. The reader owns
``data_tail`` and writes it only after the records before it have been handed over.
Records are PERF_RECORD_SAMPLE (a u32 size then the raw bytes; the kernel pads the raw
part so that the record stays 8-byte aligned, and the padding is part of the sample) or
PERF_RECORD_LOST (how many samples the kernel dropped because the ring was full). Records
may wrap around the end of the ring; those are copied out in two pieces.

Samples reach callbacks and iterators as ``bytes``. Readers are not thread-safe.
"""

from __future__ import annotations

import mmap
import os
import select
import struct

from .ringbuf import (
    BPF_MAP_TYPE_PERF_EVENT_ARRAY,
    ReaderError,
    _Closable,
    epoll_aiter,
    map_fd,
    map_info,
)
from .sys.calls import BPFCommand, map_elem
from .sys.fs import cpu_ids, parse_cpu_list
from .sys.perf_event import (
    ATTR_WATERMARK,
    MMAP_DATA_HEAD,
    MMAP_DATA_OFFSET,
    MMAP_DATA_SIZE,
    PERF_COUNT_SW_BPF_OUTPUT,
    PERF_EVENT_IOC_DISABLE,
    PERF_EVENT_IOC_ENABLE,
    PERF_RECORD_LOST,
    PERF_RECORD_SAMPLE,
    PERF_SAMPLE_RAW,
    PERF_TYPE_SOFTWARE,
    ioctl,
    perf_event_attr,
    perf_event_open,
)

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Generator

    from .ringbuf import MapLike
    from .sys.calls import FD

    SampleCallback = Callable[[int, bytes], object]
    LostCallback = Callable[[int, int], object]

_HEAD = MMAP_DATA_HEAD // 8
_TAIL = _HEAD + 1
_HDR = struct.Struct("=IHH")
_U32 = struct.Struct("=I")
_U64 = struct.Struct("=Q")


def possible_cpus() -> list[int]:
    """/sys/devices/system/cpu/possible: the indexes a BPF program's CPU can take."""
    return cpu_ids("possible")


def online_cpus() -> list[int]:
    return cpu_ids("online")


class PerfRecord:
    """One record from the iterator forms: a sample (``data``) or a loss (``lost`` > 0)."""

    __slots__ = ("cpu", "data", "lost")

    def __init__(self, cpu: int, data: bytes = b"", lost: int = 0):
        self.cpu = cpu
        self.data = data
        self.lost = lost

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PerfRecord):
            return NotImplemented
        return (self.cpu, self.data, self.lost) == (other.cpu, other.data, other.lost)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.lost:
            return f"PerfRecord(cpu={self.cpu}, lost={self.lost})"
        return f"PerfRecord(cpu={self.cpu}, data={self.data!r})"


class _PerfRing:
    """One CPU's event and its mapped ring."""

    __slots__ = ("cpu", "data", "event", "meta", "mm", "offset", "size")

    def __init__(self, cpu: int, page_count: int, wakeup_events: int, watermark: int):
        attr = perf_event_attr(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT, sample_period=1,
                               sample_type=PERF_SAMPLE_RAW,
                               flags=ATTR_WATERMARK if watermark else 0,
                               wakeup_events=wakeup_events, wakeup_watermark=watermark)
        self.cpu = cpu
        self.event: FD = perf_event_open(attr, pid=-1, cpu=cpu)
        page = mmap.PAGESIZE
        try:
            self.mm = mmap.mmap(self.event.fd, (1 + page_count) * page, mmap.MAP_SHARED,
                                mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            self.event.close()
            raise
        self.meta = memoryview(self.mm)[:page].cast("Q")
        # data_offset/data_size are 0 on kernels older than 4.1: data follows the first page
        offset = self.offset = self.meta[MMAP_DATA_OFFSET // 8] or page
        self.size = self.meta[MMAP_DATA_SIZE // 8] or page_count * page
        self.data = memoryview(self.mm)[offset:offset + self.size]

    def _copy(self, off: int, length: int) -> bytes:
        """``length`` bytes at ring offset ``off``, joined across the end if they wrap."""
        end = off + length
        if end <= self.size:
            return self.data[off:end].tobytes()
        return self.data[off:].tobytes() + self.data[:end - self.size].tobytes()

    def _record(self, tail: int) -> tuple[int, int, bytes]:
        """(type, size, body after the 8-byte header) of the record at ``tail``."""
        off = tail & (self.size - 1)
        if off + 8 <= self.size:
            rtype, _misc, rsize = _HDR.unpack_from(self.data, off)
        else:
            rtype, _misc, rsize = _HDR.unpack(self._copy(off, 8))
        if rsize < 8:
            raise ReaderError(f"cpu {self.cpu}: corrupt perf record of {rsize} bytes at "
                              f"position {tail}")
        return rtype, rsize, self._copy((off + 8) & (self.size - 1), rsize - 8)

    def process(self, on_sample: SampleCallback | None, on_lost: LostCallback) -> int:
        """Hand every record to the callbacks; returns the number of samples."""
        meta, cpu, data, mm = self.meta, self.cpu, self.data, self.mm
        size, base = self.size, self.offset
        mask = size - 1
        hdr, u32 = _HDR.unpack_from, _U32.unpack_from
        tail = meta[_TAIL]
        start = tail
        n = 0
        try:
            while True:
                head = meta[_HEAD]
                if tail >= head:
                    return n
                while tail < head:
                    off = tail & mask
                    if off + 16 <= size:  # header and raw size in one piece: the usual case
                        rtype, _misc, rsize = hdr(data, off)
                        if rtype == PERF_RECORD_SAMPLE and 16 <= rsize <= size - off:
                            tail += rsize
                            n += 1
                            if on_sample is not None:
                                at = base + off + 12
                                on_sample(cpu, mm[at:at + u32(data, off + 8)[0]])
                            continue
                    rtype, rsize, body = self._record(tail)
                    tail += rsize
                    if rtype == PERF_RECORD_SAMPLE:
                        n += 1
                        if on_sample is not None:
                            on_sample(cpu, body[4:4 + _U32.unpack_from(body, 0)[0]])
                    elif rtype == PERF_RECORD_LOST:
                        on_lost(cpu, _U64.unpack_from(body, 8)[0])
                meta[_TAIL] = start = tail
        finally:
            if tail != start:
                meta[_TAIL] = tail

    def next_record(self) -> PerfRecord | None:
        """The next sample or loss record, or None; other record types are skipped."""
        meta = self.meta
        tail = start = meta[_TAIL]
        try:
            while tail < meta[_HEAD]:
                rtype, rsize, body = self._record(tail)
                tail += rsize
                if rtype == PERF_RECORD_SAMPLE:
                    raw = _U32.unpack_from(body, 0)[0]
                    return PerfRecord(self.cpu, body[4:4 + raw])
                if rtype == PERF_RECORD_LOST:
                    return PerfRecord(self.cpu, lost=_U64.unpack_from(body, 8)[0])
            return None
        finally:
            if tail != start:
                meta[_TAIL] = tail

    def close(self) -> None:
        try:
            ioctl(self.event.fd, PERF_EVENT_IOC_DISABLE, 0)
        except OSError:
            pass
        try:
            self.meta.release()
            self.data.release()
            self.mm.close()
        finally:
            self.event.close()


class PerfBuffer(_Closable):
    """A reader for a BPF_MAP_TYPE_PERF_EVENT_ARRAY map, one ring of ``page_count``
    (a power of two) data pages per online CPU.

    ``on_sample(cpu, data)`` gets each sample; ``on_lost(cpu, count)`` each loss report,
    whose counts also add up in ``lost``. By default every sample wakes the reader
    (``wakeup_events=1``); ``watermark`` (bytes) wakes it only once that much is pending,
    which is cheaper at high rates but leaves a tail for ``consume()`` to pick up.
    ``cpus`` restricts the reader to some CPUs.
    """

    def __init__(self, map: MapLike, page_count: int = 8,
                 on_sample: SampleCallback | None = None, on_lost: LostCallback | None = None,
                 *, wakeup_events: int = 1, watermark: int = 0,
                 cpus: list[int] | None = None):
        self.on_sample = on_sample
        self.on_lost = on_lost
        self.lost: dict[int, int] = {}
        self._rings: dict[int, _PerfRing] = {}
        self._epoll: select.epoll | None = None
        self._map_fd = -1
        if page_count <= 0 or page_count & (page_count - 1):
            raise ValueError(f"page_count must be a power of two, not {page_count}")
        fd = map_fd(map)
        mtype, _k, _v, max_entries = map_info(fd)
        if mtype != BPF_MAP_TYPE_PERF_EVENT_ARRAY:
            raise ReaderError(f"map fd {fd} has type {mtype}, "
                              "not BPF_MAP_TYPE_PERF_EVENT_ARRAY (4)")
        if cpus is None:
            online = set(online_cpus())
            cpus = [c for c in possible_cpus() if c in online]
        bad = [c for c in cpus if c >= max_entries]
        if bad:
            raise ReaderError(f"perf event array of {max_entries} entries has no slot for "
                              f"CPU {bad[0]}")
        self._map_fd = os.dup(fd)  # ours: the entries are cleared through it on close
        try:
            self._epoll = select.epoll()
            for cpu in cpus:
                ring = _PerfRing(cpu, page_count, wakeup_events, watermark)
                self._rings[ring.event.fd] = ring
                self.lost[cpu] = 0
                key, val = _U32.pack(cpu), _U32.pack(ring.event.fd)
                map_elem(BPFCommand.MAP_UPDATE_ELEM, self._map_fd, _cbuf(key), _cbuf(val))
                ioctl(ring.event.fd, PERF_EVENT_IOC_ENABLE, 0)
                self._epoll.register(ring.event.fd, select.EPOLLIN)
        except BaseException:
            self.close()
            raise

    @property
    def cpus(self) -> list[int]:
        return [r.cpu for r in self._rings.values()]

    def _count_lost(self, cpu: int, count: int) -> None:
        self.lost[cpu] += count
        if self.on_lost is not None:
            self.on_lost(cpu, count)

    def _ep(self) -> select.epoll:
        if self._epoll is None:
            raise ReaderError("perf buffer reader is closed")
        return self._epoll

    def fileno(self) -> int:
        """The epoll fd: readable when some CPU's ring woke the reader."""
        return self._ep().fileno()

    def consume(self) -> int:
        """Drain every CPU's ring without waiting; returns the number of samples."""
        self._ep()
        n = 0
        for ring in self._rings.values():
            n += ring.process(self.on_sample, self._count_lost)
        return n

    def poll(self, timeout_ms: int = -1) -> int:
        """Wait up to ``timeout_ms`` (-1: forever) for a wakeup, then drain the rings that
        woke; returns the number of samples."""
        ep = self._ep()
        n = 0
        for fd, _ev in ep.poll(timeout_ms / 1000 if timeout_ms >= 0 else -1):
            n += self._rings[fd].process(self.on_sample, self._count_lost)
        return n

    def _next(self) -> PerfRecord | None:
        for ring in self._rings.values():
            rec = ring.next_record()
            if rec is not None:
                if rec.lost:
                    self.lost[rec.cpu] += rec.lost
                return rec
        return None

    def records(self, timeout: float | None = None) -> Generator[PerfRecord, None, None]:
        """Yield samples and loss reports one at a time (callbacks are not called); stop
        once nothing arrives for ``timeout`` seconds (None: never)."""
        ep = self._ep()
        wait = -1.0 if timeout is None else timeout
        while True:
            rec = self._next()
            if rec is not None:
                yield rec
            elif not ep.poll(wait):
                return

    async def aiter(self, timeout: float | None = None) -> AsyncIterator[PerfRecord]:
        """``records()`` for asyncio, waiting on the epoll fd with loop.add_reader."""
        async for rec in epoll_aiter(self._ep().fileno(), self._next, timeout):
            yield rec

    def close(self) -> None:
        """Disable and close every event, clear its map slot, unmap; idempotent."""
        rings, self._rings = self._rings, {}
        ep, self._epoll = self._epoll, None
        try:
            for ring in rings.values():
                try:
                    key = _U32.pack(ring.cpu)
                    map_elem(BPFCommand.MAP_DELETE_ELEM, self._map_fd, _cbuf(key))
                except OSError:
                    pass
                ring.close()
        finally:
            if ep is not None:
                ep.close()
            if self._map_fd >= 0:
                os.close(self._map_fd)
                self._map_fd = -1

    def __repr__(self) -> str:
        return f"PerfBuffer(cpus={self.cpus}, lost={sum(self.lost.values())})"


def _cbuf(data: bytes) -> object:
    import ctypes

    return ctypes.create_string_buffer(data, len(data))


__all__ = [
    "PerfBuffer",
    "PerfRecord",
    "ReaderError",
    "online_cpus",
    "parse_cpu_list",
    "possible_cpus",
]
