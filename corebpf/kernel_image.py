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

from .elf import ElfError, ElfFile
from .errors import KernelImageError

ELF_MAGIC = b"\x7fELF"

#: Ceiling on one decompressed blob (a vmlinux, a package member): a hostile payload
#: must not be able to take the machine's memory. Real vmlinux images are ~60-100 MiB.
MAX_OUTPUT = 512 << 20
#: Ceiling on a streamed data.tar: it is never held in memory, but decoding it costs time.
MAX_TAR_STREAM = 4 << 30

_LZMA_MEMLIMIT = 256 << 20  # the kernel's xz uses a 32 MiB dictionary, lzma -9 64 MiB
_IN_CHUNK = 64 << 10
_ZSTD_IN_CHUNK = 256
_OUT_CHUNK = 1 << 20

# The magics scripts/extract-vmlinux looks for, in its order. lzo has no decoder here: it
# is recognised only to name it in the error.
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


class _ZstdMissing(KernelImageError):
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
    # decompressobj() has no max_length, so feed it slivers: a zstd block takes >= 4 input
    # bytes and gives <= 128 KiB, so one call yields at most ~8 MiB. (stream_reader would
    # bound the output, but it reads the bzImage's appended size as a bad next frame.)
    d = module.ZstdDecompressor().decompressobj()
    pos = 0
    while not d.eof:
        if pos >= len(data):
            raise EOFError("compressed stream ends before its end marker")
        out = cast(bytes, d.decompress(data[pos : pos + _ZSTD_IN_CHUNK]))
        pos += _ZSTD_IN_CHUNK
        if out:
            yield out


def _zstd_chunks(data: memoryview) -> Iterator[bytes]:
    module = _zstd_module()  # raises here, before the first chunk is asked for
    if module.__name__ == "compression.zstd":
        inner = _bounded_chunks(data, cast(_Decompressor, module.ZstdDecompressor()))
    else:
        inner = _zstandard_chunks(module, data)

    def mapped() -> Iterator[bytes]:
        try:
            yield from inner
        except module.ZstdError as exc:  # neither module's error is a stdlib one
            raise EOFError(str(exc)) from exc

    return mapped()


_LZ4_LEGACY_MAGIC = b"\x02\x21\x4c\x18"
_LZ4_LEGACY_BLOCK = 8 << 20  # the legacy frame's fixed uncompressed block size
_LZ4_LEGACY_BOUND = _LZ4_LEGACY_BLOCK + _LZ4_LEGACY_BLOCK // 255 + 16  # LZ4_compressBound


