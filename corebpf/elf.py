"""A small, bounds-checked ELF reader: sections, symbols and relocations.

It reads exactly what BTF and BPF objects need (ELF32/ELF64, either byte order) and
validates every offset against the file, so a hostile file ends in an
:class:`ElfError` naming the offset rather than an IndexError or a giant allocation.
"""

from __future__ import annotations

import os
import struct
from functools import cached_property

from ._record import record
from .errors import ObjectError

ELF_MAGIC = b"\x7fELF"

SHT_NULL = 0
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_RELA = 4
SHT_NOBITS = 8
SHT_REL = 9
SHT_DYNSYM = 11

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF

STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2

STT_NOTYPE = 0
STT_OBJECT = 1
STT_FUNC = 2
STT_SECTION = 3

EM_BPF = 247


class ElfError(ObjectError):
    """Malformed ELF; names the file and the byte offset."""


@record(frozen=True)
class Section:
    index: int
    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int


@record(frozen=True)
class Segment:
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int


PT_LOAD = 1
PF_X = 1


@record(frozen=True)
class Symbol:
    index: int
    name: str
    value: int
    size: int
    bind: int
    type: int
    visibility: int
    shndx: int


@record(frozen=True)
class Relocation:
    offset: int
    symbol: int
    type: int
    addend: int


