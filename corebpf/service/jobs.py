"""CPU-bound work of the service, run off the event loop: the worker functions (module
level, picklable) and :class:`Runner`, which runs them in a warm process pool or on a
Dask cluster and awaits them from asyncio.

Workers import corebpf.btfgen and the archive modules once, when the pool starts, so a
cold request pays for reading and minimizing its kernel, not for imports. Identical
requests that arrive while the first is being computed wait for its result
(:meth:`Runner.once`) instead of computing it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import io
import lzma
import os
import tarfile
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any, TypeVar

from .._record import record
from ..archive.sources import KernelEntry
from ..btfgen import ObjectBlob
from ..errors import Error
from .errors import ServerFault

if TYPE_CHECKING:
    from .metrics import Metrics

T = TypeVar("T")

OK, BAD_OBJECT, BAD_KERNEL = "ok", "object", "kernel"


@record
class JobResult:
    """What a worker made of a request: ``status`` ok, or which input was at fault
    (``object``: 400, ``kernel``: the archive file, 500) with corebpf's message."""

    status: str
    data: bytes = b""
    btf_sha256: str = ""
    message: str = ""
    size: int = 0
    #: the object corebpf could not read (its name), when that is what failed
    culprit: str = ""


# -- worker side -----------------------------------------------------------------------------


def warm() -> int:
    """Import what the jobs use, once per worker process (the pool's initializer)."""
    from ..archive import bundle, check  # noqa: F401
    from ..btfgen import minimize  # noqa: F401

    return os.getpid()


def _text(e: BaseException) -> str:
    return str(e) if isinstance(e, Error) else f"{type(e).__name__}: {e}"


def _inside(root: str, path: str) -> bool:
    real = os.path.realpath(path)
    return real.startswith(root.rstrip(os.sep) + os.sep)


def btf_tarball(member: str, data: bytes) -> bytes:
    """A tar.xz holding one regular file ``member``: what btfhub-online answers with and
    its Go client untars (its first regular file is the BTF). The same input gives the
    same bytes (no times, owners or modes of this machine)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    return lzma.compress(buf.getvalue(), preset=6)


def index_kernel(entry: KernelEntry, root: str) -> tuple[str, str, int, str]:
    """(file sha256, BTF sha256, BTF size, error) of one archive file; the BTF is
    parsed far enough to know it is whole, so a corrupt file is found when indexed."""
    from ..archive.sources import file_sha256, read_btf
    from ..btf import from_bytes

    path = entry.path
    if not _inside(root, path):
        return "", "", 0, f"{path}: resolves outside the archive"
    try:
        sha = file_sha256(path)
    except OSError as e:
        return "", "", 0, f"{path}: cannot read: {e.strerror}"
    try:
        raw = read_btf(entry)
        from_bytes(raw, source=path).type_count  # noqa: B018 (parses every type's offset)
    except Exception as e:  # whatever a corrupt file raises: this file is reported
        text = _text(e)
        return sha, "", 0, text if path in text else f"{path}: {text}"
    return sha, hashlib.sha256(raw).hexdigest(), len(raw), ""


def customize(objects: Sequence[ObjectBlob], entry: KernelEntry, root: str, member: str
              ) -> JobResult:
    """One kernel's BTF minimized for ``objects`` (their bytes: a cluster's workers need
    to see the archive, not the server's cache), as a btfhub-online tar.xz."""
    from ..archive.sources import read_btf
    from ..btf import from_bytes
    from ..btfgen import Minimizer, load_object
    from ..core import Target
    from ..core.engine import FLAVOR_SEP, objects_root_names

    objs = []
    names: set[str] = set()
    for blob in objects:
        try:  # the object's BTF is read lazily: its relocations' names read it here
            obj = load_object(blob)
            names |= objects_root_names([obj])
        except Exception as e:  # a client's bytes: every failure is theirs
            return JobResult(BAD_OBJECT, message=_text(e), culprit=blob.name)
        objs.append(obj)
    if not _inside(root, entry.path):
        return JobResult(BAD_KERNEL, message=f"{entry.path}: resolves outside the archive")
    try:
        raw = read_btf(entry)
        spec = from_bytes(raw, source=entry.path, find_names=names, prefix_sep=FLAVOR_SEP)
        target = Target(spec)
    except Exception as e:
        text = _text(e)
        return JobResult(BAD_KERNEL, message=text if entry.path in text
                         else f"{entry.path}: {text}")
    try:
        m = Minimizer(target)
        m.add_objects(objs)
        data = m.to_bytes()
    except Exception as e:  # the object's relocations cannot be resolved on this kernel
        return JobResult(BAD_OBJECT, message=_text(e))
    return JobResult(OK, btf_tarball(member, data), hashlib.sha256(raw).hexdigest(),
                     size=len(data))


