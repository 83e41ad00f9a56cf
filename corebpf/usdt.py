"""USDT probes (<sys/sdt.h>) for objects written against libbpf's <bpf/usdt.bpf.h>:
libbpf's user-space half of USDT, in Python.

The notes, argument specs and spec structs are pure data (:func:`read_notes`,
:func:`parse_args`, :func:`find_targets`, :func:`spec_bytes`); :func:`attach_usdt` puts
one uprobe on every call site of a probe with the spec id as its BPF cookie, fills the
object's ``__bpf_usdt_specs`` (and ``__bpf_usdt_ip_to_spec_id`` where the address is
known) and lets the kernel count the probe's semaphore (ref_ctr_offset).
"""

from __future__ import annotations

import ctypes
import enum
import os
import platform
import re
import struct
from collections.abc import Mapping

from . import sys as ksys
from ._record import record
from .elf import PF_X, PT_LOAD, ElfError, ElfFile
from .errors import AttachError
from .links import Link

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .loader import Collection, LoadedMap, Program

NOTE_SECTION = ".note.stapsdt"
BASE_SECTION = ".stapsdt.base"
NT_STAPSDT = 3
SPECS_MAP = "__bpf_usdt_specs"
IP_MAP = "__bpf_usdt_ip_to_spec_id"
#: BPF_USDT_MAX_ARG_CNT of usdt.bpf.h
MAX_ARGS = 12
#: struct __bpf_usdt_arg_spec: u64 val_off, enum arg_type, short reg_off, bool arg_signed,
#: char arg_bitshift
_ARG = struct.Struct("=QIhBb")
SPEC_SIZE = 208  # sizeof(struct __bpf_usdt_spec): 12 args, u64 usdt_cookie, short arg_cnt

ET_EXEC = 2
ET_DYN = 3
EM_X86_64 = 62
EM_AARCH64 = 183


class UsdtError(AttachError):
    """A USDT probe that cannot be found, parsed or attached; names binary and probe."""


class ArgType(enum.IntEnum):
    """enum __bpf_usdt_arg_type."""

    CONST = 0
    REG = 1
    REG_DEREF = 2


#: offsetof(struct pt_regs, reg) on x86-64 (the kernel's layout, its BTF's member order)
_X86_REGS = {
    "r15": 0, "r14": 8, "r13": 16, "r12": 24, "bp": 32, "bx": 40, "r11": 48, "r10": 56,
    "r9": 64, "r8": 72, "ax": 80, "cx": 88, "dx": 96, "si": 104, "di": 112, "ip": 128,
    "sp": 152,
}
_X86_ALIASES = {
    "ip": ("rip", "eip"), "ax": ("rax", "eax", "ax", "al"), "bx": ("rbx", "ebx", "bx", "bl"),
    "cx": ("rcx", "ecx", "cx", "cl"), "dx": ("rdx", "edx", "dx", "dl"),
    "si": ("rsi", "esi", "si", "sil"), "di": ("rdi", "edi", "di", "dil"),
    "bp": ("rbp", "ebp", "bp", "bpl"), "sp": ("rsp", "esp", "sp", "spl"),
    **{f"r{n}": (f"r{n}", f"r{n}d", f"r{n}w", f"r{n}b") for n in range(8, 16)},
}
X86_64_REGISTERS: dict[str, int] = {name: _X86_REGS[reg] for reg, names in _X86_ALIASES.items()
                                    for name in names}
#: offsetof(struct user_pt_regs, ...) on arm64: regs[31], sp, pc
ARM64_REGISTERS: dict[str, int] = {
    **{f"x{n}": 8 * n for n in range(31)}, **{f"w{n}": 8 * n for n in range(31)}, "sp": 248,
}


@record(frozen=True)
class Note:
    """One stapsdt note: a probe's call site as the compiler recorded it."""

    provider: str
    name: str
    pc: int
    base: int
    semaphore: int
    args: str


