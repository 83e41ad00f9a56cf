"""Pull a kernel's BTF out of a distribution package: .deb -> vmlinuz -> vmlinux -> .BTF.

Distributions ship no ``vmlinux`` and no standalone BTF, but every x86 ``bzImage`` carries
the whole ELF ``vmlinux`` (``.BTF`` included) as a compressed payload. This module walks
that chain with the standard library only, so the project can make real-kernel test data
itself instead of trusting a third-party archive. Input is treated as hostile: every
offset is bounds-checked and every decompression has an output ceiling.
"""

from __future__ import annotations

import bz2
import importlib
import io
import lzma
import struct
import tarfile
import zlib
from collections.abc import Callable, Iterator
from typing import Any, cast

ELF_MAGIC = b"\x7fELF"

#: Ceiling on one decompressed blob (a vmlinux, a package member): a hostile payload
#: must not be able to take the machine's memory. Real vmlinux images are ~60-100 MiB.
MAX_OUTPUT = 512 << 20
#: Ceiling on a streamed data.tar: it is never held in memory, but decoding it costs time.
MAX_TAR_STREAM = 4 << 30

_IN_CHUNK = 64 << 10
_OUT_CHUNK = 1 << 20

# The magics scripts/extract-vmlinux looks for, in its order. lzo and lz4 have no stdlib
# decoder: they are recognised only to name them in the error.
_MAGICS: tuple[tuple[str, bytes], ...] = (
    ("gzip", b"\x1f\x8b\x08"),
    ("xz", b"\xfd7zXZ\x00"),
    ("bzip2", b"BZh"),
    ("lzma", b"\x5d\x00\x00\x00"),
    ("lzo", b"\x89LZO"),
    ("lz4", b"\x02\x21\x4c\x18"),
    ("zstd", b"\x28\xb5\x2f\xfd"),
)

_AR_MAGIC = b"!<arch>\n"
_AR_HEADER = 60

_TAR_SUFFIXES: dict[str, str | None] = {
    "": None,
    ".gz": "gzip",
    ".xz": "xz",
    ".bz2": "bzip2",
    ".lzma": "lzma",
    ".zst": "zstd",
}


# --- decompression -----------------------------------------------------------------------


class _ZstdMissing(ValueError):
    """zstd input without a zstd decoder; kept apart so a bzImage scan can report it last."""


def _zstd_module() -> Any:
    """A zstd decoder module: stdlib ``compression.zstd`` (3.14+) or PyPI ``zstandard``."""
    for name in ("compression.zstd", "zstandard"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise _ZstdMissing(
        "zstd-compressed data needs a zstd decoder: Python < 3.14 has none in the standard "
        "library and the 'zstandard' module is not installed (pip install zstandard)"
    )


def _zlib_chunks(data: memoryview, wbits: int) -> Iterator[bytes]:
    d = zlib.decompressobj(wbits)
    pending: bytes | memoryview = b""
    pos = 0
    while not d.eof:
        if not pending:
            if pos >= len(data):
                tail = d.flush()  # all input is in: what is left is at most a window
                if tail:
                    yield tail
                if not d.eof:
                    raise EOFError("compressed stream ends before its end marker")
                return
            pending = data[pos : pos + _IN_CHUNK]
            pos += _IN_CHUNK
        out = d.decompress(pending, _OUT_CHUNK)
        pending = d.unconsumed_tail
        if out:
            yield out


class _Decompressor:
    """The common shape of lzma/bz2/compression.zstd decompressor objects (for typing)."""

    eof: bool
    needs_input: bool

    def decompress(self, data: bytes | memoryview, max_length: int = -1) -> bytes:
        raise NotImplementedError


def _bounded_chunks(data: memoryview, d: _Decompressor) -> Iterator[bytes]:
    pos = 0
    while not d.eof:
        if d.needs_input:
            if pos >= len(data):
                raise EOFError("compressed stream ends before its end marker")
            chunk: bytes | memoryview = data[pos : pos + _IN_CHUNK]
            pos += _IN_CHUNK
        else:
            chunk = b""
        out = d.decompress(chunk, _OUT_CHUNK)
        if out:
            yield out


def _zstandard_chunks(module: Any, data: memoryview) -> Iterator[bytes]:
    # stream_reader.read(n) bounds each output step; decompressobj() would not.
    reader = module.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=False)
    while True:
        out = cast(bytes, reader.read(_OUT_CHUNK))
        if not out:
            return
        yield out


