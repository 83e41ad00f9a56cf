"""Content-addressed results on disk: customized BTF, download tarballs, check reports,
bundles, and the objects clients uploaded.

Each entry is a file ``<root>/<kind>/<key[:2]>/<key>``, written to a temporary name in
the cache and renamed into place, so a reader (or a restart) sees it whole or not at
all. Sizes and last-use times are kept in the service's SQLite database; the total is
bounded in bytes and the least recently used entries go first. Last-use times are
updated in memory on every hit and written to SQLite now and then (a crash loses
recency, never data). Entries in use by a running job are pinned against eviction.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from typing import BinaryIO

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    atime REAL NOT NULL
);
"""
KINDS = ("customize", "download", "check", "bundle", "object")


class Cache:
    """The bounded, content-addressed store; names are ``<kind>/<key>``."""

    def __init__(self, root: str, db: sqlite3.Connection, max_bytes: int, *,
                 on_evict: Callable[[str, int], None] | None = None):
        self.root = root
        self.db = db
        self.max_bytes = max_bytes
        self.on_evict = on_evict
        #: name -> size, least recently used first
        self._lru: OrderedDict[str, int] = OrderedDict()
        self._atime: dict[str, float] = {}
        self._dirty: set[str] = set()
        self._pins: Counter[str] = Counter()
        self.total = 0
        self.tmp = os.path.join(root, "tmp")
        db.executescript(_SCHEMA)
        self._load()

    # -- start-up ------------------------------------------------------------------------

    def _load(self) -> None:
        """The table, reconciled with the files: rows without a file are dropped, files
        without a row (a crash between rename and insert) adopted, stale temporaries
        removed."""
        os.makedirs(self.tmp, exist_ok=True)
        for name in os.listdir(self.tmp):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.tmp, name))
        rows = {n: (s, a) for n, s, a in self.db.execute(
            "SELECT name, size, atime FROM cache ORDER BY atime")}
        on_disk: dict[str, os.stat_result] = {}
        for kind in KINDS:
            top = os.path.join(self.root, kind)
            if not os.path.isdir(top):
                continue
            for sub in os.listdir(top):
                d = os.path.join(top, sub)
                if not os.path.isdir(d):
                    continue
                for key in os.listdir(d):
                    with contextlib.suppress(OSError):
                        on_disk[f"{kind}/{key}"] = os.stat(os.path.join(d, key))
        gone = [n for n in rows if n not in on_disk]
        found = {n: (st.st_size, st.st_mtime) for n, st in on_disk.items() if n not in rows}
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("DELETE FROM cache WHERE name = ?", [(n,) for n in gone])
            self.db.executemany("INSERT INTO cache (name, size, atime) VALUES (?, ?, ?)",
                                [(n, s, a) for n, (s, a) in found.items()])
        merged = {n: v for n, v in rows.items() if n in on_disk} | found
        for name, (size, atime) in sorted(merged.items(), key=lambda kv: kv[1][1]):
            self._lru[name] = on_disk[name].st_size if name in on_disk else size
            self._atime[name] = atime
        self.total = sum(self._lru.values())

    # -- reading -------------------------------------------------------------------------

    def path(self, kind: str, key: str) -> str:
        return os.path.join(self.root, kind, key[:2], key)

    def __contains__(self, name: str) -> bool:
        return name in self._lru

    def touch(self, kind: str, key: str) -> bool:
        """Mark an entry used (it goes last in eviction order); False when absent."""
        name = f"{kind}/{key}"
        if name not in self._lru:
            return False
        self._touch(name)
        return True

    def _touch(self, name: str) -> None:
        self._lru.move_to_end(name)
        self._atime[name] = time.time()
        self._dirty.add(name)

    def _drop(self, name: str) -> None:
        size = self._lru.pop(name, 0)
        self._atime.pop(name, None)
        self._dirty.discard(name)
        self.total -= size
        self.db.execute("DELETE FROM cache WHERE name = ?", (name,))

    def read(self, kind: str, key: str) -> bytes | None:
        """An entry's bytes (a hit makes it the most recently used), None on a miss."""
        f = self.open(kind, key)
        if f is None:
            return None
        with f:
            return f.read()

    def open(self, kind: str, key: str) -> BinaryIO | None:
        """An entry opened for reading: eviction may unlink it, the reader keeps it."""
        name = f"{kind}/{key}"
        if name not in self._lru:
            return None
        try:
            f = open(self.path(kind, key), "rb")
        except OSError:  # removed behind our back: a miss
            self._drop(name)
            return None
        self._touch(name)
        return f

    # -- writing -------------------------------------------------------------------------

    def temp_path(self, kind: str) -> str:
        """A fresh name in the cache's file system for a job to write an entry into."""
        fd, path = tempfile.mkstemp(prefix=f"{kind}.", dir=self.tmp)
        os.close(fd)
        return path

    def write_temp(self, kind: str, data: bytes) -> str:
        """``data`` in a fresh temporary file of the cache, for :meth:`adopt`; touches no
        shared state, so a thread may write large entries off the event loop."""
        fd, tmp = tempfile.mkstemp(prefix=f"{kind}.", dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def put(self, kind: str, key: str, data: bytes) -> None:
        """Store ``data`` atomically (temporary file, then rename)."""
        self.adopt(kind, key, self.write_temp(kind, data))

    def adopt(self, kind: str, key: str, tmp: str) -> None:
        """Move a finished temporary file into place as entry ``key``, then evict what
        the bound requires (never this entry)."""
        dest = self.path(kind, key)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
        size = os.path.getsize(dest)
        name = f"{kind}/{key}"
        self.total += size - self._lru.get(name, 0)
        self._lru[name] = size
        self._touch(name)
        self._dirty.discard(name)
        self.db.execute("INSERT OR REPLACE INTO cache (name, size, atime) VALUES (?, ?, ?)",
                        (name, size, self._atime[name]))
        self.evict(keep=name)

    def evict(self, keep: str | None = None) -> int:
        """Remove least recently used entries until the total fits; pinned entries and
        ``keep`` stay. Returns how many went."""
        gone = 0
        if self.total <= self.max_bytes:
            return 0
        for name in list(self._lru):
            if self.total <= self.max_bytes:
                break
            if name == keep or self._pins[name]:
                continue
            kind, key = name.split("/", 1)
            size = self._lru[name]
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(kind, key))
            self._drop(name)
            gone += 1
            if self.on_evict is not None:
                self.on_evict(kind, size)
        return gone

    def discard(self, kind: str, key: str) -> None:
        """Remove one entry (e.g. an object corebpf refused)."""
        name = f"{kind}/{key}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(kind, key))
        if name in self._lru:
            self._drop(name)

    @contextlib.contextmanager
    def pinned(self, names: list[str]) -> Iterator[None]:
        """Keep ``names`` from eviction while a job reads them."""
        for n in names:
            self._pins[n] += 1
        try:
            yield
        finally:
            for n in names:
                self._pins[n] -= 1
                if not self._pins[n]:
                    del self._pins[n]

    def flush(self) -> None:
        """Write the last-use times of entries hit since the last flush."""
        if not self._dirty:
            return
        rows = [(self._atime[n], n) for n in self._dirty if n in self._atime]
        self._dirty.clear()
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany("UPDATE cache SET atime = ? WHERE name = ?", rows)

    @property
    def entries(self) -> int:
        return len(self._lru)


__all__ = ["KINDS", "Cache"]
