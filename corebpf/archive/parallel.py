"""One function per kernel across an archive, on any concurrent.futures Executor.

Archive jobs are embarrassingly parallel: each kernel's BTF is read and parsed by the
worker that uses it, so only file names and small results cross process boundaries.
The default is a local process pool; a dask.distributed Client (or its executor, see
:func:`open_executor`) runs the same job on a cluster, and so can any other Executor.
One kernel's failure (corrupt file, bug, a worker that died) is a failed outcome naming
its path, never the end of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    CancelledError,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    as_completed,
)
from typing import Any, Generic, Protocol, TextIO, TypeAlias, TypeVar, runtime_checkable

from ..errors import Error

T = TypeVar("T")
R = TypeVar("R")


@runtime_checkable
class ClusterClient(Protocol):
    """What map_kernels needs of a cluster client: a dask.distributed Client (typed
    structurally so that the core never imports the optional ``distributed``)."""

    def get_executor(self, **kwargs: Any) -> Executor: ...


#: Where archive jobs may run: any concurrent.futures Executor (a process pool, a Dask
#: ClientExecutor) or a Dask Client itself
ExecutorLike: TypeAlias = Executor | ClusterClient

#: Seconds open_executor waits for a scheduler to answer, then for a first worker
CONNECT_TIMEOUT = 10.0
WORKER_TIMEOUT = 60.0


class KernelOutcome(Generic[R]):
    """What ``fn`` made of one kernel: its value, or the error that stopped it."""

    __slots__ = ("error", "item", "path", "value")

    def __init__(self, item: object, path: str, value: R | None, error: str | None):
        self.item = item
        self.path = path
        self.value = value
        self.error = error

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        state = "ok" if self.error is None else f"error={self.error!r}"
        return f"KernelOutcome({self.path!r}, {state})"


def item_path(item: object) -> str:
    """The file a work item stands for: ``item.path`` (a KernelEntry) or the item itself."""
    path = getattr(item, "path", item)
    return os.fspath(path) if isinstance(path, str | os.PathLike) else str(path)


def _guarded(fn: Callable[[T], R], item: T) -> tuple[bool, R | str]:
    """Runs in the worker: the exception becomes a message there, because exception
    objects do not always survive pickling back to the parent."""
    try:
        return True, fn(item)
    except Exception as e:  # one kernel's failure must not end the run
        return False, _message(item, e)


def _guarded_pickled(fn: Callable[[T], R], item: T) -> tuple[bool, bytes | str]:
    """_guarded for another process: the value is pickled here, so that a value that
    cannot be pickled is this kernel's failure. (A Dask worker that cannot serialize a
    result leaves its future pending for ever.)"""
    ok, got = _guarded(fn, item)
    if not ok:
        return False, str(got)
    try:
        return True, pickle.dumps(got, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:
        return False, _message(item, e)


def _unpickled(item: object, status: tuple[bool, bytes | str]) -> tuple[bool, Any]:
    ok, got = status
    if not ok or not isinstance(got, bytes):
        return False, str(got)
    try:
        return True, pickle.loads(got)  # our own workers' bytes
    except Exception as e:
        return False, _message(item, e)


def _message(item: object, e: BaseException) -> str:
    path = item_path(item)
    if isinstance(e, Error):
        text = str(e)
    elif isinstance(e, CancelledError):  # Dask cancels what a lost scheduler held
        text = "cancelled: the pool or cluster stopped before this kernel was done"
    else:
        text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return text if path in text else f"{path}: {text}"


class Progress:
    """``[#####     ] 12/30 name`` redrawn in place on a terminal."""

    WIDTH = 24

    def __init__(self, total: int, stream: TextIO):
        self.total = total
        self.done = 0
        self.stream = stream

    def step(self, name: str) -> None:
        self.done += 1
        filled = self.WIDTH * self.done // max(self.total, 1)
        bar = "#" * filled + " " * (self.WIDTH - filled)
        line = f"[{bar}] {self.done}/{self.total} {name}"
        try:
            cols = os.get_terminal_size(self.stream.fileno()).columns or 80
        except (OSError, ValueError, AttributeError):
            cols = 80
        line = line[: max(cols - 1, 40)]
        self.stream.write("\r" + line + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.done:
            self.stream.write("\n")
            self.stream.flush()


def _want_progress(progress: bool | None, stream: TextIO) -> bool:
    if progress is not None:
        return progress
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _largest_first(items: list[T]) -> list[int]:
    """Submission order for a pool: the biggest files first, so that the run does not
    end waiting on one large kernel started last (work roughly follows file size)."""
    def size(i: int) -> int:
        try:
            return os.stat(item_path(items[i])).st_size
        except (OSError, ValueError):
            return 0

    return sorted(range(len(items)), key=size, reverse=True)


def as_executor(executor: ExecutorLike | None) -> Executor | None:
    """A Dask Client becomes its executor; an Executor (or None) stays as it is.

    A Client's tasks are submitted impure: each call is new work even when the file
    names repeat, so a kernel file replaced between two runs is read again."""
    if executor is None or isinstance(executor, Executor):
        return executor
    if isinstance(executor, ClusterClient):
        return executor.get_executor(pure=False)
    raise TypeError(f"executor must be a concurrent.futures.Executor or a Dask Client, "
                    f"not {type(executor).__name__}")


def map_kernels(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    executor: ExecutorLike | None = None,
    jobs: int | None = None,
    progress: bool | None = None,
) -> list[KernelOutcome[R]]:
    """``fn(item)`` for every item, in the items' order.

    ``fn`` and the items must be picklable for a process pool or a cluster (a
    module-level function or a ``functools.partial`` of one; KernelEntry records).
    ``executor`` is any Executor or a Dask Client (see :func:`as_executor`); without
    it, a ProcessPoolExecutor of
    ``jobs`` workers (default: one per CPU) runs it, or this process when ``jobs`` is 1
    or there is a single item. ``progress`` (default: when stderr is a terminal) draws a
    bar on stderr.
    """
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    given = as_executor(executor)
    todo = list(items)
    outcomes: list[KernelOutcome[R] | None] = [None] * len(todo)
    bar = Progress(len(todo), sys.stderr) if _want_progress(progress, sys.stderr) else None

    def settle(i: int, status: tuple[bool, R | str]) -> None:
        ok, got = status
        path = item_path(todo[i])
        if ok:
            outcomes[i] = KernelOutcome(todo[i], path, got, None)  # type: ignore[arg-type]
        else:
            outcomes[i] = KernelOutcome(todo[i], path, None, str(got))
        if bar is not None:
            bar.step(os.path.basename(path))

    try:
        if given is None and (jobs == 1 or len(todo) <= 1):
            for i, item in enumerate(todo):
                settle(i, _guarded(fn, item))
        else:
            pool = given or ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
            futures: dict[Future[tuple[bool, bytes | str]], int] = {}
            try:
                for i in _largest_first(todo):
                    futures[pool.submit(_guarded_pickled, fn, todo[i])] = i
                for fut in as_completed(futures):
                    i = futures[fut]
                    try:
                        status = _unpickled(todo[i], fut.result())
                    except (Exception, CancelledError) as e:  # the executor's failure
                        status = (False, _message(todo[i], e))
                    settle(i, status)
            finally:
                if given is None:
                    pool.shutdown(cancel_futures=True)
                else:  # interrupted: a shared pool or cluster must not go on with our work
                    for fut in futures:
                        fut.cancel()
    finally:
        if bar is not None:
            bar.close()
    return [o for o in outcomes if o is not None]


def require_distributed() -> Any:
    """The ``distributed`` module, or an Error saying which extra to install."""
    try:
        import distributed
    except ImportError:
        raise Error("running on a Dask cluster (--scheduler) needs the dask extra: "
                    "pip install 'corebpf[dask]'") from None
    return distributed


def _worker_version() -> str:
    """Runs on each worker: the corebpf it imports (module level, pickled by name, so a
    worker without corebpf fails here rather than on every kernel)."""
    from .. import __version__

    return __version__


def _probe(scheduler: str, timeout: float) -> None:
    """Ask the address who it is before a Client is made: a Client whose start fails
    stays half made, and its finalizer then blocks for twice the timeout and prints a
    traceback. The exchange runs its own event loop in a thread, so callers may be in
    one."""
    from distributed.comm import core as comm_core
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.core import send_recv

    try:
        scheme, location = parse_address(scheduler)
        host, port = parse_host_port(location, default_port=8786)
    except (ValueError, TypeError) as e:
        raise Error(f"{scheduler!r} is not a Dask scheduler address "
                    f"(expected tcp://HOST:PORT): {e}") from None
    if scheme not in ("tcp", "tls"):
        raise Error(f"{scheduler}: the Dask scheduler must be reached over tcp:// or "
                    f"tls://, not {scheme}://")
    try:  # a plain TCP connection first: Dask's own retries a refusal until its timeout
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise Error(f"cannot connect to the Dask scheduler at {scheduler}: {reason}"
                    ) from None

    comm_connect: Any = comm_core.connect  # (untyped in distributed)

    async def identity() -> Any:
        comm = await comm_connect(scheduler, timeout=timeout)
        try:
            return await send_recv(comm, op="identity", n_workers=0)
        finally:
            await comm.close()

    def ask() -> Any:
        return asyncio.run(asyncio.wait_for(identity(), timeout))

    with ThreadPoolExecutor(1, thread_name_prefix="corebpf-probe") as one:
        try:
            answer = one.submit(ask).result()
        except BaseException as e:  # OSError, TimeoutError, garbage from a non-Dask peer
            if not isinstance(e, Exception):
                raise
            if isinstance(e, TimeoutError):
                reason = f"no answer within {timeout:g} s"
            else:
                reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
            raise Error(f"{scheduler} does not answer as a Dask scheduler: {reason}"
                        ) from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        raise Error(f"{scheduler} answers, but not as a Dask scheduler")


def connect(scheduler: str, *, timeout: float = CONNECT_TIMEOUT,
            worker_timeout: float = WORKER_TIMEOUT) -> Any:
    """A dask.distributed Client of the scheduler at ``scheduler`` (``tcp://host:8786``),
    once at least one worker has joined and the scheduler and every worker run this
    corebpf version.

    Every failure (no ``distributed``, a scheduler that does not answer within
    ``timeout`` seconds, no worker within ``worker_timeout``, workers without corebpf)
    is an Error naming the address. The caller closes the Client. Blocking (for up to
    ``timeout`` + ``worker_timeout``); it may be called from a thread that runs an
    asyncio loop (the Client runs its own loop in a thread)."""
    distributed = require_distributed()
    from .. import __version__

    _probe(scheduler, timeout)
    try:
        client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
    except Exception as e:  # OSError, TimeoutError, ValueError (a bad address): all one
        reason = str(e) or type(e).__name__
        raise Error(f"cannot connect to the Dask scheduler at {scheduler}: {reason}"
                    ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except Exception:
            raise Error(f"the Dask scheduler at {scheduler} has no worker "
                        f"(none joined within {worker_timeout:g} s)") from None
        try:  # the scheduler unpickles the tasks too: it needs corebpf as well
            versions: dict[str, str] = {"the scheduler": client.run_on_scheduler(
                _worker_version)}
            versions.update(client.run(_worker_version))
        except Exception as e:
            raise Error(f"the Dask cluster of {scheduler} cannot run corebpf (install "
                        f"corebpf {__version__} on the scheduler and every worker): "
                        f"{type(e).__name__}: {e}") from None
        wrong = sorted(f"{w} has {v}" for w, v in versions.items() if v != __version__)
        if wrong:
            raise Error(f"the Dask workers of {scheduler} run another corebpf than this "
                        f"one ({__version__}): {', '.join(wrong)}")
    except BaseException:
        client.close()
        raise
    return client


@contextlib.contextmanager
def open_executor(scheduler: str | None, jobs: int | None = None, *,
                  timeout: float = CONNECT_TIMEOUT) -> Iterator[Executor | None]:
    """Where a command's per-kernel work runs: with a ``scheduler`` address, the
    executor of a Dask Client connected to it (see :func:`connect`; closed on exit);
    without, None, which map_kernels reads as its own pool of ``jobs`` processes.

    ``jobs`` does not apply to a cluster (its workers' threads set the parallelism)."""
    del jobs  # part of the signature so that callers pass what they have
    if scheduler is None:
        yield None
        return
    client = connect(scheduler, timeout=timeout)
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()


__all__ = [
    "CONNECT_TIMEOUT",
    "ClusterClient",
    "ExecutorLike",
    "KernelOutcome",
    "Progress",
    "as_executor",
    "connect",
    "item_path",
    "map_kernels",
    "open_executor",
    "require_distributed",
]