def _chunks(data: bytes | memoryview, fmt: str) -> Iterator[bytes]:
    """Decompressed output of one ``fmt`` stream at the start of ``data``, in bounded steps.

    Trailing bytes after the stream are ignored (a bzImage appends the size; a scan hands
    in everything after a magic).
    """
    view = memoryview(data)
    if fmt == "gzip":
        return _zlib_chunks(view, 16 + zlib.MAX_WBITS)
    if fmt == "xz":
        return _bounded_chunks(view, cast(_Decompressor, lzma.LZMADecompressor(lzma.FORMAT_XZ)))
    if fmt == "lzma":
        return _bounded_chunks(
            view, cast(_Decompressor, lzma.LZMADecompressor(lzma.FORMAT_ALONE))
        )
    if fmt == "bzip2":
        return _bounded_chunks(view, cast(_Decompressor, bz2.BZ2Decompressor()))
    if fmt == "zstd":
        module = _zstd_module()
        if module.__name__ == "compression.zstd":
            return _bounded_chunks(view, cast(_Decompressor, module.ZstdDecompressor()))
        return _zstandard_chunks(module, view)
    raise ValueError(f"no decoder for {fmt}-compressed data in the Python standard library")


def decompress(data: bytes | memoryview, fmt: str, limit: int = MAX_OUTPUT) -> bytes:
    """Decompress one ``fmt`` stream (gzip, xz, lzma, bzip2, zstd), refusing output past
    ``limit`` bytes so that a decompression bomb fails instead of filling memory."""
    out: list[bytes] = []
    total = 0
    try:
        for chunk in _chunks(data, fmt):
            total += len(chunk)
            if total > limit:
                raise ValueError(f"{fmt} data decompresses to more than {limit} bytes")
            out.append(chunk)
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
        raise ValueError(f"corrupt {fmt} data: {exc}") from exc
    return b"".join(out)


