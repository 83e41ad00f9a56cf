"""corebpf tool syscount against libbpf-tools' syscount on one workload: a child doing
known syscalls (1000 getppid, 500 failed stat, 300 failed close) once both are attached."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from corebpf.tools.syscount import syscall_table

from .peer import Running, c_tool, corebpf_tool, side_by_side

READY = r"Tracing syscalls, printing top \d+\.\.\. Ctrl\+C to quit\."
CHILD = """\
import os, sys
print("ready", flush=True)
sys.stdin.readline()
for _ in range(1000):
    os.getppid()
for _ in range(500):
    try:
        os.stat("/nonexistent-corebpf-syscount")
    except OSError:
        pass
for _ in range(300):
    try:
        os.close(9999)
    except OSError:
        pass
print("done", flush=True)
sys.stdin.readline()
"""
WORKLOAD = {"getppid": 1000, "newfstatat": 500, "close": 300}


@contextmanager
def child() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    p = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline() == "ready\n"  # its start-up syscalls are over
    try:
        yield p.pid, p
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()


def go(p: subprocess.Popen[str]) -> None:
    """Run the child's syscalls and wait for their end (it then blocks in read)."""
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write("\n")
    p.stdin.flush()
    assert p.stdout.readline() == "done\n"


def table(lines: list[str]) -> dict[str, list[str]]:
    """The rows after the column header: first column (or PID COMM) -> the others."""
    start = next(i for i, ln in enumerate(lines) if ln.startswith(("SYSCALL", "PID    COMM")))
    out = {}
    for ln in lines[start + 1:]:
        if not ln.strip():
            break
        f = ln.split()
        if lines[start].startswith("PID"):
            out[" ".join(f[:2])] = f[2:]
        else:
            out[f[0]] = f[1:]
    return out


def both(opts: list[str], pid: int, p: subprocess.Popen[str]) -> tuple[list[str], list[str]]:
    c, py, _ = side_by_side([*c_tool("syscount"), "-p", str(pid), *opts],
                            [*corebpf_tool("syscount"), "-p", str(pid), *opts], READY,
                            lambda: go(p), settle=0.2)
    return c, py


def needs_x86_64() -> None:
    if platform.machine() != "x86_64":
        pytest.skip("the C tool names syscalls only on x86_64 (elsewhere it needs ausyscall)")


def test_counts_agree_with_libbpf_tools() -> None:
    needs_x86_64()
    with child() as (pid, p):
        c, py = both([], pid, p)
    assert c[0] == py[0] == "Tracing syscalls, printing top 10... Ctrl+C to quit."
    assert py[1].startswith("[") and py[2] == c[2] == f"{'SYSCALL':<22} {'COUNT':>8}"
    tc, tp = table(c), table(py)
    for name, n in WORKLOAD.items():
        assert tc[name] == tp[name] == [str(n)]
    assert tc == tp  # the whole table: the child does nothing else meanwhile
    assert f"{'getppid':<22} {1000:>8}" in py


def test_latency_columns_agree() -> None:
    needs_x86_64()
    with child() as (pid, p):
        c, py = both(["-L", "-m"], pid, p)
    assert py[2] == c[2] == f"{'SYSCALL':<22} {'COUNT':>8} {'TIME (ms)':>16}"
    tc, tp = table(c), table(py)
    for name, n in WORKLOAD.items():
        assert tc[name][0] == tp[name][0] == str(n)
        assert float(tp[name][1]) > 0
    # sorted by time, as the C tool
    times = [float(v[1]) for v in tp.values()]
    assert times == sorted(times, reverse=True)


def test_per_process_failed_errno_top_agree() -> None:
    needs_x86_64()
    comm = os.path.basename(sys.executable)[:15]
    with child() as (pid, p):
        c, py = both(["-P"], pid, p)
    assert py[2] == c[2] == f"{'PID    COMM':<22} {'COUNT':>8}"
    assert table(c) == table(py)
    assert list(table(py)) == [f"{pid} {comm}"]
    with child() as (pid, p):
        c, py = both(["-x"], pid, p)
    assert table(c) == table(py) == {"newfstatat": ["500"], "close": ["300"]}
    with child() as (pid, p):
        c, py = both(["-e", "ENOENT"], pid, p)
    assert table(c) == table(py) == {"newfstatat": ["500"]}
    with child() as (pid, p):
        c, py = both(["-T", "2", "-e", "9"], pid, p)  # EBADF
    assert table(c) == table(py) == {"close": ["300"]}
    with child() as (pid, p):
        c, py = both(["-T", "2"], pid, p)
    assert list(table(py)) == list(table(c)) == ["getppid", "newfstatat"]


def test_list_is_the_c_tools() -> None:
    needs_x86_64()
    c = subprocess.run([*c_tool("syscount"), "-l"], capture_output=True, text=True)
    py = subprocess.run([*corebpf_tool("syscount"), "-l"], capture_output=True, text=True)
    assert py.returncode == c.returncode == 0
    assert py.stdout == c.stdout
    assert len(py.stdout.splitlines()) == len(syscall_table("x86_64")) == 349


def test_arm64_table() -> None:
    arm = syscall_table("aarch64")
    assert arm[56] == "openat" and arm[79] == "newfstatat" and arm[172] == "getpid"
    assert arm[435] == "clone3" and "open" not in arm.values()  # only openat on arm64


def test_interval_and_json() -> None:
    with child() as (pid, p):
        t = Running([*corebpf_tool("syscount"), "-p", str(pid), "-i", "1"], READY)
        go(p)
        t.wait_for(r"^getppid\s+1000$", 30)
        lines, err = t.stop()
    assert t.proc.returncode == 0, err
    stamps = [i for i, ln in enumerate(lines) if ln.startswith("[")]
    assert stamps and all(lines[i + 1].startswith("SYSCALL") for i in stamps)

    with child() as (pid, p):
        t = Running([*corebpf_tool("syscount"), "--json", "-p", str(pid), "-i", "1", "-L"],
                    None)
        t.wait_attached()  # no header with --json: attached once linked
        go(p)
        rows = json.loads(t.wait_for("getppid", 30))["rows"]
        t.stop()
    row = next(r for r in rows if r["syscall"] == "getppid")
    assert row["count"] == 1000 and row["time_us"] > 0
    assert syscall_table()[row["nr"]] == "getppid"


def test_bad_options() -> None:
    for opt, msg in ((["-p", "x"], "invalid PID: x"), (["-T", "0"], "invalid TOP: 0"),
                     (["-i", "-1"], "invalid INTERVAL: -1"), (["-d", "0"], "invalid DURATION"),
                     (["-e", "EBOGUS"], "invalid errno: EBOGUS")):
        r = subprocess.run([*corebpf_tool("syscount"), *opt], capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr


def test_duration_ends_the_run() -> None:
    r = subprocess.run([*corebpf_tool("syscount"), "-d", "1", "-T", "2"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Tracing syscalls, printing top 2... Ctrl+C to quit."
    assert lines[1].startswith("[") and lines[2] == f"{'SYSCALL':<22} {'COUNT':>8}"
    assert len(lines) == 6 and lines[5] == ""  # two rows, then the blank line