@record(frozen=True)
class Arg:
    """One parsed argument spec (``-4@-8(%rbp)``): size in bytes, signedness, where."""

    size: int
    signed: bool
    type: ArgType
    val_off: int
    reg: str
    reg_off: int

    @property
    def bitshift(self) -> int:
        return 64 - 8 * self.size


@record(frozen=True)
class Target:
    """One call site to attach to: file offset, absolute address where known, semaphore
    file offset (0: none) and its arguments."""

    note: Note
    offset: int
    address: int | None
    semaphore_offset: int
    args: tuple[Arg, ...]


def read_notes(elf: ElfFile) -> list[Note]:
    """Every note of ``.note.stapsdt`` (empty when the binary has none)."""
    sec = elf.section(NOTE_SECTION)
    if sec is None:
        return []
    data = bytes(elf.section_data(sec))
    e = elf.endian
    word = "Q" if elf.is64 else "I"
    wsize = 8 if elf.is64 else 4
    out = []
    off = 0
    while off + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(e + "III", data, off)
        name_at = off + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        end = desc_at + ((descsz + 3) & ~3)
        if desc_at + descsz > len(data):
            raise UsdtError(f"{elf.source}: {NOTE_SECTION} note at {sec.offset + off:#x} runs "
                            "past the section")
        owner = data[name_at:name_at + namesz].rstrip(b"\0")
        if owner == b"stapsdt" and ntype == NT_STAPSDT:
            desc = data[desc_at:desc_at + descsz]
            if len(desc) < 3 * wsize + 3:
                raise UsdtError(f"{elf.source}: stapsdt note at {sec.offset + off:#x} is too "
                                f"short ({descsz} bytes)")
            pc, base, sema = struct.unpack_from(e + 3 * word, desc, 0)
            strings = desc[3 * wsize:].split(b"\0")
            if len(strings) < 3 or not strings[1]:
                raise UsdtError(f"{elf.source}: stapsdt note at {sec.offset + off:#x} lacks "
                                "its provider, name or arguments")
            provider, pname, args = (s.decode("utf-8", "replace") for s in strings[:3])
            if args.startswith(":"):
                args = ""
            out.append(Note(provider, pname, pc, base, sema, args))
        off = end
    return out


_X86_ARG = re.compile(
    r"(?P<size>-?\d+)@(?:\$(?P<const>-?(?:0x[0-9a-fA-F]+|\d+))"
    r"|%(?P<reg>\w+)"
    r"|(?P<off>-?(?:0x[0-9a-fA-F]+|\d+))?\(%(?P<base>\w+)\))$")
_ARM64_ARG = re.compile(
    r"(?P<size>-?\d+)@(?:\[\s*(?P<base>\w+)\s*(?:,\s*(?P<off>-?(?:0x[0-9a-fA-F]+|\d+))\s*)?\]"
    r"|(?P<const>-?(?:0x[0-9a-fA-F]+|\d+))"
    r"|(?P<reg>[a-z]\w*))$")
_TOKEN = re.compile(r"\S+@(?:\[[^\]]*\]|\S+)")


def machine_arch(machine: int | None = None) -> str:
    """"x86_64" or "arm64": of an ELF e_machine, or of this machine."""
    if machine == EM_X86_64:
        return "x86_64"
    if machine == EM_AARCH64:
        return "arm64"
    if machine is not None:
        raise UsdtError(f"USDT arguments of ELF machine {machine} are not supported "
                        "(x86-64 and arm64 are)")
    m = platform.machine()
    return "arm64" if m in ("aarch64", "arm64") else m


