"""A minimal "vmlinux" ELF file that holds nothing but BTF, for libbpf to find on disk.

libbpf (``btf__load_vmlinux_btf``, up to 1.1 at least) reads the vmlinux files of its
search paths with ``btf__parse_elf``: it wants an ELF file, its section-name table, and a
section named ``.BTF``; nothing else is looked at, and the ELF class sets the pointer
size. So the file written here is an ELF header, the ``.BTF`` section, an optional
``.note.corebpf`` note (a JSON description of where the BTF came from, which marks the
file as corebpf's own; libbpf passes unknown sections over) and ``.shstrtab``. No program
headers, no symbols.

Pure data: bytes in, bytes out.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

from ..elf import ELF_MAGIC, SHT_NULL, SHT_PROGBITS, SHT_STRTAB, ElfError, ElfFile
from ..errors import BTFError

SHT_NOTE = 7
ET_EXEC = 2
EV_CURRENT = 1
#: the note's owner name and type: a corebpf-written BTF file
NOTE_NAME = b"corebpf"
NOTE_TYPE = 0xC0BE
NOTE_SECTION = ".note.corebpf"
BTF_SECTION = ".BTF"

#: (e_machine, 64-bit class) per architecture, as sources.normalize_arch names them
MACHINES: dict[str, tuple[int, bool]] = {
    "x86_64": (62, True),
    "arm64": (183, True),
    "ppc64le": (21, True),
    "s390x": (22, True),
    "riscv64": (243, True),
    "loongarch64": (258, True),
    "x86": (3, False),
    "arm": (40, False),
}
_BTF_LE = b"\x9f\xeb"
_BTF_BE = b"\xeb\x9f"


def btf_byte_order(raw: bytes) -> str:
    """"<" or ">" from BTF's magic; BTFError for anything else."""
    if raw[:2] == _BTF_LE:
        return "<"
    if raw[:2] == _BTF_BE:
        return ">"
    raise BTFError(f"not raw BTF (magic {raw[:2].hex() or 'missing'})")


def _align(n: int, a: int) -> int:
    return (n + a - 1) & -a


def _note(endian: str, desc: bytes) -> bytes:
    name = NOTE_NAME + b"\0"
    head = struct.pack(endian + "III", len(name), len(desc), NOTE_TYPE)
    return (head + name.ljust(_align(len(name), 4), b"\0")
            + desc.ljust(_align(len(desc), 4), b"\0"))


def vmlinux_elf(raw: bytes, *, arch: str = "x86_64",
                note: Mapping[str, Any] | None = None) -> bytes:
    """An ELF file holding ``raw`` (standalone BTF) as its ``.BTF`` section.

    The ELF byte order is the BTF's (libbpf byte-swaps BTF of the other order anyway, but
    a file that disagrees with itself helps nobody); class and e_machine are ``arch``'s
    (64-bit machines get ELFCLASS64: libbpf takes the pointer size from it). ``note``,
    when given, is stored as JSON in a ``.note.corebpf`` note (see :func:`read_note`).
    """
    endian = btf_byte_order(raw)
    try:
        machine, is64 = MACHINES[arch]
    except KeyError:
        raise BTFError(f"no ELF machine known for architecture {arch!r} (known: "
                       f"{', '.join(sorted(MACHINES))})") from None
    ehsize, shentsize = (64, 64) if is64 else (52, 40)
    sections: list[tuple[str, int, bytes, int]] = [(BTF_SECTION, SHT_PROGBITS, raw, 4)]
    if note is not None:
        desc = json.dumps(dict(note), sort_keys=True, separators=(",", ":")).encode()
        sections.append((NOTE_SECTION, SHT_NOTE, _note(endian, desc), 4))
    names = [name for name, *_ in sections] + [".shstrtab"]
    shstrtab = bytearray(b"\0")
    name_off = []
    for name in names:
        name_off.append(len(shstrtab))
        shstrtab += name.encode() + b"\0"
    sections.append((".shstrtab", SHT_STRTAB, bytes(shstrtab), 1))

    body = bytearray(ehsize)
    placed = []
    for _, _, data, align in sections:
        body += b"\0" * (_align(len(body), align) - len(body))
        placed.append(len(body))
        body += data
    body += b"\0" * (_align(len(body), 8) - len(body))
    shoff = len(body)
    shnum = len(sections) + 1
    if is64:
        sh = struct.Struct(endian + "IIQQQQIIQQ")
        eh = struct.Struct(endian + "HHIQQQIHHHHHH")
    else:
        sh = struct.Struct(endian + "IIIIIIIIII")
        eh = struct.Struct(endian + "HHIIIIIHHHHHH")
    body += sh.pack(0, SHT_NULL, 0, 0, 0, 0, 0, 0, 0, 0)
    for (_, stype, data, align), off, noff in zip(sections, placed, name_off, strict=True):
        body += sh.pack(noff, stype, 0, 0, off, len(data), 0, 0, align, 0)
    ident = ELF_MAGIC + bytes([2 if is64 else 1, 1 if endian == "<" else 2, EV_CURRENT])
    body[:16] = ident.ljust(16, b"\0")
    eh.pack_into(body, 16, ET_EXEC, machine, EV_CURRENT, 0, 0, shoff, 0, ehsize, 0, 0,
                 shentsize, shnum, shnum - 1)
    return bytes(body)


def read_note(data: bytes, source: str = "<bytes>") -> dict[str, Any] | None:
    """The JSON of a file's ``.note.corebpf`` note: what :func:`vmlinux_elf` stored, or
    None for any file without one (not ELF, another tool's vmlinux, a corrupt note)."""
    if not data.startswith(ELF_MAGIC):
        return None
    try:
        elf = ElfFile(data, source=source)
        sec = elf.section(NOTE_SECTION)
        if sec is None or sec.type != SHT_NOTE:
            return None
        note = bytes(elf.section_data(sec))
    except ElfError:
        return None
    e = elf.endian
    pos = 0
    while pos + 12 <= len(note):
        namesz, descsz, ntype = struct.unpack_from(e + "III", note, pos)
        name_at = pos + 12
        desc_at = name_at + _align(namesz, 4)
        end = desc_at + _align(descsz, 4)
        if end > len(note) + 3 or desc_at + descsz > len(note):
            return None
        if ntype == NOTE_TYPE and note[name_at:name_at + namesz].rstrip(b"\0") == NOTE_NAME:
            try:
                value = json.loads(note[desc_at:desc_at + descsz])
            except (ValueError, UnicodeDecodeError):
                return None
            return value if isinstance(value, dict) else None
        pos = end
    return None


__all__ = ["MACHINES", "NOTE_SECTION", "btf_byte_order", "read_note", "vmlinux_elf"]
