"""Opening BTF from wherever it lives: raw files, ELF .BTF sections, compressed archives.

The container is recognised by its magic bytes, not its file name, so a BTFHub
``.btf.tar.xz``, a ``.xz``/``.gz`` of raw BTF, a vmlinux, a kernel module or a BPF object
all open with :func:`load`.
"""

from __future__ import annotations

import io
import os
import sys
from array import array
from collections.abc import Iterable

from ..elf import ELF_MAGIC, ElfError, ElfFile
from ..errors import BTFError
from .spec import Spec

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
#: Bound on what a compressed input may expand to (the largest kernel BTF is ~10 MB).
MAX_DECOMPRESSED = 256 << 20

_XZ_MAGIC = b"\xfd7zXZ\x00"
_GZ_MAGIC = b"\x1f\x8b"


def _decompress_bounded(data: bytes, source: str) -> bytes:
    import lzma
    import zlib

    try:
        if data.startswith(_XZ_MAGIC):
            xz = lzma.LZMADecompressor()
            out = xz.decompress(data, max_length=MAX_DECOMPRESSED + 1)
        else:
            gz = zlib.decompressobj(wbits=31)
            out = gz.decompress(data, MAX_DECOMPRESSED + 1)
    except (lzma.LZMAError, zlib.error, EOFError, ValueError) as e:
        raise BTFError(f"corrupt compressed data: {e}", source=source) from None
    if len(out) > MAX_DECOMPRESSED:
        raise BTFError(
            f"decompresses to more than {MAX_DECOMPRESSED >> 20} MiB", source=source
        )
    return out


def _from_tar(data: bytes, source: str) -> tuple[bytes, str]:
    """The one .btf regular file of a BTFHub tarball (read in memory, never extracted)."""
    import tarfile

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = [m for m in tar.getmembers() if m.isreg()]
            btf = [m for m in members if m.name.endswith(".btf")] or members
            if len(btf) != 1:
                raise BTFError(
                    f"expected one BTF file in the tarball, found {len(btf)}", source=source
                )
            f = tar.extractfile(btf[0])
            assert f is not None
            return f.read(), f"{source}:{btf[0].name}"
    except (tarfile.TarError, EOFError, ValueError) as e:
        raise BTFError(f"corrupt tarball: {e}", source=source) from None


_BTF_MAGICS = (b"\x9f\xeb", b"\xeb\x9f")


def _is_tar(data: bytes) -> bool:
    return len(data) >= 262 and data[257:262] == b"ustar"


def unwrap(data: bytes, source: str = "<bytes>") -> tuple[bytes, str]:
    """Peel compression, tar and ELF wrappers down to the raw BTF blob."""
    for _ in range(4):
        if data.startswith(_XZ_MAGIC) or data.startswith(_GZ_MAGIC):
            data = _decompress_bounded(data, source)
        elif _is_tar(data):
            data, source = _from_tar(data, source)
        elif data.startswith(ELF_MAGIC):
            try:
                elf = ElfFile(data, source=source)
                sec = elf.section(".BTF")
                if sec is None:
                    raise BTFError("ELF file has no .BTF section", source=source)
                return bytes(elf.section_data(sec)), source
            except ElfError as e:
                raise BTFError(str(e)) from None
        elif data[:2] in _BTF_MAGICS:
            return data, source
        else:
            raise BTFError(f"not BTF (starts with {data[:4].hex() or 'nothing'}): expected raw "
                           "BTF (magic 0xeb9f), an ELF file with a .BTF section (vmlinux, "
                           "module, BPF object), either compressed (.xz, .gz), or a BTFHub "
                           ".btf.tar.xz", source=source)
    raise BTFError("too many nested containers", source=source)