def lz4_block(src: bytes | memoryview, max_out: int = _LZ4_LEGACY_BLOCK) -> bytes:
    """Decode one raw LZ4 block (no frame, no dictionary), refusing output past ``max_out``.

    Pure Python because the stdlib has no LZ4 and Debian's cloud kernels are LZ4-packed;
    ~10 MB/s, which is enough for one kernel image.
    """
    src = bytes(src)
    out = bytearray()
    pos, end = 0, len(src)
    while True:
        if pos >= end:
            raise KernelImageError(f"lz4 block offset {pos:#x}: truncated (no token)")
        token = src[pos]
        pos += 1
        n = token >> 4
        if n == 15:
            while True:
                if pos >= end:
                    raise KernelImageError(f"lz4 block offset {pos:#x}: truncated literal length")
                b = src[pos]
                pos += 1
                n += b
                if b != 255:
                    break
        if pos + n > end:
            raise KernelImageError(f"lz4 block offset {pos:#x}: {n} literals run past the block")
        if len(out) + n > max_out:
            raise KernelImageError(f"lz4 block decodes to more than {max_out} bytes")
        out += src[pos : pos + n]
        pos += n
        if pos == end:
            return bytes(out)  # the last sequence is literals only
        if pos + 2 > end:
            raise KernelImageError(f"lz4 block offset {pos:#x}: truncated match offset")
        dist = src[pos] | src[pos + 1] << 8
        if dist == 0 or dist > len(out):
            raise KernelImageError(f"lz4 block offset {pos:#x}: bad match distance {dist}")
        pos += 2
        n = (token & 15) + 4
        if n == 19:
            while True:
                if pos >= end:
                    raise KernelImageError(f"lz4 block offset {pos:#x}: truncated match length")
                b = src[pos]
                pos += 1
                n += b
                if b != 255:
                    break
        if len(out) + n > max_out:
            raise KernelImageError(f"lz4 block decodes to more than {max_out} bytes")
        start = len(out) - dist
        if n <= dist:
            out += out[start : start + n]
        else:  # the match overlaps its own output: repeat the last ``dist`` bytes
            pattern = out[start:]
            out += (pattern * (n // dist + 1))[:n]


def _lz4_legacy_chunks(data: memoryview) -> Iterator[bytes]:
    """The blocks of an LZ4 legacy frame (``lz4 -l``, what the kernel's lz4 packing uses).

    The frame has no end marker: like the kernel's unlz4, it ends where the input ends,
    and a block size that cannot be one (the bzImage's appended length, junk after a
    scanned magic) is taken as the end too.
    """
    if bytes(data[:4]) != _LZ4_LEGACY_MAGIC:
        raise EOFError("not an lz4 legacy frame (bad magic)")
    pos = 4
    blocks = 0
    while pos + 4 <= len(data):
        if bytes(data[pos : pos + 4]) == _LZ4_LEGACY_MAGIC:  # concatenated frames
            pos += 4
            continue
        (size,) = struct.unpack_from("<I", data, pos)
        if size == 0 or size > _LZ4_LEGACY_BOUND or pos + 4 + size > len(data):
            break
        try:
            yield lz4_block(data[pos + 4 : pos + 4 + size])
        except ValueError as exc:
            raise EOFError(f"offset {pos + 4:#x}: {exc}") from exc
        blocks += 1
        pos += 4 + size
    if blocks == 0:
        raise EOFError("lz4 legacy frame has no block")


def _chunks(data: bytes | memoryview, fmt: str) -> Iterator[bytes]:
    """Decompressed output of one ``fmt`` stream at the start of ``data``, in bounded steps.

    Trailing bytes after the stream are ignored (a bzImage appends the size; a scan hands
    in everything after a magic).
    """
    view = memoryview(data)
    if fmt == "gzip":
        return _zlib_chunks(view, 16 + zlib.MAX_WBITS)
    if fmt in ("xz", "lzma"):
        form = lzma.FORMAT_XZ if fmt == "xz" else lzma.FORMAT_ALONE
        # The memlimit stops a false or hostile header from declaring a 4 GiB dictionary.
        d = lzma.LZMADecompressor(form, memlimit=_LZMA_MEMLIMIT)
        return _bounded_chunks(view, cast(_Decompressor, d))
    if fmt == "bzip2":
        return _bounded_chunks(view, cast(_Decompressor, bz2.BZ2Decompressor()))
    if fmt == "zstd":
        return _zstd_chunks(view)
    if fmt == "lz4":
        return _lz4_legacy_chunks(view)
    raise KernelImageError(f"no decoder for {fmt}-compressed data in the Python standard library")


def decompress(data: bytes | memoryview, fmt: str, limit: int = MAX_OUTPUT) -> bytes:
    """Decompress one ``fmt`` stream (gzip, xz, lzma, bzip2, lz4 legacy, zstd), refusing
    output past ``limit`` bytes so that a decompression bomb fails instead of filling
    memory."""
    out: list[bytes] = []
    total = 0
    try:
        for chunk in _chunks(data, fmt):
            total += len(chunk)
            if total > limit:
                raise KernelImageError(f"{fmt} data decompresses to more than {limit} bytes")
            out.append(chunk)
    except (zlib.error, lzma.LZMAError, OSError, EOFError) as exc:
        raise KernelImageError(f"corrupt {fmt} data: {exc}") from exc
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
                raise KernelImageError(f"corrupt {self._fmt} data: {exc}") from exc
            if chunk is None:
                return 0
            self._total += len(chunk)
            if self._total > self._limit:
                raise KernelImageError(
                    f"{self._fmt} data decompresses to more than {self._limit} bytes")
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
        raise KernelImageError("offset 0x0: not an ar archive (bad magic)")
    members: dict[str, bytes] = {}
    long_names = b""
    pos = len(_AR_MAGIC)
    while pos < len(data):
        if data[pos : pos + 1] == b"\n":  # stray padding some writers leave at the end
            pos += 1
            continue
        if pos + _AR_HEADER > len(data):
            raise KernelImageError(f"offset {pos:#x}: truncated ar member header")
        header = data[pos : pos + _AR_HEADER]
        if header[58:60] != b"`\n":
            raise KernelImageError(f"offset {pos + 58:#x}: bad ar member header terminator")
        size_field = header[48:58].strip()
        if not size_field.isdigit():
            raise KernelImageError(f"offset {pos + 48:#x}: bad ar member size {size_field!r}")
        size = int(size_field)
        start = pos + _AR_HEADER
        if start + size > len(data):
            raise KernelImageError(
                f"offset {pos:#x}: ar member of {size} bytes runs past the end of the archive"
            )
        body = data[start : start + size]
        raw = header[:16].rstrip(b" ")
        if raw.startswith(b"#1/") and raw[3:].isdigit():  # BSD: name prefixes the data
            n = int(raw[3:])
            if n > size:
                raise KernelImageError(f"offset {pos:#x}: BSD ar name longer than its member")
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
                raise KernelImageError(f"offset {pos:#x}: GNU ar long name {off} out of range")
            raw = long_names[off:end]
        elif raw.endswith(b"/"):
            raw = raw[:-1]
        if raw:
            name = raw.decode("utf-8", "replace")
            if name in members:
                raise KernelImageError(f"offset {pos:#x}: duplicate ar member {name!r}")
            members[name] = body
        pos = start + size + (size & 1)
    return members


def deb_members(data: bytes) -> dict[str, bytes]:
    """The ar members of a Debian binary package, after checking it is format 2.x."""
    members = ar_members(data)
    first = next(iter(members), None)
    if first != "debian-binary" or not members[first].startswith(b"2."):
        raise KernelImageError("not a Debian binary package (no 'debian-binary' 2.x first member)")
    return members


def _deb_tar(members: dict[str, bytes], stem: str) -> tuple[bytes, str | None]:
    for suffix, fmt in _TAR_SUFFIXES.items():
        body = members.get(stem + suffix)
        if body is not None:
            return body, fmt
    raise KernelImageError(f"Debian package has no {stem}.* member (has {sorted(members)})")


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
                    raise KernelImageError(f"{path}: {member.size} bytes is over {MAX_OUTPUT}")
                f = tar.extractfile(member)
                if f is None:  # pragma: no cover - isfile() members always have data
                    continue
                return path, f.read()
    except tarfile.TarError as exc:
        raise KernelImageError(f"bad tar archive: {exc}") from exc
    return None


def deb_control(data: bytes) -> dict[str, str]:
    """The fields of a package's ``control`` file (Package, Version, ...); continuation
    lines are folded into their field."""
    body, fmt = _deb_tar(deb_members(data), "control.tar")
    found = _tar_find(body, fmt, lambda p: p == "control")
    if found is None:
        raise KernelImageError("control.tar has no 'control' file")
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
        raise KernelImageError("package has no boot/vmlinuz-* file")
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
    None. Output past ``limit`` and a missing zstd decoder still raise."""
    chunks = _chunks(payload, fmt)
    out: list[bytes] = []
    total = 0
    try:
        for chunk in chunks:
            if total < 4 <= total + len(chunk) and not b"".join([*out, chunk]).startswith(
                ELF_MAGIC
            ):
                return None  # a false magic: give up after the first few output bytes
            total += len(chunk)
            if total > limit:
                break
            out.append(chunk)
    except (zlib.error, lzma.LZMAError, OSError, EOFError):
        return None
    if total > limit:
        raise KernelImageError(f"{fmt} payload decompresses to more than {limit} bytes")
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


def image_compression(image: bytes) -> str | None:
    """How an x86 bzImage's payload is packed (gzip, xz, lz4, zstd, ...) per its boot
    header, or None when the header names none: provenance for test data."""
    payload = _header_payload(image)
    return None if payload is None else _format_of(payload)


def extract_vmlinux(image: bytes, limit: int = MAX_OUTPUT) -> bytes:
    """The ELF vmlinux inside a compressed kernel image (x86 bzImage or similar).

    Like the kernel's scripts/extract-vmlinux: the payload the boot header names is tried
    first, then every gzip/xz/bzip2/lzma/lz4/zstd magic in the image; the first that
    decompresses to an ELF file wins. An uncompressed ELF is returned as is. zstd needs
    Python 3.14's ``compression.zstd`` or the ``zstandard`` module; the rest is stdlib
    (lz4 is decoded here, in pure Python).
    """
    if image.startswith(ELF_MAGIC):
        return image
    zstd_missing: _ZstdMissing | None = None
    unsupported: set[str] = set()
    header = _header_payload(image)
    fmt = None if header is None else _format_of(header)
    if fmt == "lzo":
        raise KernelImageError("kernel payload is lzo-compressed, which corebpf cannot decompress")
    if header is not None and fmt is not None:
        try:
            found = _try_elf(header, fmt, limit)
        except _ZstdMissing as exc:
            raise KernelImageError(f"kernel payload is zstd-compressed: {exc}") from exc
        if found is not None:
            return found
    view = memoryview(image)
    for fmt, magic in _MAGICS:
        pos = image.find(magic)
        while pos >= 0:
            if fmt == "lzo":
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
        raise KernelImageError(f"no gzip/xz/bzip2/lzma/lz4 vmlinux found; {zstd_missing}")
    why = "no compressed ELF vmlinux found in the image"
    if unsupported:
        why += " (it has lzo magic, which corebpf cannot decompress)"
    raise KernelImageError(why)


# --- ELF ---------------------------------------------------------------------------------


def elf_section(data: bytes, name: str) -> bytes | None:
    """The file bytes of the first section called ``name`` (``b""`` for SHT_NOBITS), or
    None if there is none; a malformed ELF raises KernelImageError naming the offset."""
    try:
        elf = ElfFile(data, source="vmlinux")
        if not elf.sections:
            return None
        sec = elf.section(name)
        return None if sec is None else bytes(elf.section_data(sec))
    except ElfError as e:
        raise KernelImageError(str(e)) from None
