"""corebpf tool opensnoop against libbpf-tools' opensnoop on the same opens."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from .peer import Running, c_tool, corebpf_tool, live_links, side_by_side, tool_links

HEADER = r"PID\s+COMM\s+FD ERR"
SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437}.get(os.uname().machine)


def _comm() -> str:
    return Path("/proc/self/comm").read_text().strip()


def _workload(tmp: Path, tag: str) -> dict[str, int]:
    """A missing path (ENOENT), a created one (fd, O_CREAT mode 0640), the created one
    opened again read-only, and an openat2() of a missing path."""
    missing = f"/tmp/{tag}-missing"
    try:
        open(missing)
    except FileNotFoundError:
        pass
    fd = os.open(tmp / f"{tag}-created", os.O_CREAT | os.O_WRONLY, 0o640)
    os.close(fd)
    fd2 = os.open(tmp / f"{tag}-created", os.O_RDONLY)
    os.close(fd2)
    if SYS_OPENAT2 is not None:
        how = (ctypes.c_uint64 * 3)(0, 0, 0)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall(SYS_OPENAT2, -100, f"/tmp/{tag}-openat2".encode(), ctypes.byref(how),
                     ctypes.c_size_t(24))
    return {"fd": fd, "fd2": fd2}


def _rows(lines: list[str], tag: str) -> list[str]:
    return [ln for ln in lines if tag in ln]


def test_rows_agree_with_libbpf_tools(tmp_path: Path) -> None:
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    got: dict[str, int] = {}
    c, py, _ = side_by_side(c_tool("opensnoop"), corebpf_tool("opensnoop"), HEADER,
                            lambda: got.update(_workload(tmp_path, tag)))
    assert c[0] == py[0] == "PID    COMM              FD ERR PATH"
    pid, comm = os.getpid(), _comm()
    assert _rows(py, tag) == [
        f"{pid:<6} {comm:<16}  -1   2 /tmp/{tag}-missing",
        f"{pid:<6} {comm:<16} {got['fd']:>3}   0 {tmp_path}/{tag}-created",
        f"{pid:<6} {comm:<16} {got['fd2']:>3}   0 {tmp_path}/{tag}-created",
    ]  # no openat2 row: Debian's 0.26 does not trace it
    assert _rows(c, tag) == _rows(py, tag)


def test_options_agree_with_libbpf_tools(tmp_path: Path) -> None:
    """-x -e -U -p: failed opens of this process only, flags and uid columns."""
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    opts = ["-x", "-e", "-U", "-p", str(os.getpid())]
    c, py, _ = side_by_side([*c_tool("opensnoop"), *opts], [*corebpf_tool("opensnoop"), *opts],
                            "FLAGS", lambda: _workload(tmp_path, tag))
    assert c[0] == py[0] == "UID     PID    COMM              FD ERR FLAGS    PATH"
    assert _rows(py, tag) == [
        f"{os.getuid():<7} {os.getpid():<6} {_comm():<16}  -1   2 "
        f"{os.O_RDONLY | os.O_CLOEXEC:08o} /tmp/{tag}-missing"]
    assert _rows(c, tag) == _rows(py, tag)
    # only this process: nothing else's rows
    assert all(ln.split()[1] == str(os.getpid()) for ln in py[1:] if ln.strip())


def test_timestamp_column_agrees(tmp_path: Path) -> None:
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    c, py, _ = side_by_side([*c_tool("opensnoop"), "-T"], [*corebpf_tool("opensnoop"), "-T"],
                            "TIME", lambda: _workload(tmp_path, tag))
    assert c[0] == py[0]
    rc, rp = _rows(c, tag), _rows(py, tag)
    assert len(rp) == 3
    assert [r[9:] for r in rc] == [r[9:] for r in rp]
    for r in rp:
        time.strptime(r[:8], "%H:%M:%S")


def _json_rows(argv: list[str], tmp: Path, tag: str, want: int) -> list[dict[str, object]]:
    t = Running([*corebpf_tool("opensnoop"), "--json", *argv], None)
    deadline = time.monotonic() + 20
    # --json has no header: repeat the workload until its rows show up
    while time.monotonic() < deadline and sum(tag in ln for ln in t.lines) < want:
        _workload(tmp, tag)
        t._read(0.5)
    lines, err = t.stop()
    assert t.proc.returncode == 0, err
    return [json.loads(ln) for ln in lines if tag in ln]


def test_json_exact_values_and_openat2(tmp_path: Path) -> None:
    if SYS_OPENAT2 is None or not os.path.exists(
            "/sys/kernel/tracing/events/syscalls/sys_enter_openat2"):
        pytest.skip("no openat2 tracepoint on this kernel")
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    rows = _json_rows(["--openat2", "-t", str(os.getpid())], tmp_path, tag, 4)
    pid = os.getpid()
    missing = next(r for r in rows if r["path"] == f"/tmp/{tag}-missing")
    assert missing == {"pid": pid, "tid": pid, "uid": os.getuid(), "comm": _comm(), "fd": -1,
                       "err": 2, "flags": os.O_RDONLY | os.O_CLOEXEC, "mode": 0,
                       "path": f"/tmp/{tag}-missing"}
    created = next(r for r in rows if r["path"] == f"{tmp_path}/{tag}-created")
    assert created["fd"] >= 0 and created["err"] == 0  # type: ignore[operator]
    assert created["flags"] == os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC
    assert created["mode"] == 0o640
    o2 = next(r for r in rows if r["path"] == f"/tmp/{tag}-openat2")
    assert (o2["fd"], o2["err"], o2["flags"]) == (-1, 2, 0)


def test_bad_options_are_usage_errors() -> None:
    for opts, msg in ((["-p", "0"], "Invalid PID: 0"), (["-t", "x"], "Invalid TID: x"),
                      (["-u", "4294967295"], "Invalid UID 4294967295"),
                      (["-d", "-1"], "Invalid duration: -1")):
        r = subprocess.run([*corebpf_tool("opensnoop"), *opts], capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr


def test_stop_leaves_nothing_attached() -> None:
    t = Running([*corebpf_tool("opensnoop"), "-n", "no-such-comm"], HEADER)
    ours = tool_links(t.proc.pid)
    assert ours and live_links(ours) == ours
    t.stop(signal.SIGTERM)
    assert t.proc.returncode == 0
    assert t.lines == ["PID    COMM              FD ERR PATH"]
    assert not live_links(ours)
