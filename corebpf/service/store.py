"""The service's index of its archive: every kernel, any layout ``corebpf archive`` reads,
in SQLite (stdlib sqlite3) with its path, size, mtime, sha256 and BTF sha256.

The index lives in the cache directory and survives restarts: a rescan re-reads only
files whose size or mtime changed. Requests are answered from an in-memory copy (a dict
by key), so the cached path of a request never touches a kernel file or the database.

Only what lies inside the archive is indexed: a symbolic link that resolves outside it
is refused (and listed as such), the cache directory is skipped if it sits inside.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence

from .._record import field, record
from ..archive.sources import KernelEntry, entry_for

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kernels (
    root TEXT NOT NULL,
    path TEXT NOT NULL,
    distro TEXT NOT NULL,
    version TEXT NOT NULL,
    arch TEXT NOT NULL,
    release TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    btf_sha256 TEXT NOT NULL,
    btf_size INTEGER NOT NULL,
    error TEXT NOT NULL,
    PRIMARY KEY (root, path)
);
"""
_COLUMNS = ("path", "distro", "version", "arch", "release", "kind", "size", "mtime_ns",
            "sha256", "btf_sha256", "btf_size", "error")


def connect(path: str) -> sqlite3.Connection:
    """The service's database (WAL: readers never wait for the writer)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    return db


@record
class KernelRow:
    """One kernel file of the archive as indexed (``path`` relative to the archive)."""

    path: str
    distro: str
    version: str
    arch: str
    release: str
    kind: str
    size: int
    mtime_ns: int
    #: the file's sha256, and that of the raw BTF it holds
    sha256: str = ""
    btf_sha256: str = ""
    btf_size: int = 0
    #: why the kernel cannot be used (corrupt, duplicate key); empty when it can
    error: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.distro, self.version, self.arch, self.release

    def entry(self, root: str) -> KernelEntry:
        """The archive entry the workers read (absolute path)."""
        return KernelEntry(os.path.join(root, self.path), distro=self.distro,
                           version=self.version, arch=self.arch, release=self.release,
                           kind=self.kind)

    def listing(self) -> dict[str, str]:
        """The row of ``/api/v1/list``, in btfhub-online's names."""
        return {"distribution": self.distro, "distribution_version": self.version,
                "kernel_version": self.release, "arch": self.arch}

    def values(self) -> tuple[object, ...]:
        return tuple(getattr(self, c) for c in _COLUMNS)


@record
class Found:
    """A kernel file found by a walk, before it is hashed."""

    path: str
    entry: KernelEntry
    size: int
    mtime_ns: int


