"""Tracepoints, kprobes and uprobes: a perf event carries the program.

BPF_LINK_CREATE on the perf event where the kernel has it (5.15+), else the older
PERF_EVENT_IOC_SET_BPF + ENABLE, as libbpf does.
"""

from __future__ import annotations

import os
import struct

from . import sys as ksys
from ._record import record
from .elf import SHT_DYNSYM, STB_GLOBAL, STB_WEAK, STT_FUNC, ElfError, ElfFile, Symbol
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


def _attach_perf_fd(prog_fd: int, pfd: ksys.FD, what: str, cookie: int = 0,
                    cookie_optional: bool = False) -> Link:
    def release_event() -> None:
        # as libbpf: disable and drop the perf event first; a link's close then pays the
        # kernel's single grace period
        try:
            ioctl(pfd.fd, PERF_EVENT_IOC_DISABLE, 0)
        except OSError:
            pass
        pfd.close()

    try:
        link = ksys.link_create(prog_fd, pfd.fd, BPF_PERF_EVENT, 0,
                                struct.pack("=Q", cookie & (1 << 64) - 1) if cookie else b"")
    except OSError:
        if cookie and not cookie_optional:  # the program would read 0: refuse
            pfd.close()
            raise AttachError(f"{what}: this kernel cannot give a BPF cookie to a perf "
                              "event link (5.15+)") from None
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


def _ref_ctr_shift() -> int:
    """Where the uprobe PMU takes a USDT semaphore's file offset in ``config``."""
    path = os.path.join(_EVENT_SOURCE, "uprobe", "format", "ref_ctr_offset")
    try:
        with open(path) as f:
            text = f.read().strip().removeprefix("config:")
    except OSError:
        raise AttachError(f"this kernel's uprobes cannot count USDT semaphores ({path} is "
                          "missing; 4.20+)") from None
    return int(text.partition("-")[0])


def _probe(pmu: str, retprobe: bool, name: bytes, offset: int, pid: int, what: str,
           ref_ctr_offset: int = 0) -> ksys.FD:
    import ctypes

    ptype, bit = _pmu(pmu)
    cname = ctypes.create_string_buffer(name)
    config = (1 << bit) if retprobe else 0
    if ref_ctr_offset:
        config |= ref_ctr_offset << _ref_ctr_shift()
    attr = perf_attr(ptype, config, sample_period=1, wakeup_events=1,
                     config1=ctypes.addressof(cname), config2=offset)
    try:
        return perf_event_open(attr, pid=pid if pid >= 0 else -1, cpu=0 if pid < 0 else -1)
    except OSError as e:
        raise AttachError(f"{what}: {e.strerror or e}") from None


def attach_kprobe(prog_fd: int, func: str, retprobe: bool = False, offset: int = 0) -> Link:
    what = f"{'kretprobe' if retprobe else 'kprobe'} {func}"
    return _attach_perf_fd(prog_fd, _probe("kprobe", retprobe, func.encode(), offset, -1, what),
                           what)


SHT_GNU_VERDEF = 0x6FFFFFFD
SHT_GNU_VERSYM = 0x6FFFFFFF
_VERSYM_HIDDEN = 0x8000

#: libbpf's directories for a library named without a slash (after LD_LIBRARY_PATH),
#: then the other usual ones
_LIB_DIRS = ("/usr/lib64", "/usr/lib")
_MULTIARCH = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu",
              "i686": "i386-linux-gnu", "s390x": "s390x-linux-gnu",
              "ppc64le": "powerpc64le-linux-gnu", "riscv64": "riscv64-linux-gnu",
              "armv7l": "arm-linux-gnueabihf"}


