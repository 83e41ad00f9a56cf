"""Tracepoints, kprobes and uprobes: a perf event carries the program.

BPF_LINK_CREATE on the perf event where the kernel has it (5.15+), else the older
PERF_EVENT_IOC_SET_BPF + ENABLE, as libbpf does.
"""

from __future__ import annotations

import os

from . import sys as ksys
from .elf import STT_FUNC, ElfError, ElfFile
from .errors import AttachError
from .links import Link
from .obj.sections import AttachKind
from .sys.perf_event import (
    PERF_EVENT_IOC_DISABLE,
    PERF_EVENT_IOC_ENABLE,
    PERF_EVENT_IOC_SET_BPF,
    PERF_TYPE_TRACEPOINT,
    ioctl,
    perf_event_open,
)
from .sys.perf_event import perf_event_attr as perf_attr

BPF_PERF_EVENT = 41
_EVENT_SOURCE = "/sys/bus/event_source/devices"


def _attach_perf_fd(prog_fd: int, pfd: ksys.FD, what: str) -> Link:
    def release_event() -> None:
        # as libbpf: disable and drop the perf event first; a link's close then pays the
        # kernel's single grace period
        try:
            ioctl(pfd.fd, PERF_EVENT_IOC_DISABLE, 0)
        except OSError:
            pass
        pfd.close()

    try:
        link = ksys.link_create(prog_fd, pfd.fd, BPF_PERF_EVENT)
    except OSError:
        try:
            ioctl(pfd.fd, PERF_EVENT_IOC_SET_BPF, prog_fd)
            ioctl(pfd.fd, PERF_EVENT_IOC_ENABLE, 0)
        except OSError as e:
            pfd.close()
            raise AttachError(f"{what}: {e.strerror or e}") from None
        return Link(None, what, release_event)
    try:
        ioctl(pfd.fd, PERF_EVENT_IOC_ENABLE, 0)
    except OSError:
        pass
    return Link(link, what, release_event)


def tracepoint_id(category: str, name: str) -> int:
    from .sys.fs import ensure_tracefs

    root = ensure_tracefs()
    path = os.path.join(root, "events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read().strip())
    except FileNotFoundError:
        raise AttachError(f"tracepoint {category}/{name} does not exist ({path})") from None
    except OSError as e:
        raise AttachError(f"tracepoint {category}/{name}: {e.strerror}") from None


def attach_tracepoint(prog_fd: int, category: str, name: str) -> Link:
    what = f"tracepoint {category}/{name}"
    attr = perf_attr(PERF_TYPE_TRACEPOINT, tracepoint_id(category, name), sample_period=1,
                     wakeup_events=1)
    try:
        pfd = perf_event_open(attr, pid=-1, cpu=0)
    except OSError as e:
        raise AttachError(f"{what}: {e.strerror or e}") from None
    return _attach_perf_fd(prog_fd, pfd, what)


def _pmu(name: str) -> tuple[int, int]:
    """(PMU type, retprobe config bit) of the kprobe or uprobe PMU."""
    base = os.path.join(_EVENT_SOURCE, name)
    try:
        with open(os.path.join(base, "type")) as f:
            ptype = int(f.read())
    except OSError:
        raise AttachError(f"this kernel has no {name} PMU ({base}): "
                          f"{name}s are not available") from None
    bit = 0
    try:
        with open(os.path.join(base, "format", "retprobe")) as f:
            text = f.read().strip().removeprefix("config:")
            bit = int(text) if text.isdigit() else 0
    except OSError:
        pass
    return ptype, bit


def _probe(pmu: str, retprobe: bool, name: bytes, offset: int, pid: int, what: str) -> ksys.FD:
    import ctypes

    ptype, bit = _pmu(pmu)
    cname = ctypes.create_string_buffer(name)
    attr = perf_attr(ptype, (1 << bit) if retprobe else 0, sample_period=1, wakeup_events=1,
                     config1=ctypes.addressof(cname), config2=offset)
    try:
        return perf_event_open(attr, pid=pid if pid >= 0 else -1, cpu=0 if pid < 0 else -1)
    except OSError as e:
        raise AttachError(f"{what}: {e.strerror or e}") from None


def attach_kprobe(prog_fd: int, func: str, retprobe: bool = False, offset: int = 0) -> Link:
    what = f"{'kretprobe' if retprobe else 'kprobe'} {func}"
    return _attach_perf_fd(prog_fd, _probe("kprobe", retprobe, func.encode(), offset, -1, what),
                           what)


def resolve_uprobe(binary: str, symbol: str) -> tuple[str, int]:
    """(absolute path, file offset) of ``symbol`` (``name`` or ``name+0x10``) in a binary."""
    path = binary
    if "/" not in path:
        for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
            if os.path.exists(os.path.join(d, path)):
                path = os.path.join(d, path)
                break
    path = os.path.realpath(path)
    name, _, extra = symbol.partition("+")
    add = int(extra, 0) if extra else 0
    try:
        with open(path, "rb") as f:
            elf = ElfFile(f.read(), source=path)
        if _is_address(name):
            return path, int(name, 0) + add
        syms = [s for s in elf.dynsym_and_symtab()
                if s.name == name and s.type == STT_FUNC and s.value]
        if not syms:
            raise AttachError(f"uprobe: {path} has no function {name!r}")
        return path, elf.file_offset(syms[0].value) + add
    except OSError as e:
        raise AttachError(f"uprobe: {path}: {e.strerror}") from None
    except ElfError as e:
        raise AttachError(f"uprobe: {e}") from None


def attach_uprobe(prog_fd: int, binary: str, symbol: str, retprobe: bool = False,
                  pid: int = -1) -> Link:
    path, offset = resolve_uprobe(binary, symbol)
    what = f"{'uretprobe' if retprobe else 'uprobe'} {path}:{symbol}"
    return _attach_perf_fd(prog_fd, _probe("uprobe", retprobe, path.encode(), offset, pid,
                                           what), what)


def attach_perf(program: object, kind: AttachKind, where: str, pid: int) -> Link:
    """The perf-event half of links.attach()."""
    from .loader import Program

    assert isinstance(program, Program)
    spec = program.spec
    fd = program.fd.fd
    retprobe = spec.section.startswith(("kretprobe", "uretprobe"))
    if kind == AttachKind.TRACEPOINT:
        cat, _, name = where.partition("/")
        if not name:
            raise AttachError(f"program {spec.name!r}: tracepoint needs CATEGORY/NAME, got "
                              f"{where!r}")
        return attach_tracepoint(fd, cat, name)
    if kind == AttachKind.KPROBE:
        func, _, off = where.partition("+")
        if not func:
            raise AttachError(f"program {spec.name!r}: kprobe needs a function name")
        return attach_kprobe(fd, func, retprobe, int(off, 0) if off else 0)
    # uprobe: "/path/to/binary:function[+off]" (libbpf's SEC("uprobe/<path>:<func>") form)
    binary, sep, symbol = where.rpartition(":")
    if not sep or not binary:
        raise AttachError(f"program {spec.name!r}: uprobe needs BINARY:FUNCTION, got {where!r}")
    return attach_uprobe(fd, binary, symbol, retprobe, pid)


def _is_address(text: str) -> bool:
    """``0x1f0`` or ``4096``: an offset rather than a symbol name."""
    digits = text[2:] if text[:2] in ("0x", "0X") else text
    hexdigits = "0123456789abcdefABCDEF" if digits is not text else "0123456789"
    return bool(digits) and all(c in hexdigits for c in digits)