def download_tarball(entry: KernelEntry, root: str, member: str) -> JobResult:
    """A kernel that is not a BTFHub tarball (package, vmlinux, raw BTF) as one: its raw
    BTF in a tar.xz."""
    from ..archive.sources import read_btf

    if not _inside(root, entry.path):
        return JobResult(BAD_KERNEL, message=f"{entry.path}: resolves outside the archive")
    try:
        raw = read_btf(entry)
    except Exception as e:
        text = _text(e)
        return JobResult(BAD_KERNEL, message=text if entry.path in text
                         else f"{entry.path}: {text}")
    data = btf_tarball(member, raw)
    return JobResult(OK, data, hashlib.sha256(raw).hexdigest(), size=len(data))


# -- server side -----------------------------------------------------------------------------


def _cluster_threads(executor: Executor) -> int:
    """How many tasks a Dask executor's cluster runs at once (4 when it cannot say)."""
    client = getattr(executor, "_client", None)
    try:
        return max(1, sum(client.nthreads().values())) if client is not None else 4
    except Exception:  # an executor of another kind
        return 4


class Runner:
    """Where jobs run: a warm local process pool of ``jobs`` workers, or the workers of
    the Dask scheduler at ``scheduler``; awaited from asyncio."""

    def __init__(self, metrics: Metrics, *, jobs: int | None = None,
                 scheduler: str | None = None):
        self.metrics = metrics
        self.jobs = jobs or os.cpu_count() or 1
        self.scheduler = scheduler
        self._stack = contextlib.ExitStack()
        self._executor: Executor | None = None
        self._inflight: dict[str, asyncio.Future[Any]] = {}

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            raise ServerFault("the service's workers are not running")
        return self._executor

    def _pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        # spawn, not fork: the server has threads (asyncio's, uvicorn's) a fork would copy
        return ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=warm)

    def start(self) -> None:
        """Start (or connect to) the workers and warm them; blocking, call it once."""
        if self.scheduler is not None:
            from ..archive.parallel import open_executor

            ex = self._stack.enter_context(open_executor(self.scheduler, self.jobs))
            assert ex is not None
            self._executor = ex
        else:
            self._executor = self._stack.enter_context(self._pool())
        # every worker up and importing before the first request (submitted together,
        # each submission finds no idle worker and starts one; a cluster's workers are
        # warmed by as many tasks as it has threads, or a few)
        n = self.jobs if self.scheduler is None else _cluster_threads(self._executor)
        for f in [self._executor.submit(warm) for _ in range(n)]:
            f.result()

    def close(self) -> None:
        for fut in list(self._inflight.values()):
            fut.cancel()
        if isinstance(self._executor, ProcessPoolExecutor):
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._stack.close()
        self._executor = None

    def _replace_pool(self, broken: Executor) -> None:
        """A worker died (killed, out of memory): a fresh pool, warming in the
        background, for the next jobs (once, however many jobs saw the old one break)."""
        if self.scheduler is not None or self._executor is not broken \
                or not isinstance(broken, ProcessPoolExecutor):
            return
        self._executor = pool = self._pool()
        broken.shutdown(wait=False, cancel_futures=True)
        for _ in range(self.jobs):
            pool.submit(warm)

    async def run(self, job: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker; its duration is observed as job ``job``.

        A pool found broken when the job is submitted (a worker died while idle) is
        replaced and the job submitted again; a worker that dies while running the job
        is a ServerFault for this job only (it may be the job that killed it)."""
        start = time.perf_counter()
        try:
            for _ in range(2):
                pool = self.executor
                try:
                    fut = pool.submit(fn, *args)
                except BrokenProcessPool:
                    self._replace_pool(pool)
                    continue
                try:
                    return await asyncio.wrap_future(fut)
                except BrokenProcessPool:
                    self._replace_pool(pool)
                    raise ServerFault(f"a worker process died during a {job} job") from None
            raise ServerFault(f"the worker processes die as they start ({job} job)")
        finally:
            self.metrics.job_duration.labels(job).observe(time.perf_counter() - start)

    async def in_thread(self, job: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a thread of this process: archive-wide jobs that map their
        kernels over :attr:`executor` themselves (check, bundle)."""
        start = time.perf_counter()
        try:
            return await asyncio.to_thread(fn, *args)
        finally:
            self.metrics.job_duration.labels(job).observe(time.perf_counter() - start)

    def _settled(self, key: str, fut: asyncio.Future[Any]) -> None:
        if self._inflight.get(key) is fut:
            del self._inflight[key]
        if not fut.cancelled():
            fut.exception()  # retrieved: every waiter may have gone away

    async def once(self, key: str, make: Callable[[], Awaitable[T]]) -> T:
        """``make()``'s result, computed once for every caller that asks for ``key``
        while it runs (a caller that goes away does not cancel it for the others)."""
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(make())
            self._inflight[key] = fut
            fut.add_done_callback(functools.partial(self._settled, key))
        else:
            self.metrics.coalesced.inc()
        result: T = await asyncio.shield(fut)
        return result


__all__ = ["BAD_KERNEL", "BAD_OBJECT", "OK", "JobResult", "Runner", "btf_tarball",
           "customize", "download_tarball", "index_kernel", "warm"]
