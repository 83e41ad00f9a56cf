"""map_kernels: order, isolation of one kernel's failure, any Executor, the progress bar."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from corebpf.archive.parallel import item_path, map_kernels
from corebpf.errors import BTFError

T = TypeVar("T")


def square_or_fail(path: str) -> int:
    """Module level so a process pool can pickle it."""
    n = int(os.path.basename(path).split(".")[0])
    if n == 3:
        raise BTFError("bad magic", source=path)
    if n == 4:
        raise RuntimeError("a bug")
    return n * n


def worker_pid(_: str) -> int:
    return os.getpid()


def unpicklable(_: str) -> Any:
    return threading.Lock()


def scaled(path: str, factor: int) -> int:
    return int(os.path.basename(path).split(".")[0]) * factor


class InlineExecutor(Executor):
    """The least an Executor needs: submit returning a Future (here, already done)."""

    def __init__(self) -> None:
        self.calls = 0

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.calls += 1
        fut: Future[T] = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:
            fut.set_exception(e)
        return fut


class Entry:
    def __init__(self, path: str) -> None:
        self.path = path


PATHS = [f"/archive/x/{n}.btf" for n in range(1, 7)]


def check_outcomes(outcomes: list[Any]) -> None:
    assert [o.path for o in outcomes] == PATHS
    assert [o.value for o in outcomes] == [1, 4, None, None, 25, 36]
    assert [o.ok for o in outcomes] == [True, True, False, False, True, True]
    bad = outcomes[2].error
    assert "/archive/x/3.btf" in bad and "bad magic" in bad
    assert outcomes[3].error == "/archive/x/4.btf: RuntimeError: a bug"


@pytest.mark.parametrize("jobs", [1, 2, None])
def test_process_pool_and_serial(jobs: int | None) -> None:
    check_outcomes(map_kernels(square_or_fail, PATHS, jobs=jobs, progress=False))


def test_serial_runs_here_and_pool_elsewhere() -> None:
    assert {o.value for o in map_kernels(worker_pid, PATHS, jobs=1)} == {os.getpid()}
    pids = {o.value for o in map_kernels(worker_pid, PATHS, jobs=2)}
    assert os.getpid() not in pids


def test_thread_pool_executor() -> None:
    with ThreadPoolExecutor(max_workers=3) as pool:
        check_outcomes(map_kernels(square_or_fail, PATHS, executor=pool))


def test_minimal_executor_subclass() -> None:
    ex = InlineExecutor()
    check_outcomes(map_kernels(square_or_fail, PATHS, executor=ex))
    assert ex.calls == len(PATHS)


def test_partial_and_entries() -> None:
    entries = [Entry(p) for p in PATHS[:2]]
    out = map_kernels(functools.partial(scaled, factor=10), [e.path for e in entries], jobs=2)
    assert [o.value for o in out] == [10, 20]
    assert item_path(entries[0]) == PATHS[0]
    assert item_path(Path("/a/b")) == "/a/b"


def test_result_that_cannot_cross_processes_is_a_failure() -> None:
    out = map_kernels(unpicklable, PATHS[:2], jobs=2)
    assert not any(o.ok for o in out)
    assert all(o.path in (o.error or "") for o in out)


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    map_kernels(square_or_fail, PATHS, jobs=1, progress=True)
    err = capsys.readouterr().err
    assert err.count("\r[") == len(PATHS)
    assert "] 6/6 6.btf" in err and err.endswith("\n")
    map_kernels(square_or_fail, PATHS, jobs=1)  # stderr is no terminal here: no bar
    assert capsys.readouterr().err == ""


def test_progress_bar_by_default_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    with open(slave, "w", closefd=True) as tty:
        monkeypatch.setattr("sys.stderr", tty)
        map_kernels(square_or_fail, PATHS[:2], jobs=1)
    seen = os.read(master, 4096).decode()
    os.close(master)
    assert "2/2 2.btf" in seen


def test_empty_and_bad_jobs() -> None:
    assert map_kernels(square_or_fail, [], progress=False) == []
    with pytest.raises(ValueError):
        map_kernels(square_or_fail, PATHS, jobs=0)


def test_pool_gets_the_largest_files_first(tmp_path: Path) -> None:
    """The biggest kernels start first (no large one left for the end), and outcomes still
    come back in the items' order."""
    sizes = {"1.btf": 10, "2.btf": 300, "3x.btf": 0, "5.btf": 200}
    paths = []
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
        paths.append(str(tmp_path / name))
    paths.append(str(tmp_path / "6.btf"))  # missing: size 0, still run
    order: list[str] = []

    def record(path: str) -> str:
        order.append(os.path.basename(path))
        return path

    ex = InlineExecutor()
    outcomes = map_kernels(record, paths, executor=ex, progress=False)
    assert [o.value for o in outcomes] == paths
    assert order[:3] == ["2.btf", "5.btf", "1.btf"]