def find_binary(name: str) -> str:
    """The file a uprobe names, searched as libbpf does when the name has no slash:
    libraries (``libc.so.6``) in LD_LIBRARY_PATH, /usr/lib64, /usr/lib and the multiarch
    directory, then /lib64, /lib and /usr/lib/<multiarch>; programs in PATH, /usr/bin,
    /usr/sbin."""
    import platform

    if "/" in name:
        return name
    if name.endswith(".so") or ".so." in name:
        arch = _MULTIARCH.get(platform.machine())
        dirs = [*os.environ.get("LD_LIBRARY_PATH", "").split(":"), *_LIB_DIRS]
        if arch:
            dirs.append(f"/lib/{arch}")
        dirs += ["/lib64", "/lib"] + ([f"/usr/lib/{arch}"] if arch else [])
        mode = os.R_OK
    else:
        dirs = [*os.environ.get("PATH", "").split(":"), "/usr/bin", "/usr/sbin"]
        mode = os.R_OK | os.X_OK
    for d in dirs:
        path = os.path.join(d, name)
        if d and os.path.isfile(path) and os.access(path, mode):
            return path
    raise AttachError(f"uprobe: cannot find {name!r} (searched {', '.join(d for d in dirs if d)})")


def _versions(elf: ElfFile) -> tuple[list[int], dict[int, str]]:
    """.gnu.version (per .dynsym entry) and .gnu.version_d (index -> name)."""
    import struct

    e = elf.endian
    versym: list[int] = []
    names: dict[int, str] = {}
    for sec in elf.sections:
        if sec.type == SHT_GNU_VERSYM:
            data = bytes(elf.section_data(sec))
            versym = list(struct.unpack(f"{e}{len(data) // 2}H", data[: len(data) // 2 * 2]))
        elif sec.type == SHT_GNU_VERDEF and 0 < sec.link < len(elf.sections):
            data = bytes(elf.section_data(sec))
            strtab = bytes(elf.section_data(elf.sections[sec.link]))
            off = 0
            for _ in range(max(sec.info, 1)):
                if off + 20 > len(data):
                    break
                _v, _f, ndx, cnt, _h, aux, nxt = struct.unpack_from(f"{e}HHHHIII", data, off)
                if cnt and off + aux + 8 <= len(data):
                    (name,) = struct.unpack_from(f"{e}I", data, off + aux)
                    end = strtab.find(b"\0", name)
                    names[ndx] = strtab[name:end if end >= 0 else None].decode("utf-8",
                                                                                "replace")
                if not nxt:
                    break
                off += nxt
    return versym, names


@record(frozen=True)
class UprobeCandidate:
    """One symbol a uprobe name matched: where it is and why it counts."""

    name: str
    table: str
    offset: int
    bind: int

    def __str__(self) -> str:
        bind = {STB_GLOBAL: "global", STB_WEAK: "weak"}.get(self.bind, "local")
        return f"{self.name} ({bind}, {self.table}, file offset {self.offset:#x})"


def _candidates(elf: ElfFile, func: str, version: str | None) -> tuple[list[UprobeCandidate],
                                                                      list[str]]:
    """Functions matching ``func[@VERSION]``, from the first of .dynsym and .symtab that
    has any (libbpf's order); also every function name, for "did you mean"."""
    secs = elf.sections
    dyn = next((s for s in secs if s.type == SHT_DYNSYM), None)
    tables: list[tuple[str, list[Symbol]]] = []
    if dyn is not None:
        tables.append((".dynsym", elf._read_symbols(dyn)))
    tables.append((".symtab", elf.symbols))
    versym, vernames = _versions(elf) if dyn is not None else ([], {})
    every: list[str] = []
    for table, syms in tables:
        found: list[tuple[UprobeCandidate, bool]] = []
        for sym in syms:
            if sym.type != STT_FUNC or not 0 < sym.shndx < len(secs):
                continue
            every.append(sym.name)
            base, at, symver = sym.name.partition("@")
            if base != func:
                continue
            hidden = False
            shown = sym.name
            if table == ".dynsym" and sym.index < len(versym):
                ver = versym[sym.index]
                hidden = bool(ver & _VERSYM_HIDDEN)
                vname = vernames.get(ver & 0x7FFF)
                if vname and ver & 0x7FFF > 1:
                    symver = vname
                    shown = f"{func}{'@' if hidden else '@@'}{vname}"
            elif at:
                hidden = not symver.startswith("@")
                symver = symver.lstrip("@")
            if version is not None and symver != version:
                continue
            sec = secs[sym.shndx]
            found.append((UprobeCandidate(shown, table, sym.value - sec.addr + sec.offset,
                                          sym.bind), hidden))
        if version is None and any(not h for _, h in found):
            found = [(c, h) for c, h in found if not h]  # plain name: the default version
        if found:
            return [c for c, _ in found], every
    return [], every


def find_function(elf: ElfFile, symbol: str) -> int:
    """The file offset of a function as libbpf's elf_find_func_offset finds it: .dynsym,
    then .symtab; ``name@VER``/``name@@VER`` pick a version, a plain name the default
    one; a global beats a weak; two globals at different places are ambiguous."""
    func, at, version = symbol.partition("@")
    cands, every = _candidates(elf, func, version.lstrip("@") if at else None)
    if not cands:
        import difflib

        close = difflib.get_close_matches(symbol, sorted(set(every)), n=5, cutoff=0.6)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise AttachError(f"uprobe: {elf.source} has no function {symbol!r}{hint}")
    chosen = cands[0]
    strong = {c.offset: c for c in cands if c.bind != STB_WEAK}
    if len(strong) > 1:
        listed = "; ".join(str(c) for c in strong.values())
        raise AttachError(f"uprobe: {elf.source}: {symbol!r} is ambiguous: {listed}")
    if strong:
        chosen = next(iter(strong.values()))
    if chosen.offset <= 0:
        raise AttachError(f"uprobe: {elf.source}: {symbol!r} is at offset 0 (an import, "
                          "not a definition: name the library that defines it)")
    return chosen.offset


def resolve_uprobe(binary: str, symbol: str) -> tuple[str, int]:
    """(absolute path, file offset) of ``symbol`` (``name``, ``name@@VER``, ``name+0x10``
    or an address) in a binary or a library found by name."""
    path = os.path.realpath(find_binary(binary))
    name, _, extra = symbol.partition("+")
    try:
        add = int(extra, 0) if extra else 0
    except ValueError:
        raise AttachError(f"uprobe: bad offset {extra!r} in {symbol!r}") from None
    try:
        if _is_address(name):
            return path, int(name, 0) + add
        with open(path, "rb") as f:
            elf = ElfFile(f.read(), source=path)
        return path, find_function(elf, name) + add
    except OSError as e:
        raise AttachError(f"uprobe: {path}: {e.strerror}") from None
    except ElfError as e:
        raise AttachError(f"uprobe: {e}") from None


def attach_uprobe(prog_fd: int, binary: str, symbol: str, retprobe: bool = False,
                  pid: int = -1, *, cookie: int = 0) -> Link:
    """A uprobe on ``symbol`` (see :func:`resolve_uprobe`) in ``binary``, for process
    ``pid`` only when it is >= 0; ``cookie`` is what bpf_get_attach_cookie() returns."""
    path, offset = resolve_uprobe(binary, symbol)
    what = f"{'uretprobe' if retprobe else 'uprobe'} {path}:{symbol}"
    return attach_uprobe_offset(prog_fd, path, offset, retprobe, pid, cookie=cookie,
                                what=what)


def attach_uprobe_offset(prog_fd: int, path: str, offset: int, retprobe: bool = False,
                         pid: int = -1, *, cookie: int = 0, ref_ctr_offset: int = 0,
                         what: str = "", cookie_optional: bool = False) -> Link:
    """A uprobe at a file offset; ``ref_ctr_offset`` is the file offset of a USDT
    semaphore the kernel counts up while the probe is attached. ``cookie_optional``:
    on kernels without BPF cookies attach anyway (the caller has another way, as USDT's
    IP map)."""
    what = what or f"{'uretprobe' if retprobe else 'uprobe'} {path}:{offset:#x}"
    pfd = _probe("uprobe", retprobe, path.encode(), offset, pid, what, ref_ctr_offset)
    return _attach_perf_fd(prog_fd, pfd, what, cookie, cookie_optional)


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