@record
class Walk:
    """What one walk of the archive found, and the links it refused."""

    found: list[Found] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def inside(root: str, path: str) -> bool:
    """Whether ``path`` resolves (links followed) to ``root`` or below it."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _files(root: str, skip: Sequence[str]) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        # split module BTF is not a kernel of its own; the cache may sit in the archive
        dirnames[:] = sorted(d for d in dirnames if d != "modules"
                             and os.path.join(dirpath, d) not in skip)
        for name in sorted(filenames):
            yield os.path.join(dirpath, name)


def walk(root: str, skip: Sequence[str] = (), only: str | None = None) -> Walk:
    """Every kernel file under ``root`` (a real path) in a stable order, or just the
    file ``only`` in it; links are followed only when they resolve inside ``root``.
    Names and a few header bytes only: no kernel is decompressed here."""
    out = Walk()
    files = [os.path.join(root, only)] if only is not None else _files(root, skip)
    for path in files:
        rel = os.path.relpath(path, root)
        if os.path.islink(path):
            if not inside(root, path):
                out.refused.append((rel, "symbolic link to "
                                    f"{os.readlink(path)!r}, outside the archive"))
                continue
            if not os.path.isfile(path):
                continue
        elif not os.path.isfile(path):
            continue
        try:
            entry = entry_for(path, None if only is not None else root)
            st = os.stat(path)
        except OSError:
            continue  # gone while walking: the next walk agrees
        if entry is None:
            continue
        out.found.append(Found(rel, entry, st.st_size, st.st_mtime_ns))
    return out


class KernelIndex:
    """The kernels of one archive: rows in SQLite, mirrored in memory by path and key."""

    def __init__(self, db: sqlite3.Connection, root: str):
        self.db = db
        self.root = root
        self.rows: dict[str, KernelRow] = {}
        self.by_key: dict[tuple[str, str, str, str], KernelRow] = {}
        self.refused: list[tuple[str, str]] = []
        self.generation = ""
        self._usable: list[KernelRow] = []
        self._by_release: dict[tuple[str, str], list[KernelRow]] = {}
        self.load()

    def load(self) -> None:
        cur = self.db.execute(f"SELECT {', '.join(_COLUMNS)} FROM kernels WHERE root = ?",
                              (self.root,))
        self.rows = {r[0]: KernelRow(*r) for r in cur}
        self._rebuild()

    def stale(self, walk: Walk) -> list[Found]:
        """The files of ``walk`` that are new or changed since they were indexed."""
        out = []
        for f in walk.found:
            row = self.rows.get(f.path)
            if row is None or (row.size, row.mtime_ns) != (f.size, f.mtime_ns) \
                    or row.kind != f.entry.kind:
                out.append(f)
        return out

    def apply(self, walk: Walk, indexed: Iterable[KernelRow]) -> None:
        """Make the index what ``walk`` found: ``indexed`` rows replace theirs, rows of
        files that are gone are dropped."""
        present = {f.path for f in walk.found}
        gone = [p for p in self.rows if p not in present]
        new = list(indexed)
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("DELETE FROM kernels WHERE root = ? AND path = ?",
                                [(self.root, p) for p in gone])
            self.db.executemany(
                f"INSERT OR REPLACE INTO kernels (root, {', '.join(_COLUMNS)}) VALUES "
                f"(?, {', '.join('?' * len(_COLUMNS))})",
                [(self.root, *r.values()) for r in new])
        for p in gone:
            del self.rows[p]
        for r in new:
            self.rows[r.path] = r
        self.refused = list(walk.refused)
        self._rebuild()

    def _rebuild(self) -> None:
        """Key -> row: the first usable file of a key (in path order) wins; a corrupt
        file keeps its key only when no usable file has it, so that asking for it
        says what is wrong with it."""
        by_key: dict[tuple[str, str, str, str], KernelRow] = {}
        for path in sorted(self.rows):
            row = self.rows[path]
            have = by_key.get(row.key)
            if have is None or (have.error and not row.error):
                by_key[row.key] = row
        self.by_key = by_key
        self._usable = sorted((r for r in by_key.values() if not r.error),
                              key=lambda r: r.key)
        self._by_release = {}
        for r in self._usable:
            self._by_release.setdefault((r.arch, r.release), []).append(r)
        h = hashlib.sha256()
        for row in self._usable:
            h.update("\0".join((*row.key, row.btf_sha256)).encode() + b"\n")
        self.generation = h.hexdigest()

    def usable(self) -> list[KernelRow]:
        """The kernels requests may use, one per key, in key order (do not modify)."""
        return self._usable

    def lookup(self, key: tuple[str, str, str, str]) -> KernelRow | None:
        return self.by_key.get(key)

    def match(self, key: tuple[str, str, str, str]) -> KernelRow | None:
        """The row of ``key`` (a corrupt one too, so that asking says what is wrong),
        else :meth:`lookup_release`'s."""
        return self.by_key.get(key) or self.lookup_release(key[2], key[3])

    def lookup_release(self, arch: str, release: str) -> KernelRow | None:
        """The kernel of ``arch`` and ``release`` when every usable file of them holds
        the same BTF: the same kernel under another distribution version, or a package
        found outside a BTFHub layout (no version). Bundle.lookup decides the same way."""
        same = self._by_release.get((arch, release), [])
        shas = {r.btf_sha256 for r in same}
        if same and len(shas) == 1 and "" not in shas:
            return same[0]
        return None

    def errors(self) -> list[tuple[str, str]]:
        """Every file that is not served and why (corrupt, duplicate, refused link)."""
        dup = {r.path for r in self.rows.values() if not r.error} - {
            r.path for r in self.by_key.values()}
        out = [(r.path, r.error) for r in self.rows.values() if r.error]
        out += [(p, f"same key as {self.by_key[self.rows[p].key].path}") for p in dup]
        return sorted(out + self.refused)


__all__ = ["Found", "KernelIndex", "KernelRow", "Walk", "connect", "inside", "walk"]
