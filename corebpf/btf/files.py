"""Opening BTF from wherever it lives: raw files, ELF .BTF sections, compressed archives.

The container is recognised by its magic bytes, not its file name, so a BTFHub
``.btf.tar.xz``, a ``.xz``/``.gz`` of raw BTF, a vmlinux, a kernel module or a BPF object
all open with :func:`load`.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable

from ..elf import ELF_MAGIC, ElfError, ElfFile
from ..errors import BTFError
from .spec import Spec

TYPE_CHECKING = False

if TYPE_CHECKING:
    from ..cache import SourceKey

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
    index of a raw BTF file is kept in corebpf's cache (:mod:`corebpf.cache`), keyed by the
    file's identity, so that the next process skips the indexing pass; for the kernel's
    own BTF (sysfs, keyed by this boot) a copy of the bytes is kept too. A new index
    replaces the file's earlier ones. ``index_names`` records every type's name offset
    while indexing, for callers about to search many names; ``find_names`` (with
    ``prefix_sep``) finds the types of those names while indexing instead, for callers
    that know every name they will search (:class:`Spec`).
    """
    from .. import cache

    source = str(path)
    if index_cache is None:
        index_cache = cache.enabled()
    key = copy_name = None
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data: bytes | memoryview | None = None
            if index_cache:
                key = cache.source_key(path, st)
            if key is not None and key.path.startswith("/sys/"):
                # sysfs hands BTF out a page per read(2): a copy kept beside the index
                # (same key: this boot) is one read of a regular file
                copy_name = key.stem + ".btf"
                mapped = cache.read_mapped("kernel-btf", copy_name, size=st.st_size)
                if mapped is not None:  # one page of the real thing must agree
                    head = f.read(4096)
                    data = mapped if mapped[:len(head)] == head else None
                    f.seek(0)
            if data is None:
                data = f.read()
            else:
                copy_name = None  # already there
    except OSError as e:
        raise BTFError(f"cannot read: {e.strerror}", source=source) from None
    raw: bytes | memoryview
    if isinstance(data, memoryview):
        raw = data  # the cache's copy of raw BTF (Spec checks its header)
    else:
        raw, source = unwrap(data, source)
    if raw is not data:
        key = None  # an index of the unwrapped bytes: not kept (the file is not raw BTF)
    spec: Spec | None = None
    if key is not None:
        cached = _read_index(key)
        if cached is not None:
            try:
                spec = Spec(raw, base=base, source=source, _offsets=cached[0],
                            _by_name=cached[1])
            except BTFError:
                pass
    if spec is None:
        spec = Spec(raw, base=base, source=source, index_names=index_names,
                    find_names=find_names, prefix_sep=prefix_sep)
        if key is not None:
            _write_index(key, spec)
    if copy_name is not None and key is not None and isinstance(raw, bytes):
        cache.write("kernel-btf", copy_name, raw)
    return spec


_INDEX_MAGIC = b"CBIX\x02" + sys.byteorder[0].encode()


def _read_index(key: SourceKey) -> tuple[memoryview, tuple[memoryview, memoryview]] | None:
    """Offsets, then name offsets sorted with their ids: three views of equal length onto
    the mapped entry (native byte order, as written; nothing is copied)."""
    from .. import cache

    blob = cache.read_mapped("btf-index", key.stem + ".idx", ident=key.ident)
    if blob is None:
        return None
    start = len(_INDEX_MAGIC)
    body = len(blob) - start
    if blob[:start] != _INDEX_MAGIC or body <= 0 or body % 12:
        return None
    n = body // 12
    words = blob[start:].cast("I")  # unaligned reads are fine: memoryview copies each
    return words[:n], (words[n : 2 * n], words[2 * n :])


def _write_index(key: SourceKey, spec: Spec) -> None:
    """The file's earlier identities' entries go: it changed, they are of no use."""
    from .. import cache

    keys, ids = spec.name_offset_index()
    cache.write("btf-index", key.stem + ".idx",
                _INDEX_MAGIC + spec.offsets.tobytes() + keys.tobytes() + ids.tobytes(),
                ident=key.ident, replaces=key.prefix)


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

