"""Options shared by the commands that map work over many kernels (check, archive, gen):
where the work runs (worker processes here, or a Dask cluster) and whether to draw the
progress bar."""

from __future__ import annotations

import argparse
import contextlib

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Executor


def positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def add_pool_options(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=positive, metavar="N",
                       help="worker processes (default: one per CPU; 1 runs in this "
                       "process); not with --scheduler")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run the per-kernel work on the dask.distributed cluster of "
                       "this scheduler (tcp://host:8786); its workers set the parallelism, "
                       "so --jobs is refused; needs pip install 'corebpf[dask]'")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def progress(args: argparse.Namespace) -> bool | None:
    """map_kernels' ``progress``: off when asked, else on a terminal."""
    return False if args.no_progress else None


@contextlib.contextmanager
def executor(args: argparse.Namespace) -> Iterator[Executor | None]:
    """The ``executor`` for the library call, within ``with``: a Dask cluster's with
    --scheduler (connected here, closed on exit), else None (map_kernels' own pool of
    --jobs processes)."""
    from ..archive.parallel import open_executor, require_distributed

    scheduler = getattr(args, "scheduler", None)
    if scheduler is not None:
        require_distributed()  # (imported before its loggers are quietened)
    with _quiet_dask() if scheduler else contextlib.nullcontext(), \
            open_executor(scheduler, args.jobs) as pool:
        yield pool


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's client-side logging silenced: what it would log (a lost scheduler, a
    rescheduled task) reaches the user as the failed kernels' messages, which its
    tracebacks would bury."""
    import logging

    loggers = [logging.getLogger(name) for name in
               ["distributed", *logging.Logger.manager.loggerDict]
               if name.split(".")[0] == "distributed"]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def worker_path(args: argparse.Namespace, path: str) -> str:
    """A path the workers open: absolute with --scheduler (a cluster's workers resolve
    a relative one from their own working directory), as given otherwise."""
    import os

    return os.path.abspath(path) if getattr(args, "scheduler", None) else path