class _DecodedStream(io.RawIOBase):
    """A read-only file over decompressed data, for ``tarfile`` stream mode, with a cap on
    the total it will produce."""

    def __init__(self, data: bytes | memoryview, fmt: str | None, limit: int) -> None:
        super().__init__()
        self._chunks: Iterator[bytes] = iter((bytes(data),)) if fmt is None else _chunks(
            data, fmt
        )
        self._fmt = fmt or "uncompressed"
        self._buf = memoryview(b"")
        self._total = 0
        self._limit = limit

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        target = memoryview(b).cast("B")
        while not self._buf:
            try:
                chunk = next(self._chunks, None)
            except (zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
                raise ValueError(f"corrupt {self._fmt} data: {exc}") from exc
            if chunk is None:
                return 0
            self._total += len(chunk)
            if self._total > self._limit:
                raise ValueError(f"{self._fmt} data decompresses to more than {self._limit} bytes")
            self._buf = memoryview(chunk)
        n = min(len(target), len(self._buf))
        target[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


# --- ar and .deb -------------------------------------------------------------------------


def ar_members(data: bytes) -> dict[str, bytes]:
    """The members of a Unix ``ar`` archive (common, GNU and BSD long-name variants).

    The GNU symbol table ``/`` and long-name table ``//`` are consumed, not returned.
    """
    if not data.startswith(_AR_MAGIC):
        raise ValueError("offset 0x0: not an ar archive (bad magic)")
    members: dict[str, bytes] = {}
    long_names = b""
    pos = len(_AR_MAGIC)
    while pos < len(data):
        if data[pos : pos + 1] == b"\n":  # stray padding some writers leave at the end
            pos += 1
            continue
        if pos + _AR_HEADER > len(data):
            raise ValueError(f"offset {pos:#x}: truncated ar member header")
        header = data[pos : pos + _AR_HEADER]
        if header[58:60] != b"`\n":
            raise ValueError(f"offset {pos + 58:#x}: bad ar member header terminator")
        size_field = header[48:58].strip()
        if not size_field.isdigit():
            raise ValueError(f"offset {pos + 48:#x}: bad ar member size {size_field!r}")
        size = int(size_field)
        start = pos + _AR_HEADER
        if start + size > len(data):
            raise ValueError(
                f"offset {pos:#x}: ar member of {size} bytes runs past the end of the archive"
            )
        body = data[start : start + size]
        raw = header[:16].rstrip(b" ")
        if raw.startswith(b"#1/") and raw[3:].isdigit():  # BSD: name prefixes the data
            n = int(raw[3:])
            if n > size:
                raise ValueError(f"offset {pos:#x}: BSD ar name longer than its member")
            raw, body = body[:n].rstrip(b"\0"), body[n:]
        elif raw == b"//":
            long_names = body
            raw = b""
        elif raw == b"/" or raw == b"/SYM64/":
            raw = b""
        elif raw.startswith(b"/") and raw[1:].isdigit():  # GNU: offset into "//"
            off = int(raw[1:])
            end = long_names.find(b"/\n", off)
            if off >= len(long_names) or end < 0:
                raise ValueError(f"offset {pos:#x}: GNU ar long name {off} out of range")
            raw = long_names[off:end]
        elif raw.endswith(b"/"):
            raw = raw[:-1]
        if raw:
            name = raw.decode("utf-8", "replace")
            if name in members:
                raise ValueError(f"offset {pos:#x}: duplicate ar member {name!r}")
            members[name] = body
        pos = start + size + (size & 1)
    return members


def deb_members(data: bytes) -> dict[str, bytes]:
    """The ar members of a Debian binary package, after checking it is format 2.x."""
    members = ar_members(data)
    first = next(iter(members), None)
    if first != "debian-binary" or not members[first].startswith(b"2."):
        raise ValueError("not a Debian binary package (no 'debian-binary' 2.x first member)")
    return members


def _deb_tar(members: dict[str, bytes], stem: str) -> tuple[bytes, str | None]:
    for suffix, fmt in _TAR_SUFFIXES.items():
        body = members.get(stem + suffix)
        if body is not None:
            return body, fmt
    raise ValueError(f"Debian package has no {stem}.* member (has {sorted(members)})")


def _tar_find(
    tar_data: bytes, fmt: str | None, match: Callable[[str], bool]
) -> tuple[str, bytes] | None:
    """The first regular file in a (compressed) tar whose ``./``-less path matches.

    The tar is streamed: a kernel package's data.tar is ~400 MiB of modules, and the
    wanted file is usually near the start.
    """
    stream = _DecodedStream(tar_data, fmt, MAX_TAR_STREAM)
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                path = member.name.removeprefix("./")
                if not (member.isfile() and match(path)):
                    continue
                if member.size > MAX_OUTPUT:
                    raise ValueError(f"{path}: {member.size} bytes is over {MAX_OUTPUT}")
                f = tar.extractfile(member)
                if f is None:  # pragma: no cover - isfile() members always have data
                    continue
                return path, f.read()
    except tarfile.TarError as exc:
        raise ValueError(f"bad tar archive: {exc}") from exc
    return None


def deb_control(data: bytes) -> dict[str, str]:
    """The fields of a package's ``control`` file (Package, Version, ...); continuation
    lines are folded into their field."""
    body, fmt = _deb_tar(deb_members(data), "control.tar")
    found = _tar_find(body, fmt, lambda p: p == "control")
    if found is None:
        raise ValueError("control.tar has no 'control' file")
    fields: dict[str, str] = {}
    key = ""
    for line in found[1].decode("utf-8", "replace").splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip()
            fields[key] = value.strip()
    return fields


def deb_vmlinuz(data: bytes) -> tuple[str, bytes]:
    """``(kernel release, image bytes)`` of the ``boot/vmlinuz-<release>`` in a .deb."""
    body, fmt = _deb_tar(deb_members(data), "data.tar")
    found = _tar_find(body, fmt, lambda p: p.startswith("boot/vmlinuz-"))
    if found is None:
        raise ValueError("package has no boot/vmlinuz-* file")
    path, image = found
    return path.removeprefix("boot/vmlinuz-"), image


# --- bzImage -> vmlinux ------------------------------------------------------------------


def _format_of(payload: bytes | memoryview) -> str | None:
    head = bytes(payload[:8])
    for fmt, magic in _MAGICS:
        if head.startswith(magic):
            return fmt
    return None


def _try_elf(payload: bytes | memoryview, fmt: str, limit: int) -> bytes | None:
    """The decompressed payload if it is a whole stream starting with the ELF magic, else
    None. Over-limit output and a missing zstd decoder still raise."""
    out: list[bytes] = []
    total = 0
    try:
        for chunk in _chunks(payload, fmt):
            if not out and total == 0 and not (chunk[:4] == ELF_MAGIC[: len(chunk[:4])]):
                return None  # a false magic: stop at the first output chunk
            total += len(chunk)
            if total > limit:
                raise ValueError(f"{fmt} payload decompresses to more than {limit} bytes")
            out.append(chunk)
    except (zlib.error, lzma.LZMAError, OSError, EOFError):
        return None
    except _ZstdMissing:
        raise
    except ValueError:
        if total > limit:
            raise
        return None  # zstandard reports corrupt input as ZstdError, a ValueError
    result = b"".join(out)
    return result if result.startswith(ELF_MAGIC) else None


def _header_payload(image: bytes) -> memoryview | None:
    """The compressed payload that an x86 boot header (protocol >= 2.08) points at."""
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        return None
    (version,) = struct.unpack_from("<H", image, 0x206)
    if version < 0x208:
        return None
    setup_sects = image[0x1F1] or 4
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if length == 0 or start + length > len(image):
        return None
    return memoryview(image)[start : start + length]


def extract_vmlinux(image: bytes, limit: int = MAX_OUTPUT) -> bytes:
    """The ELF vmlinux inside a compressed kernel image (x86 bzImage or similar).

    Like the kernel's scripts/extract-vmlinux: the payload the boot header names is tried
    first, then every gzip/xz/bzip2/lzma/zstd magic in the image; the first that
    decompresses to an ELF file wins. An uncompressed ELF is returned as is.
    """
    if image.startswith(ELF_MAGIC):
        return image
    zstd_missing: _ZstdMissing | None = None
    unsupported: set[str] = set()
    header = _header_payload(image)
    if header is not None:
        fmt = _format_of(header)
        if fmt is not None:
            try:
                found = _try_elf(header, fmt, limit)
            except _ZstdMissing as exc:
                raise ValueError(f"kernel payload is zstd-compressed: {exc}") from exc
            except ValueError as exc:
                if fmt in ("lzo", "lz4"):
                    raise ValueError(
                        f"kernel payload is {fmt}-compressed, which the Python standard "
                        f"library cannot decompress"
                    ) from exc
                raise
            if found is not None:
                return found
    view = memoryview(image)
    for fmt, magic in _MAGICS:
        pos = image.find(magic)
        while pos >= 0:
            if fmt in ("lzo", "lz4"):
                unsupported.add(fmt)
                break
            try:
                found = _try_elf(view[pos:], fmt, limit)
            except _ZstdMissing as exc:
                zstd_missing = exc
                break
            if found is not None:
                return found
            pos = image.find(magic, pos + 1)
    if zstd_missing is not None:
        raise ValueError(f"no gzip/xz/bzip2/lzma vmlinux found; {zstd_missing}")
    extra = f" (saw {'/'.join(sorted(unsupported))} magic, which has no stdlib decoder)"
    raise ValueError("no compressed ELF vmlinux found in the image" + (extra if unsupported
                                                                        else ""))


# --- ELF ---------------------------------------------------------------------------------


def elf_section(data: bytes, name: str) -> bytes | None:
    """The file bytes of the first section called ``name`` (``b""`` for SHT_NOBITS), or
    None if there is none. ELF32/ELF64, either byte order; raises ValueError naming the
    offset on anything malformed."""
    size = len(data)

    def need(offset: int, length: int, what: str) -> None:
        if offset < 0 or length < 0 or offset + length > size:
            raise ValueError(
                f"offset {offset:#x}: {what} of {length} bytes runs past the end of the file "
                f"({size} bytes)"
            )

    need(0, 16, "ELF identification")
    if data[:4] != ELF_MAGIC:
        raise ValueError("offset 0x0: not an ELF file (bad magic)")
    ei_class, ei_data = data[4], data[5]
    if ei_class not in (1, 2):
        raise ValueError(f"offset 0x4: bad ELF class {ei_class}")
    if ei_data not in (1, 2):
        raise ValueError(f"offset 0x5: bad ELF data encoding {ei_data}")
    e = "<" if ei_data == 1 else ">"
    is64 = ei_class == 2
    # e_shoff, then e_shentsize, e_shnum, e_shstrndx
    if is64:
        need(0, 64, "ELF64 header")
        (shoff,) = struct.unpack_from(e + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x3A)
        sh = struct.Struct(e + "IIQQQQIIQQ")
    else:
        need(0, 52, "ELF32 header")
        (shoff,) = struct.unpack_from(e + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x2E)
        sh = struct.Struct(e + "IIIIIIIIII")
    if shoff == 0:
        return None  # no section header table
    if shentsize < sh.size:
        raise ValueError(f"offset {shoff:#x}: section header size {shentsize} < {sh.size}")

    def header(index: int) -> tuple[int, ...]:
        off = shoff + index * shentsize
        need(off, sh.size, f"section header {index}")
        return sh.unpack_from(data, off)

    if shnum == 0:  # >= SHN_LORESERVE sections: the count is in section 0's sh_size
        shnum = header(0)[5]
    if shstrndx == 0xFFFF:  # SHN_XINDEX: the index is in section 0's sh_link
        shstrndx = header(0)[6]
    need(shoff, shnum * shentsize, "section header table")
    if not 0 < shstrndx < shnum:
        raise ValueError(f"offset {shoff:#x}: section name table index {shstrndx} out of range")
    strtab = header(shstrndx)
    str_off, str_size = strtab[4], strtab[5]
    need(str_off, str_size, "section name table")
    names = memoryview(data)[str_off : str_off + str_size]
    want = name.encode()
    for index in range(shnum):
        sec = header(index)
        name_off = sec[0]
        if name_off >= str_size:
            if index == 0:
                continue  # the null section's name may be anything
            raise ValueError(
                f"offset {shoff + index * shentsize:#x}: section {index} name offset "
                f"{name_off} is past the name table ({str_size} bytes)"
            )
        end = bytes(names[name_off:]).find(b"\0") if name_off < str_size else -1
        if end < 0:
            raise ValueError(f"offset {str_off + name_off:#x}: unterminated section name")
        if bytes(names[name_off : name_off + end]) != want:
            continue
        if sec[1] == 8:  # SHT_NOBITS occupies no file bytes
            return b""
        need(sec[4], sec[5], f"section {name!r}")
        return data[sec[4] : sec[4] + sec[5]]
    return None