def parse_args(text: str, arch: str = "x86_64") -> tuple[Arg, ...]:
    """The argument specs of a note (``-4@%eax 8@-8(%rbp) -4@$5``, arm64 ``-4@[sp, 8]``)."""
    if arch not in ("x86_64", "arm64"):
        raise UsdtError(f"USDT arguments on {arch} are not supported (x86_64, arm64 are)")
    regs = X86_64_REGISTERS if arch == "x86_64" else ARM64_REGISTERS
    pattern = _X86_ARG if arch == "x86_64" else _ARM64_ARG
    tokens = _TOKEN.findall(text)
    if "".join(tokens).replace(" ", "") != "".join(text.split()):
        raise UsdtError(f"USDT argument spec {text!r}: cannot split into arguments")
    if len(tokens) > MAX_ARGS:
        raise UsdtError(f"USDT argument spec {text!r}: {len(tokens)} arguments, at most "
                        f"{MAX_ARGS}")
    out = []
    for i, tok in enumerate(tokens):
        m = pattern.match(tok.replace(" ", "") if arch == "x86_64" else tok)
        if m is None:
            raise UsdtError(f"USDT argument #{i} {tok!r} of {text!r}: not a constant, "
                            f"register or register+offset ({arch})")
        size = int(m["size"])
        if abs(size) not in (1, 2, 4, 8):
            raise UsdtError(f"USDT argument #{i} {tok!r}: size {abs(size)} (1, 2, 4 or 8)")
        reg = m["reg"] or m["base"] or ""
        if reg and reg not in regs:
            raise UsdtError(f"USDT argument #{i} {tok!r}: unknown {arch} register {reg!r}")
        if m["const"] is not None:
            kind, val = ArgType.CONST, int(m["const"], 0)
        elif m["reg"]:
            kind, val = ArgType.REG, 0
        else:
            kind, val = ArgType.REG_DEREF, int(m["off"], 0) if m["off"] else 0
        out.append(Arg(abs(size), size < 0, kind, val, reg, regs[reg] if reg else 0))
    return tuple(out)


def spec_bytes(args: tuple[Arg, ...], cookie: int = 0) -> bytes:
    """struct __bpf_usdt_spec as usdt.bpf.h lays it out (this machine's byte order)."""
    buf = bytearray(SPEC_SIZE)
    for i, a in enumerate(args):
        _ARG.pack_into(buf, i * _ARG.size, a.val_off & (1 << 64) - 1, int(a.type), a.reg_off,
                       int(a.signed), a.bitshift)
    struct.pack_into("=Qh", buf, MAX_ARGS * _ARG.size, cookie & (1 << 64) - 1, len(args))
    return bytes(buf)


