"""What the service does, apart from HTTP: find a kernel in the index, answer from the
cache or run the job, store the result. Each public coroutine takes parsed parameters
and returns a :class:`Reply` (or raises a :class:`~.errors.ServiceError`); app.py only
parses requests and formats replies.

The cached path of a customize request reads the kernel's BTF sha256 from the index
and the result from the cache: it neither opens the kernel's file nor parses anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, BinaryIO

from .._record import field, record
from ..archive.sources import BTFHUB
from ..btfgen import ObjectBlob
from ..errors import ArchiveError, Error
from . import jobs
from .cache import Cache
from .config import ServiceConfig
from .errors import BadRequest, NotFound, ServerFault
from .metrics import Metrics
from .params import etag_matches, key_text
from .store import KernelIndex, KernelRow, connect, inside, walk
from .uploads import Upload

OCTET = "application/octet-stream"
JSON = "application/json"
#: seconds between writes of the cache's last-use times to SQLite
FLUSH_INTERVAL = 5.0

Key = tuple[str, str, str, str]


@record
class Reply:
    """An answer for app.py to send: bytes, or an open file it streams and closes."""

    status: int = 200
    body: bytes = b""
    file: BinaryIO | None = None
    size: int = 0
    media_type: str = OCTET
    headers: dict[str, str] = field(default_factory=dict)


def _key(kind: str, *parts: str) -> str:
    """A cache key: the sha256 of what determines the result."""
    return hashlib.sha256("\0".join((kind, *parts)).encode()).hexdigest()


def _json(doc: object, *, indent: int | None = None) -> bytes:
    text = json.dumps(doc, indent=indent) if indent else json.dumps(doc, separators=(",", ":"))
    return (text + "\n").encode() if indent else text.encode()


#: how the kernel was found: ``exact`` (all four key values), or ``release`` (the one BTF
#: of that arch and kernel_version, filed under another distribution or version)
MATCH_HEADER = "X-Corebpf-Match"


def _match(row: KernelRow, key: Key) -> str:
    return "exact" if row.key == key else "release"


def _attachment(name: str) -> dict[str, str]:
    """btfhub-online's download headers, with a file name."""
    return {"Content-Disposition": f'attachment; filename="{name}"',
            "Content-Description": "File Transfer", "Content-Transfer-Encoding": "binary"}


