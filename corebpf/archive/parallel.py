"""One function per kernel across an archive, on any concurrent.futures Executor.

Archive jobs are embarrassingly parallel: each kernel's BTF is read and parsed by the
worker that uses it, so only file names and small results cross process boundaries.
The default is a local process pool; a Dask or Ray executor runs the same job on a
cluster. One kernel's failure (corrupt file, bug) is a failed outcome naming its path,
never the end of the run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Executor, ProcessPoolExecutor, as_completed
from typing import Generic, TextIO, TypeVar

from ..errors import Error

T = TypeVar("T")
R = TypeVar("R")


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


def _message(item: object, e: BaseException) -> str:
    path = item_path(item)
    text = str(e) if isinstance(e, Error) else f"{type(e).__name__}: {e}"
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


def map_kernels(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    executor: Executor | None = None,
    jobs: int | None = None,
    progress: bool | None = None,
) -> list[KernelOutcome[R]]:
    """``fn(item)`` for every item, in the items' order.

    ``fn`` must be picklable for a process pool (a module-level function or a
    ``functools.partial`` of one). Without ``executor``, a ProcessPoolExecutor of
    ``jobs`` workers (default: one per CPU) runs it, or this process when ``jobs`` is 1
    or there is a single item. ``progress`` (default: when stderr is a terminal) draws a
    bar on stderr.
    """
    if jobs is not None and jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
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
        if executor is None and (jobs == 1 or len(todo) <= 1):
            for i, item in enumerate(todo):
                settle(i, _guarded(fn, item))
        else:
            pool = executor or ProcessPoolExecutor(max_workers=jobs or os.cpu_count() or 1)
            try:
                futures = {pool.submit(_guarded, fn, todo[i]): i
                           for i in _largest_first(todo)}
                for fut in as_completed(futures):
                    i = futures[fut]
                    try:
                        status = fut.result()
                    except (Exception, CancelledError) as e:  # the executor's failure
                        status = (False, _message(todo[i], e))
                    settle(i, status)
            finally:
                if executor is None:
                    pool.shutdown(cancel_futures=True)
    finally:
        if bar is not None:
            bar.close()
    return [o for o in outcomes if o is not None]


__all__ = ["KernelOutcome", "Progress", "item_path", "map_kernels"]
