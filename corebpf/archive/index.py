"""An index of every kernel in an archive: what it is (distro, version, arch, release),
what its file is (sha256, size) and what its BTF holds (size, sha256, type count).

Built in parallel (one worker reads and indexes each kernel's BTF) and written as JSON,
so that tools can pick kernels without opening a single tarball.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

from .._record import field, record
from ..errors import ArchiveError
from .parallel import ExecutorLike, map_kernels
from .sources import KernelEntry, discover, file_sha256, read_btf

INDEX_FORMAT = "corebpf-archive-index"
INDEX_VERSION = 1


@record
class IndexedKernel:
    """One kernel's row of the index."""

    distro: str
    version: str
    arch: str
    release: str
    path: str
    kind: str
    #: the file as found in the archive
    sha256: str
    size: int
    #: its raw BTF, once unpacked
    btf_sha256: str
    btf_size: int
    types: int

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__match_args__}


@record
class ArchiveIndex:
    """Every kernel that could be indexed, and each that could not with why."""

    kernels: list[IndexedKernel] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"format": INDEX_FORMAT, "version": INDEX_VERSION,
                "kernels": [k.to_json() for k in self.kernels],
                "errors": [{"path": p, "error": e} for p, e in self.errors]}

    @classmethod
    def from_json(cls, doc: Any, source: str = "<index>") -> ArchiveIndex:
        """Read back what :meth:`to_json` wrote; ArchiveError names what is wrong."""
        if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
            raise ArchiveError(f"{source}: not a corebpf archive index")
        if doc.get("version") != INDEX_VERSION:
            raise ArchiveError(f"{source}: index version {doc.get('version')!r} is not "
                               f"{INDEX_VERSION}")
        out = cls()
        names = IndexedKernel.__match_args__
        for i, row in enumerate(doc.get("kernels", [])):
            if not isinstance(row, dict) or set(row) != set(names):
                raise ArchiveError(f"{source}: kernel #{i} does not have the index's fields")
            k = IndexedKernel(**row)
            for name in names:
                want = int if name in ("size", "btf_size", "types") else str
                if type(getattr(k, name)) is not want:
                    raise ArchiveError(f"{source}: kernel #{i}: {name} is not {want.__name__}")
            out.kernels.append(k)
        for i, row in enumerate(doc.get("errors", [])):
            if not isinstance(row, dict) or not isinstance(row.get("path"), str) \
                    or not isinstance(row.get("error"), str):
                raise ArchiveError(f"{source}: error #{i} is malformed")
            out.errors.append((row["path"], row["error"]))
        return out

    def write(self, path: str | os.PathLike[str]) -> None:
        try:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(self.to_json(), f, indent=1)
                f.write("\n")
        except OSError as e:
            raise ArchiveError(f"{os.fspath(path)}: cannot write: {e.strerror}") from None

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ArchiveIndex:
        try:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
        except OSError as e:
            raise ArchiveError(f"{os.fspath(path)}: cannot read: {e.strerror}") from None
        except ValueError as e:
            raise ArchiveError(f"{os.fspath(path)}: not JSON: {e}") from None
        return cls.from_json(doc, os.fspath(path))


def index_kernel(entry: KernelEntry) -> IndexedKernel:
    """One kernel indexed: its BTF read and its types counted (a worker's job)."""
    from ..btf import from_bytes

    raw = read_btf(entry)
    try:
        spec = from_bytes(raw, source=entry.path)
        types = spec.type_count - 1  # without void
    except ArchiveError:
        raise
    except Exception as e:
        raise ArchiveError(f"{entry.path}: {e}") from None
    return IndexedKernel(
        distro=entry.distro, version=entry.version, arch=entry.arch, release=entry.release,
        path=entry.path, kind=entry.kind, sha256=file_sha256(entry.path),
        size=os.path.getsize(entry.path), btf_sha256=hashlib.sha256(raw).hexdigest(),
        btf_size=len(raw), types=types)


def build_index(archive: str | os.PathLike[str] | Iterable[KernelEntry], *,
                executor: ExecutorLike | None = None, jobs: int | None = None,
                progress: bool | None = None) -> ArchiveIndex:
    """Index every kernel of ``archive`` (a directory or entries already discovered);
    kernels that cannot be read are listed in ``errors`` with their path."""
    entries: Sequence[KernelEntry] = (
        discover(archive) if isinstance(archive, str | os.PathLike) else list(archive))
    index = ArchiveIndex()
    for outcome in map_kernels(index_kernel, entries, executor=executor, jobs=jobs,
                               progress=progress):
        if outcome.value is not None:
            index.kernels.append(outcome.value)
        else:
            index.errors.append((outcome.path, outcome.error or "unknown error"))
    return index


__all__ = ["ArchiveIndex", "IndexedKernel", "build_index", "index_kernel"]