def is_bpf_object(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an ELF file for the BPF machine (what clang -target bpf writes),
    from its first 20 bytes; False for directories, other files and unreadable paths."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    if len(head) < 20 or head[:4] != ELF_MAGIC or head[5] not in (1, 2):
        return False
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return machine == EM_BPF


class ElfFile:
    """An ELF image held in memory (bytes or an mmap)."""

    def __init__(self, data: bytes | memoryview, *, source: str = "<bytes>"):
        self.data = memoryview(data)
        self.source = source
        if len(self.data) < 16:
            raise ElfError(f"{source}: offset 0x0: ELF identification of 16 bytes runs past "
                           f"the end of the file ({len(self.data)} bytes)")
        if bytes(self.data[:4]) != ELF_MAGIC:
            raise ElfError(f"{source}: offset 0x0: not an ELF file (bad magic)")
        ei_class, ei_data = self.data[4], self.data[5]
        if ei_class not in (1, 2):
            raise ElfError(f"{source}: offset 0x4: bad ELF class {ei_class}")
        if ei_data not in (1, 2):
            raise ElfError(f"{source}: offset 0x5: bad ELF data encoding {ei_data}")
        self.is64 = ei_class == 2
        self.endian = "<" if ei_data == 1 else ">"
        e = self.endian
        if self.is64:
            hdr = struct.Struct(e + "HHIQQQIHHHHHH")
        else:
            hdr = struct.Struct(e + "HHIIIIIHHHHHH")
        self._need(0, 16 + hdr.size, "ELF64 header" if self.is64 else "ELF32 header")
        (
            self.e_type,
            self.machine,
            _version,
            self.entry,
            self._phoff,
            self._shoff,
            self.e_flags,
            _ehsize,
            self._phentsize,
            self._phnum,
            self._shentsize,
            shnum,
            shstrndx,
        ) = hdr.unpack_from(self.data, 16)
        self._sh = struct.Struct(e + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII"))
        if self._shoff and self._shentsize < self._sh.size:
            raise ElfError(f"{source}: offset {self._shoff:#x}: section header size "
                           f"{self._shentsize} < {self._sh.size}")
        if self._shoff and shnum == 0:
            # More than SHN_LORESERVE sections: the count is in section 0's size field.
            shnum = self._raw_section(0)[5]
        if self._shoff and shstrndx == SHN_XINDEX:
            shstrndx = self._raw_section(0)[6]
        self._shnum = shnum if self._shoff else 0
        self._need(self._shoff, self._shnum * self._shentsize, "section header table")
        if self._shnum and not 0 < shstrndx < self._shnum:
            raise ElfError(f"{source}: offset {self._shoff:#x}: section name table index "
                           f"{shstrndx} out of range")
        self._shstrndx = shstrndx

    def _need(self, offset: int, size: int, what: str) -> None:
        if offset < 0 or size < 0 or offset + size > len(self.data):
            raise ElfError(
                f"{self.source}: offset {offset:#x}: {what} of {size} bytes runs past the end "
                f"of the file ({len(self.data)} bytes)"
            )

    def _raw_section(self, index: int) -> tuple[int, ...]:
        off = self._shoff + index * self._shentsize
        self._need(off, self._sh.size, f"section header {index}")
        return self._sh.unpack_from(self.data, off)

    @cached_property
    def sections(self) -> list[Section]:
        raw = [self._raw_section(i) for i in range(self._shnum)]
        names: bytes = b""
        if 0 < self._shstrndx < len(raw):
            s = raw[self._shstrndx]
            if s[1] != SHT_NOBITS:
                self._need(s[4], s[5], "section name table")
                names = bytes(self.data[s[4] : s[4] + s[5]])
        out = []
        for i, r in enumerate(raw):
            if i and r[0] >= max(len(names), 1):
                raise ElfError(f"{self.source}: offset {self._shoff + i * self._shentsize:#x}: "
                               f"section {i} name offset {r[0]} is past the name table "
                               f"({len(names)} bytes)")
            if i and names.find(b"\0", r[0]) < 0:
                raise ElfError(f"{self.source}: offset {r[0]:#x} in the name table: "
                               "unterminated section name")
            out.append(
                Section(
                    index=i,
                    name=_cstr(names, r[0]) if i else "",
                    type=r[1],
                    flags=r[2],
                    addr=r[3],
                    offset=r[4],
                    size=r[5],
                    link=r[6],
                    info=r[7],
                    addralign=r[8],
                    entsize=r[9],
                )
            )
        return out

    def section(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_data(self, sec: Section | str) -> memoryview:
        """The bytes of a section (empty for SHT_NOBITS), bounds-checked."""
        if isinstance(sec, str):
            found = self.section(sec)
            if found is None:
                raise ElfError(f"{self.source}: no section {sec!r}")
            sec = found
        if sec.type == SHT_NOBITS:
            return memoryview(b"")
        self._need(sec.offset, sec.size, f"section {sec.name!r}")
        return self.data[sec.offset : sec.offset + sec.size]

    @cached_property
    def segments(self) -> list[Segment]:
        """Program headers (PT_LOAD etc.): file offsets of loaded addresses, for uprobes."""
        if not self._phoff:
            return []
        e = self.endian
        st = struct.Struct(e + ("IIQQQQQQ" if self.is64 else "IIIIIIII"))
        if self._phentsize < st.size:
            raise ElfError(f"{self.source}: offset {self._phoff:#x}: program header size "
                           f"{self._phentsize} < {st.size}")
        self._need(self._phoff, self._phnum * self._phentsize, "program header table")
        out = []
        for i in range(self._phnum):
            v = st.unpack_from(self.data, self._phoff + i * self._phentsize)
            if self.is64:
                ptype, pflags, off, vaddr, _paddr, filesz, memsz, _align = v
            else:
                ptype, off, vaddr, _paddr, filesz, memsz, pflags, _align = v
            out.append(Segment(ptype, pflags, off, vaddr, filesz, memsz))
        return out

    def dynsym_and_symtab(self) -> list[Symbol]:
        """Symbols of .symtab and .dynsym together (stripped binaries keep only .dynsym)."""
        out = list(self.symbols)
        dyn = next((s for s in self.sections if s.type == SHT_DYNSYM), None)
        if dyn is not None:
            out += self._read_symbols(dyn)
        return out

    def file_offset(self, vaddr: int) -> int:
        """The file offset of a virtual address (what a uprobe is placed at)."""
        for seg in self.segments:
            if seg.type == PT_LOAD and seg.vaddr <= vaddr < seg.vaddr + seg.memsz:
                return vaddr - seg.vaddr + seg.offset
        sec = next((s for s in self.sections if s.flags & SHF_EXECINSTR
                    and s.addr <= vaddr < s.addr + s.size), None)
        if sec is not None:
            return vaddr - sec.addr + sec.offset
        raise ElfError(f"{self.source}: address {vaddr:#x} is in no loaded segment")

    @cached_property
    def symtab(self) -> Section | None:
        for s in self.sections:
            if s.type == SHT_SYMTAB:
                return s
        return None

    @cached_property
    def symbols(self) -> list[Symbol]:
        sec = self.symtab
        if sec is None:
            return []
        return self._read_symbols(sec)

    def _read_symbols(self, sec: Section) -> list[Symbol]:
        if not 0 < sec.link < len(self.sections):
            raise ElfError(f"{self.source}: symbol table links to bad section {sec.link}")
        strtab = bytes(self.section_data(self.sections[sec.link]))
        data = self.section_data(sec)
        e = self.endian
        if self.is64:
            st = struct.Struct(e + "IBBHQQ")
        else:
            st = struct.Struct(e + "IIIBBH")
        entsize = sec.entsize or st.size
        if entsize < st.size:
            raise ElfError(f"{self.source}: offset {sec.offset:#x}: symbol entry size {entsize}")
        out = []
        for i in range(len(data) // entsize):
            if self.is64:
                name, info, other, shndx, value, size = st.unpack_from(data, i * entsize)
            else:
                name, value, size, info, other, shndx = st.unpack_from(data, i * entsize)
            out.append(
                Symbol(
                    index=i,
                    name=_cstr(strtab, name),
                    value=value,
                    size=size,
                    bind=info >> 4,
                    type=info & 0xF,
                    visibility=other & 0x3,
                    shndx=shndx,
                )
            )
        return out

    def relocations(self, sec: Section) -> list[Relocation]:
        """Entries of a SHT_REL or SHT_RELA section."""
        e = self.endian
        rela = sec.type == SHT_RELA
        if self.is64:
            st = struct.Struct(e + ("QQq" if rela else "QQ"))
        else:
            st = struct.Struct(e + ("IIi" if rela else "II"))
        data = self.section_data(sec)
        entsize = sec.entsize or st.size
        if entsize < st.size:
            raise ElfError(
                f"{self.source}: offset {sec.offset:#x}: relocation entry size {entsize}"
            )
        out = []
        for i in range(len(data) // entsize):
            vals = st.unpack_from(data, i * entsize)
            info = vals[1]
            if self.is64:
                sym, typ = info >> 32, info & 0xFFFFFFFF
            else:
                sym, typ = info >> 8, info & 0xFF
            out.append(Relocation(vals[0], sym, typ, vals[2] if rela else 0))
        return out


def _cstr(table: bytes, offset: int) -> str:
    if offset >= len(table):
        return ""
    end = table.find(b"\0", offset)
    if end < 0:
        end = len(table)
    return table[offset:end].decode("utf-8", "replace")