class Backend:
    """One service instance: its index, cache, workers and metrics."""

    def __init__(self, config: ServiceConfig):
        self.config = config
        self.metrics = Metrics()
        self.runner = jobs.Runner(self.metrics, jobs=config.jobs, scheduler=config.scheduler)
        self.archive = ""
        self.root = ""
        self._only: str | None = None
        self.cache_dir = config.resolved_cache_dir()
        self._scan_lock = asyncio.Lock()
        self._last_scan = -1e9
        self._tasks: list[asyncio.Task[None]] = []
        self._list_body: tuple[str, bytes] | None = None
        self._index: KernelIndex | None = None
        self._cache: Cache | None = None
        self._lock: int | None = None
        self.started = False

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def index(self) -> KernelIndex:
        assert self._index is not None, "the service is not started"
        return self._index

    @property
    def cache(self) -> Cache:
        assert self._cache is not None, "the service is not started"
        return self._cache

    async def start(self) -> None:
        """Open the database and cache, start the workers, index the archive."""
        given = self.config.archive
        if not os.path.exists(given):
            raise ArchiveError(f"{given}: no such file or directory")
        self.archive = os.path.realpath(given)
        if os.path.isfile(self.archive):
            self.root, self._only = os.path.split(self.archive)
        else:
            self.root = self.archive
        try:
            os.makedirs(self.cache_dir, exist_ok=True)
            self._lock = self._take_lock()
            db = connect(os.path.join(self.cache_dir, "service.sqlite"))
            self._index = KernelIndex(db, self.archive)
            self._cache = Cache(self.cache_dir, db, self.config.cache_size,
                                on_evict=self._evicted)
        except OSError as e:
            raise Error(f"{self.cache_dir}: cannot use as the cache: "
                        f"{e.strerror or e}") from None
        except sqlite3.Error as e:  # a damaged database file
            raise Error(f"{self.cache_dir}/service.sqlite: {e}") from None
        self.metrics.cache_bytes.set_function(lambda: self.cache.total)
        self.metrics.cache_entries.set_function(lambda: self.cache.entries)
        await asyncio.to_thread(self.runner.start)
        await self.rescan("start")
        if self.config.rescan_interval > 0:
            self._every(self.config.rescan_interval, lambda: self.rescan("timer"))
        self._every(FLUSH_INTERVAL, self._flush)
        self.started = True

    def _take_lock(self) -> int:
        """One server per cache: its in-memory LRU order and totals are its own."""
        import fcntl

        fd = os.open(os.path.join(self.cache_dir, "serve.lock"), os.O_RDWR | os.O_CREAT,
                     0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Error(f"{self.cache_dir}: the cache of another running corebpf serve "
                        "(give this one its own --cache)") from None
        return fd

    async def stop(self) -> None:
        self.started = False
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._cache is not None:
            self._cache.flush()
        await asyncio.to_thread(self.runner.close)
        if self._index is not None:
            self._index.db.close()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _every(self, seconds: float, fn: Callable[[], Awaitable[None]]) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(seconds)
                with contextlib.suppress(Exception):  # next time, then
                    await fn()

        self._tasks.append(asyncio.get_running_loop().create_task(loop()))

    async def _flush(self) -> None:
        self.cache.flush()

    def _evicted(self, kind: str, size: int) -> None:
        self.metrics.cache_evictions.labels(kind).inc()

    # -- the index ----------------------------------------------------------------------------

    def _rel(self, text: str) -> str:
        """A message with server paths made archive-relative (and the cache's hidden)."""
        return text.replace(self.root + os.sep, "").replace(self.cache_dir + os.sep, "")

    async def rescan(self, reason: str, min_interval: float = 0.0) -> None:
        """Walk the archive and index what is new or changed. Callers that ask while a
        walk runs wait for the next one; ``min_interval`` skips the walk when one started
        that recently (an unknown key must not walk a big archive per request)."""
        asked = time.monotonic()
        async with self._scan_lock:
            if self._last_scan >= asked:
                return  # a walk started after we asked: as fresh as ours would be
            if min_interval and asked - self._last_scan < min_interval:
                return
            self._last_scan = time.monotonic()
            self.metrics.scans.labels(reason).inc()
            skip = [os.path.realpath(self.cache_dir)]
            found = await asyncio.to_thread(walk, self.root, skip, self._only)
            stale = self.index.stale(found)
            hashed = await asyncio.gather(*(
                self.runner.run("index", jobs.index_kernel, f.entry, self.root)
                for f in stale))
            rows = [KernelRow(f.path, f.entry.distro, f.entry.version, f.entry.arch,
                              f.entry.release, f.entry.kind, f.size, f.mtime_ns, sha, bsha,
                              bsize, self._rel(error))
                    for f, (sha, bsha, bsize, error) in zip(stale, hashed, strict=True)]
            self.index.apply(found, rows)
            self.metrics.kernels.set(len(self.index.usable()))
            self.metrics.index_problems.set(len(self.index.errors()))

    def _fresh(self, row: KernelRow) -> bool:
        try:
            st = os.stat(os.path.join(self.root, row.path))
        except OSError:
            return False
        return (st.st_size, st.st_mtime_ns) == (row.size, row.mtime_ns)

    async def find(self, key: Key) -> KernelRow:
        """The kernel of ``key``, its file unchanged since indexed; failing an exact
        match, the one BTF every file of the same arch and release holds (the row's key
        then differs from ``key``). NotFound names the key; a corrupt file is a
        ServerFault naming it."""
        row = self.index.match(key)
        if row is None:
            await self.rescan("miss", self.config.miss_rescan_interval)
        elif not self._fresh(row):
            await self.rescan("changed")
        row = self.index.match(key)
        if row is None:
            raise NotFound(self._unknown(key))
        if row.error:
            raise ServerFault(f"the archive's file for {key_text(key)} is corrupt or "
                              f"unreadable: {row.error}")
        return row

    def _unknown(self, key: Key) -> str:
        usable = self.index.usable()
        text = f"no kernel {key_text(key)} in the archive"
        same = [r for r in usable if (r.arch, r.release) == key[2:]]
        if same:
            return text + "; it has this kernel_version and arch for " + ", ".join(
                f"distribution={r.distro!r} distribution_version={r.version!r}"
                for r in same[:5])
        return text + f" ({len(usable)} kernels: GET /api/v1/list names them)"

    def _select(self, filters: dict[str, str]) -> list[KernelRow]:
        rows = [r for r in self.index.usable()
                if all(getattr(r, f) == v for f, v in filters.items())]
        if not rows:
            which = " ".join(f"{f}={v!r}" for f, v in filters.items())
            raise NotFound(f"no kernel in the archive matches {which}" if which
                           else "the archive has no kernel")
        return rows

    @staticmethod
    def _generation(rows: Sequence[KernelRow]) -> str:
        h = hashlib.sha256()
        for r in rows:
            h.update("\0".join((*r.key, r.btf_sha256)).encode() + b"\n")
        return h.hexdigest()

    def kernels(self) -> Reply:
        """``/api/v1/list``: one row per kernel, btfhub-online's fields."""
        gen = self.index.generation
        if self._list_body is None or self._list_body[0] != gen:
            self._list_body = gen, _json([r.listing() for r in self.index.usable()])
        return Reply(body=self._list_body[1], media_type=JSON)

    def health(self) -> Reply:
        return Reply(body=_json({"status": "ok", "kernels": len(self.index.usable())}),
                     media_type=JSON)

    def render_metrics(self) -> Reply:
        body, ctype = self.metrics.render()
        return Reply(body=body, media_type=ctype)

    # -- objects ------------------------------------------------------------------------------

    def _object_path(self, sha: str) -> str:
        return self.cache.path("object", sha)

    def _store(self, uploads: Sequence[Upload]) -> None:
        """Every upload kept content-addressed (GET /api/v1/bundle?object= names them),
        and marked used as its results are."""
        for u in uploads:
            if not self.cache.touch("object", u.sha256):
                self.cache.put("object", u.sha256, u.data)

    def _forget_bad(self, culprit: str) -> None:
        """An object corebpf cannot read is not kept (``culprit``: its stored path)."""
        for_sha = os.path.basename(culprit)
        if culprit == self._object_path(for_sha):
            self.cache.discard("object", for_sha)

    def _clean(self, message: str, uploads: Sequence[Upload]) -> str:
        """A worker's message as the client should read it: its objects by the names
        it uploaded them under, kernels by archive-relative path."""
        for u in uploads:
            message = message.replace(self._object_path(u.sha256), u.name)
        return self._rel(message)

    def _fail(self, result: jobs.JobResult, uploads: Sequence[Upload]) -> Error:
        text = self._clean(result.message, uploads)
        if result.status == jobs.BAD_OBJECT:
            return BadRequest(text)
        return ServerFault(f"corrupt or unreadable archive file: {text}")

    def _hit(self, kind: str, hit: bool) -> str:
        (self.metrics.cache_hits if hit else self.metrics.cache_misses).labels(kind).inc()
        return "hit" if hit else "miss"

    # -- customize ----------------------------------------------------------------------------

    async def customize(self, key: Key, uploads: Sequence[Upload],
                        if_none_match: str | None) -> Reply:
        """The kernel's BTF minimized for the uploaded objects, as btfhub-online's
        tar.xz of one ``<kernel_version>.btf``."""
        row = await self.find(key)
        shas = sorted({u.sha256 for u in uploads})
        ckey = _key("customize", row.btf_sha256, *shas)
        headers = {"ETag": f'"{ckey}"', MATCH_HEADER: _match(row, key)}
        if etag_matches(if_none_match, ckey):
            return Reply(304, headers=headers)
        headers |= _attachment(f"{row.release}.btf.tar.xz")
        data = self.cache.read("customize", ckey)
        if data is not None:
            headers["X-Corebpf-Cache"] = self._hit("customize", True)
            self._store(uploads)
            return Reply(body=data, headers=headers)
        headers["X-Corebpf-Cache"] = self._hit("customize", False)
        result = await self.runner.once(
            ckey, lambda: self._customize(row, uploads, shas, ckey))
        if result.status != jobs.OK:
            raise self._fail(result, uploads)
        return Reply(body=result.data, headers=headers)

    async def _customize(self, row: KernelRow, uploads: Sequence[Upload],
                         shas: list[str], ckey: str) -> jobs.JobResult:
        self._store(uploads)
        data = {u.sha256: u.data for u in uploads}
        blobs = tuple(ObjectBlob(self._object_path(s), data[s]) for s in shas)
        result = await self.runner.run("customize", jobs.customize, blobs,
                                       row.entry(self.root), self.root, f"{row.release}.btf")
        if result.status == jobs.OK:
            if result.btf_sha256 == row.btf_sha256:
                self.cache.put("customize", ckey, result.data)
            else:  # the file changed since indexed: answer, but do not cache
                self._later(self.rescan("changed"))
        elif result.culprit:
            self._forget_bad(result.culprit)
        return result

    def _later(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            with contextlib.suppress(Exception):
                await coro

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)

    # -- download -----------------------------------------------------------------------------

    async def download(self, key: Key, if_none_match: str | None) -> Reply:
        """The kernel's ``.btf.tar.xz``: a BTFHub file as it is in the archive, any other
        kind made once into one and cached."""
        row = await self.find(key)
        name = f"{row.release}.btf.tar.xz"
        match = {MATCH_HEADER: _match(row, key)}
        if row.kind == BTFHUB:
            headers = {"ETag": f'"{row.sha256}"'} | match
            if etag_matches(if_none_match, row.sha256):
                return Reply(304, headers=headers)
            path = os.path.join(self.root, row.path)
            if not inside(self.root, path):
                raise ServerFault(f"{row.path}: refused, it resolves outside the archive")
            try:
                archived: BinaryIO = open(path, "rb")  # app.py streams and closes it
            except OSError as e:
                raise ServerFault(f"{row.path}: cannot read: {e.strerror}") from None
            return Reply(file=archived, size=os.fstat(archived.fileno()).st_size,
                         headers=headers | _attachment(name))
        dkey = _key("download", row.btf_sha256)
        headers = {"ETag": f'"{dkey}"'} | match
        if etag_matches(if_none_match, dkey):
            return Reply(304, headers=headers)
        headers |= _attachment(name)
        hit = True
        for _ in range(3):  # made, then evicted by another's result before we opened it
            f = self.cache.open("download", dkey)
            if f is not None:
                headers["X-Corebpf-Cache"] = self._hit("download", hit)
                return Reply(file=f, size=os.fstat(f.fileno()).st_size, headers=headers)
            hit = False
            result = await self.runner.once(dkey, lambda: self._download(row, dkey))
            if result.status != jobs.OK:
                raise self._fail(result, ())
        raise ServerFault(f"{row.path}: the cache is too small to hold its download")

    async def _download(self, row: KernelRow, dkey: str) -> jobs.JobResult:
        result = await self.runner.run("download", jobs.download_tarball,
                                       row.entry(self.root), self.root, f"{row.release}.btf")
        if result.status == jobs.OK:
            if result.btf_sha256 != row.btf_sha256:
                self._later(self.rescan("changed"))
                raise ServerFault(f"{row.path}: the file changed while it was read; "
                                  "ask again")
            # a whole kernel's BTF (megabytes): written by a thread, renamed here
            tmp = await asyncio.to_thread(self.cache.write_temp, "download", result.data)
            result.data = b""
            self.cache.adopt("download", dkey, tmp)
        return result

    # -- check and bundle ---------------------------------------------------------------------

    def _objects_from(self, shas: Sequence[str]) -> None:
        for sha in shas:
            if f"object/{sha}" not in self.cache:
                raise NotFound(f"no uploaded object with sha256 {sha} (POST it to "
                               "/api/v1/bundle, /api/v1/check or /api/v1/customize first)")

    def _validate(self, paths: Sequence[str]) -> jobs.JobResult | None:
        """In a thread: the first object corebpf cannot read, with why (its BTF is read
        lazily: its relocations' names read it here, not on every kernel later)."""
        from ..btfgen import load_object
        from ..core.engine import objects_root_names

        for p in paths:
            try:
                objects_root_names([load_object(p)])
            except Exception as e:
                return jobs.JobResult(jobs.BAD_OBJECT, culprit=p, message=str(e) if isinstance(
                    e, Error) else f"{p}: {type(e).__name__}: {e}")
        return None

    async def check(self, uploads: Sequence[Upload], filters: dict[str, str]) -> Reply:
        """The compatibility matrix of the objects over the archive's kernels, as
        ``corebpf check --json`` prints it (kernel paths relative to the archive)."""
        rows = self._select(filters)
        shas = list(dict.fromkeys(u.sha256 for u in uploads))
        okey = _key("check", self._generation(rows), *shas)
        data = self.cache.read("check", okey)
        self._hit("check", data is not None)
        if data is not None:
            self._store(uploads)
        else:
            got = await self.runner.once(okey, lambda: self._check(rows, uploads, shas, okey))
            if isinstance(got, jobs.JobResult):
                raise self._fail(got, uploads)
            data = got
        doc = json.loads(data)
        names = {u.sha256: u.name for u in reversed(uploads)}
        for k in doc["kernels"]:
            for r in k["relocations"]:
                r["object"] = names.get(r["object"], r["object"])
        return Reply(body=_json(doc, indent=1), media_type=JSON)

    async def _check(self, rows: list[KernelRow], uploads: Sequence[Upload],
                     shas: list[str], okey: str) -> bytes | jobs.JobResult:
        self._store(uploads)
        paths = [self._object_path(s) for s in shas]
        with self.cache.pinned([f"object/{s}" for s in shas]):
            got = await self.runner.in_thread("check", self._check_sync, paths,
                                              [r.entry(self.root) for r in rows])
        if isinstance(got, jobs.JobResult):
            self._forget_bad(got.culprit)
            return got
        by_path = dict(zip(paths, shas, strict=True))
        for k in got["kernels"]:
            k["path"] = self._rel(k["path"])
            if "error" in k:
                k["error"] = self._rel(k["error"])
            for r in k["relocations"]:
                r["object"] = by_path.get(r["object"], r["object"])
        data = _json(got)
        self.cache.put("check", okey, data)
        return data

    def _check_sync(self, paths: list[str], entries: list[Any]
                    ) -> dict[str, Any] | jobs.JobResult:
        from ..archive.check import check_archive

        bad = self._validate(paths)
        if bad is not None:
            return bad
        report = check_archive(paths, entries, executor=self.runner.executor, progress=False)
        return report.to_json()

    async def bundle(self, uploads: Sequence[Upload], shas: Sequence[str],
                     filters: dict[str, str], if_none_match: str | None) -> Reply:
        """A corebpf bundle (as ``corebpf archive bundle`` writes) of the objects, given
        as uploads or as the sha256 of objects uploaded before."""
        rows = self._select(filters)
        if uploads:
            self._store(uploads)
            shas = list(dict.fromkeys(u.sha256 for u in uploads))
        else:
            shas = list(dict.fromkeys(shas))
            self._objects_from(shas)
        bkey = _key("bundle", self._generation(rows), _json(filters).decode(), *shas)
        headers = {"ETag": f'"{bkey}"'}
        if etag_matches(if_none_match, bkey):
            return Reply(304, headers=headers)
        headers |= _attachment("btf-bundle.tar.xz")
        hit = True
        for _ in range(3):
            f = self.cache.open("bundle", bkey)
            if f is not None:
                headers["X-Corebpf-Cache"] = self._hit("bundle", hit)
                return Reply(file=f, size=os.fstat(f.fileno()).st_size, headers=headers)
            hit = False
            got = await self.runner.once(bkey, lambda: self._bundle(rows, shas, bkey))
            if got is not None:
                raise self._fail(got, uploads)
        raise ServerFault("the cache is too small to hold the bundle")

    async def _bundle(self, rows: list[KernelRow], shas: list[str], bkey: str
                      ) -> jobs.JobResult | None:
        tmp = self.cache.temp_path("bundle")
        paths = [self._object_path(s) for s in shas]
        try:
            with self.cache.pinned([f"object/{s}" for s in shas]):
                bad = await self.runner.in_thread(
                    "bundle", self._bundle_sync, paths, [r.entry(self.root) for r in rows],
                    tmp)
            if bad is not None:
                self._forget_bad(bad.culprit)
                return bad
            self.cache.adopt("bundle", bkey, tmp)
            return None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _bundle_sync(self, paths: list[str], entries: list[Any], out: str
                     ) -> jobs.JobResult | None:
        from ..archive.bundle import build_bundle

        bad = self._validate(paths)
        if bad is not None:
            return bad
        build_bundle(paths, entries, out, executor=self.runner.executor, progress=False)
        return None


__all__ = ["MATCH_HEADER", "Backend", "Reply"]