def _vma_base(pid: int, path: str, offset: int) -> int | None:
    """The address ``path``'s file offset is mapped at in process ``pid``, or None."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6 or parts[5].strip() != path or "x" not in parts[1]:
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        foff = int(parts[2], 16)
        if foff <= offset < foff + hi - lo:
            return lo - foff + offset
    return None


def find_targets(elf: ElfFile, provider: str, name: str, *, pid: int = -1,
                 path: str | None = None) -> list[Target]:
    """Every call site of ``provider:name``: file offsets from the PT_LOAD segments after
    the prelink adjustment (``.stapsdt.base``), as libbpf computes them."""
    if elf.e_type not in (ET_EXEC, ET_DYN):
        raise UsdtError(f"{elf.source}: USDT needs an executable or shared library "
                        f"(ELF type {elf.e_type})")
    arch = machine_arch(elf.machine)
    notes = read_notes(elf)
    if not notes:
        raise UsdtError(f"{elf.source}: no USDT probes ({NOTE_SECTION} is missing or empty)")
    base_sec = elf.section(BASE_SECTION)
    base = base_sec.addr if base_sec is not None else 0
    loads = [s for s in elf.segments if s.type == PT_LOAD]
    out = []
    for note in notes:
        if note.provider != provider or note.name != name:
            continue
        where = f"{elf.source}: USDT {provider}:{name}"
        pc = note.pc + (base - note.base if base and note.base else 0)
        seg = next((s for s in loads if s.vaddr <= pc < s.vaddr + s.memsz), None)
        if seg is None or not seg.flags & PF_X:
            raise UsdtError(f"{where} at {pc:#x} is in no executable segment")
        offset = pc - seg.vaddr + seg.offset
        sema = 0
        if note.semaphore:
            sseg = next((s for s in loads
                         if s.vaddr <= note.semaphore < s.vaddr + s.memsz), None)
            if sseg is None or sseg.flags & PF_X:
                raise UsdtError(f"{where}: semaphore at {note.semaphore:#x} is in no "
                                "writable segment")
            sema = note.semaphore - sseg.vaddr + sseg.offset
        address: int | None = pc if elf.e_type == ET_EXEC else None
        if address is None and pid > 0 and path is not None:
            address = _vma_base(pid, path, offset)
        try:
            args = parse_args(note.args, arch)
        except UsdtError as e:
            raise UsdtError(f"{where}: {e}") from None
        out.append(Target(note, offset, address, sema, args))
    if not out:
        have = sorted({f"{n.provider}:{n.name}" for n in notes})
        import difflib

        close = difflib.get_close_matches(f"{provider}:{name}", have, n=5, cutoff=0.5)
        raise UsdtError(f"{elf.source}: no USDT probe {provider}:{name} (closest: "
                        f"{', '.join(close or have[:5])})")
    return out


# -- attaching ------------------------------------------------------------------------


class _SpecIds:
    """Spec ids of one ``__bpf_usdt_specs`` map: handed out by attachments, given back on
    detach (libbpf's usdt_manager, per object)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.next = 0
        self.free: list[int] = []

    def take(self) -> int:
        if self.free:
            return self.free.pop()
        if self.next >= self.capacity:
            raise UsdtError(f"{SPECS_MAP} is full ({self.capacity} specs): raise "
                            "BPF_USDT_MAX_SPEC_CNT")
        self.next += 1
        return self.next - 1


_ids: dict[int, _SpecIds] = {}


def _usdt_maps(program: Program, maps: Collection | Mapping[str, LoadedMap] | None
               ) -> tuple[ksys.FD, ksys.FD]:
    """Own fds of the program's USDT maps: from ``maps`` or found by the program's map
    ids (names are cut at 15 characters by the kernel)."""
    found: dict[str, ksys.FD] = {}
    if maps is not None:
        table = maps if isinstance(maps, Mapping) else maps.maps
        for want in (SPECS_MAP, IP_MAP):
            lm = table.get(want)
            if lm is not None:
                found[want] = ksys.FD(os.dup(lm.fd.fd))
    else:
        for mid in ksys.prog_map_ids(program.fd.fd):
            try:
                fd = ksys.map_get_fd_by_id(mid)
            except OSError:
                continue
            name = ksys.obj_info(fd.fd, 88)[24:40].split(b"\0", 1)[0].decode()
            which = next((w for w in (SPECS_MAP, IP_MAP) if w[:15] == name), None)
            if which is not None and which not in found:
                found[which] = fd
            else:
                fd.close()
    if SPECS_MAP not in found or IP_MAP not in found:
        for fd in found.values():
            fd.close()
        raise UsdtError(f"program {program.name!r} uses no {SPECS_MAP}/{IP_MAP} maps: "
                        "include <bpf/usdt.bpf.h> and call bpf_usdt_arg()")
    return found[SPECS_MAP], found[IP_MAP]


def attach_usdt(program: Program, binary: str, provider: str, name: str, pid: int = -1,
                cookie: int = 0, *, maps: Collection | Mapping[str, LoadedMap] | None = None
                ) -> Link:
    """Attach a loaded program (``SEC("usdt")``) to every call site of
    ``provider:name`` in ``binary`` (a path, or a name searched as uprobes search it),
    for process ``pid`` only when >= 0; bpf_usdt_cookie() returns ``cookie``. ``maps``
    (the program's Collection) is needed only when the program does not reference the
    USDT maps itself. close() detaches every call site and frees the spec ids."""
    from .perf_links import attach_uprobe_offset, find_binary

    path = os.path.realpath(find_binary(binary))
    if pid == 0:
        pid = os.getpid()
    try:
        with open(path, "rb") as f:
            elf = ElfFile(f.read(), source=path)
    except OSError as e:
        raise UsdtError(f"usdt: {path}: {e.strerror}") from None
    except ElfError as e:
        raise UsdtError(f"usdt: {e}") from None
    targets = find_targets(elf, provider, name, pid=pid, path=path)
    specs_fd, ip_fd = _usdt_maps(program, maps)
    what = f"usdt {path}:{provider}:{name}"
    info = ksys.obj_info(specs_fd.fd, 88)
    spec_map_id, value_size, capacity = struct.unpack_from("=I4xII", info, 4)
    if value_size != SPEC_SIZE:
        specs_fd.close()
        ip_fd.close()
        raise UsdtError(f"{what}: {SPECS_MAP} values are {value_size} bytes, not the "
                        f"{SPEC_SIZE} of struct __bpf_usdt_spec this corebpf writes")
    ids = _ids.setdefault(spec_map_id, _SpecIds(capacity))
    links: list[Link] = []
    taken: list[int] = []
    ips: list[int] = []

    def undo() -> None:
        for link in reversed(links):
            link.close()
        for ip in ips:
            try:
                ksys.map_elem(ksys.BPFCommand.MAP_DELETE_ELEM, ip_fd.fd, ctypes.c_long(ip))
            except OSError:
                pass
        ids.free.extend(taken)
        specs_fd.close()
        ip_fd.close()

    try:
        by_spec: dict[tuple[Arg, ...], int] = {}
        for t in targets:
            sid = by_spec.get(t.args)
            if sid is None:
                sid = ids.take()
                taken.append(sid)
                by_spec[t.args] = sid
                value = ctypes.create_string_buffer(spec_bytes(t.args, cookie), SPEC_SIZE)
                ksys.map_elem(ksys.BPFCommand.MAP_UPDATE_ELEM, specs_fd.fd,
                              ctypes.c_int(sid), value)
            if t.address is not None:  # for kernels without BPF cookies
                ksys.map_elem(ksys.BPFCommand.MAP_UPDATE_ELEM, ip_fd.fd,
                              ctypes.c_long(t.address), ctypes.c_uint32(sid))
                ips.append(t.address)
            links.append(attach_uprobe_offset(
                program.fd.fd, path, t.offset, False, pid, cookie=sid,
                ref_ctr_offset=t.semaphore_offset, cookie_optional=t.address is not None,
                what=f"{what} (call site at file offset {t.offset:#x})"))
    except OSError as e:
        undo()
        raise UsdtError(f"{what}: {e.strerror or e}") from None
    except BaseException:
        undo()
        raise
    return Link(None, f"{what} ({len(links)} call site{'s' if len(links) != 1 else ''})",
                undo)


def attach_target(program: Program, target: str, pid: int = -1, cookie: int = 0) -> Link:
    """:func:`attach_usdt` from ``BINARY:PROVIDER:NAME`` (``SEC("usdt/...")``'s form)."""
    binary, provider, name = [*target.rsplit(":", 2), "", ""][:3]
    if not (binary and provider and name):
        raise UsdtError(f"program {program.name!r}: usdt needs BINARY:PROVIDER:NAME, got "
                        f"{target!r}")
    return attach_usdt(program, binary, provider, name, pid, cookie)


__all__ = [
    "ARM64_REGISTERS",
    "X86_64_REGISTERS",
    "Arg",
    "ArgType",
    "Note",
    "Target",
    "UsdtError",
    "attach_target",
    "attach_usdt",
    "find_targets",
    "parse_args",
    "read_notes",
    "spec_bytes",
]