def load(
    path: str | os.PathLike[str], *, base: Spec | None = None, index_cache: bool | None = None,
    index_names: bool = False, find_names: Iterable[str] = (), prefix_sep: str = "",
) -> Spec:
    """Open BTF from a file in any supported container.

    With ``index_cache`` (default: on unless ``COREBPF_NO_CACHE`` is set) the type offset
    index of a raw BTF file is kept in the user's cache directory, keyed by the file's
    identity, so that the next process skips the indexing pass; for the kernel's own BTF
    (sysfs, keyed by this boot) a copy of the bytes is kept too. ``index_names`` records
    every type's name offset while indexing, for callers about to search many names;
    ``find_names`` (with ``prefix_sep``) finds the types of those names while indexing
    instead, for callers that know every name they will search (:class:`Spec`).
    """
    source = str(path)
    if index_cache is None:
        index_cache = not os.environ.get("COREBPF_NO_CACHE")
    copy_file = key = None
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = None
            if index_cache:
                key = _cache_path(path, st)
            if key is not None and os.path.realpath(path).startswith("/sys/"):
                # sysfs hands BTF out a page per read(2): a copy kept beside the index
                # (same key: this boot) is one read of a regular file
                copy_file = key[:-4] + ".btf"
                data = _read_copy(copy_file, st.st_size)
                if data is not None:  # one page of the real thing must agree
                    head = f.read(4096)
                    data = data if data.startswith(head) else None
                    f.seek(0)
            if data is None:
                data = f.read()
            else:
                copy_file = None  # already there
    except OSError as e:
        raise BTFError(f"cannot read: {e.strerror}", source=source) from None
    raw, source = unwrap(data, source)
    cache_file = key if raw is data else None
    spec: Spec | None = None
    if cache_file is not None:
        cached = _read_index(cache_file)
        if cached is not None:
            try:
                spec = Spec(raw, base=base, source=source, _offsets=cached[0],
                            _by_name=cached[1])
            except BTFError:
                pass
    if spec is None:
        spec = Spec(raw, base=base, source=source, index_names=index_names,
                    find_names=find_names, prefix_sep=prefix_sep)
        if cache_file is not None:
            _write_index(cache_file, spec)
    if copy_file is not None and cache_file is not None:
        _write_atomic(copy_file, raw)
    return spec


def _read_copy(copy_file: str, size: int) -> bytes | None:
    try:
        with open(copy_file, "rb") as f:
            data = f.read(size + 1)
    except OSError:
        return None
    return data if len(data) == size else None


def _write_atomic(target: str, data: bytes) -> None:
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except OSError:
        pass  # a read-only home is no reason to fail


_INDEX_MAGIC = b"CBIX\x02" + sys.byteorder[0].encode()


def _cache_dir() -> str:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "corebpf", "btf-index")


def _cache_path(path: str | os.PathLike[str], st: os.stat_result) -> str | None:
    """Keyed by the file's identity (device, inode, size, mtime; the boot for sysfs)."""
    import zlib

    real = os.path.realpath(path)
    key = f"{real}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"
    if real.startswith("/sys/"):
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                key += "|" + f.read().strip()
        except OSError:
            return None
    raw = key.encode()
    name = f"{st.st_ino:x}-{st.st_size:x}-{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}.idx"
    return os.path.join(_cache_dir(), name)


def _read_index(
    cache_file: str,
) -> tuple[array[int], tuple[array[int], array[int]]] | None:
    """Offsets, then name offsets sorted with their ids: three arrays of equal length."""
    try:
        with open(cache_file, "rb") as f:
            blob = f.read()
    except OSError:
        return None
    body = len(blob) - len(_INDEX_MAGIC)
    if not blob.startswith(_INDEX_MAGIC) or body <= 0 or body % 12:
        return None
    n = body // 12
    parts = []
    for k in range(3):
        a = array("I")
        start = len(_INDEX_MAGIC) + 4 * n * k
        a.frombytes(blob[start : start + 4 * n])
        parts.append(a)
    return parts[0], (parts[1], parts[2])


def _write_index(cache_file: str, spec: Spec) -> None:
    keys, ids = spec.name_offset_index()
    _write_atomic(cache_file,
                  _INDEX_MAGIC + spec.offsets.tobytes() + keys.tobytes() + ids.tobytes())


def from_bytes(data: bytes, *, base: Spec | None = None, source: str = "<bytes>",
               index_names: bool = False, find_names: Iterable[str] = (),
               prefix_sep: str = "") -> Spec:
    """Parse BTF held in memory (raw, ELF or compressed); the options are :class:`Spec`'s."""
    raw, source = unwrap(data, source)
    return Spec(raw, base=base, source=source, index_names=index_names,
                find_names=find_names, prefix_sep=prefix_sep)


def kernel() -> Spec:
    """This machine's kernel BTF."""
    return load(KERNEL_BTF)


def kernel_module(name: str, *, base: Spec | None = None) -> Spec:
    """Split BTF of a loaded kernel module, on top of vmlinux."""
    return load(f"/sys/kernel/btf/{name}", base=base if base is not None else kernel())


__all__ = ["KERNEL_BTF", "from_bytes", "kernel", "kernel_module", "load", "unwrap"]

