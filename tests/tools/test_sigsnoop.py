"""corebpf tool sigsnoop against libbpf-tools' sigsnoop on the same signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .peer import Running, c_tool, corebpf_tool, live_links, side_by_side, tool_links

HEADER = r"TIME\s+PID\s+COMM\s+SIG\s+TPID\s+RESULT"
HEADER_TEXT = "TIME     PID     COMM             SIG       TPID    RESULT"
# pids are below pid_max: no process has this one
MISSING = int(Path("/proc/sys/kernel/pid_max").read_text())
SENDER = f"""
import os, signal, subprocess, sys, threading
child = subprocess.Popen(["/bin/sleep", "30"])
os.kill(child.pid, signal.SIGUSR1)
child.wait()
try:
    os.kill({MISSING}, signal.SIGUSR2)
except ProcessLookupError:
    pass
signal.pthread_kill(threading.get_ident(), 0)
signal.pthread_sigmask(signal.SIG_BLOCK, [40])
os.kill(os.getpid(), 40)
print(child.pid, flush=True)
"""


class Sender:
    """A process that sends SIGUSR1 to its child, SIGUSR2 to a missing pid (ESRCH),
    signal 0 to itself by tgkill and real-time signal 40 (blocked) to itself."""

    pid = 0
    child = 0

    def __call__(self) -> None:
        p = subprocess.run([sys.executable, "-c", SENDER], capture_output=True, text=True,
                           check=True)
        self.child = int(p.stdout)

    def rows(self, lines: list[str]) -> list[str]:
        """The sender's rows, without the TIME column (the tools read the clock apart)."""
        out = []
        for ln in lines[1:]:
            f = ln.split()
            if len(f) == 6 and f[1].isdigit() and f[2] == self.comm:
                out.append(ln[9:])
        return out

    comm = os.path.basename(sys.executable)[:15]


def _run(opts: list[str]) -> tuple[Sender, list[str], list[str]]:
    s = Sender()
    c, py, _ = side_by_side([*c_tool("sigsnoop"), *opts], [*corebpf_tool("sigsnoop"), *opts],
                            HEADER, s)
    assert c[0] == py[0] == HEADER_TEXT
    for ln in py[1:]:
        time.strptime(ln[:8], "%H:%M:%S")
    return s, c, py


def _mine(s: Sender, rows: list[str], pid: int) -> list[str]:
    return [r for r in rows if r.split()[0] == str(pid)]


def _sender_pid(s: Sender, py: list[str]) -> int:
    """The sender's pid: the one that signalled its child."""
    for r in s.rows(py):
        f = r.split()
        if f[3] == str(s.child):
            return int(f[0])
    raise AssertionError(f"no row for the signal to {s.child}: {py}")


def test_generated_signals_agree_with_libbpf_tools() -> None:
    s, c, py = _run([])
    pid = _sender_pid(s, py)
    comm = s.comm
    assert _mine(s, s.rows(py), pid) == [
        f"{pid:<7} {comm:<16} {10:<9} {s.child:<7} 0     ",
        f"{pid:<7} {comm:<16} {40:<9} {pid:<7} 0     ",
        f"{pid:<7} {comm:<16} {17:<9} {os.getpid():<7} 0     ",  # SIGCHLD at its exit
    ]  # signal_generate: no row for the ESRCH kill nor for signal 0
    assert _mine(s, s.rows(c), pid) == _mine(s, s.rows(py), pid)


def test_kill_syscalls_with_names_agree() -> None:
    s, c, py = _run(["-k", "-n"])
    pid = _sender_pid(s, py)
    comm = s.comm
    assert _mine(s, s.rows(py), pid) == [
        f"{pid:<7} {comm:<16} {'SIGUSR1':<9} {s.child:<7} 0     ",
        f"{pid:<7} {comm:<16} {'SIGUSR2':<9} {MISSING:<7} -3    ",
        f"{pid:<7} {comm:<16} {'N/A':<9} {pid:<7} 0     ",
        f"{pid:<7} {comm:<16} {40:<9} {pid:<7} 0     ",
    ]
    assert _mine(s, s.rows(c), pid) == _mine(s, s.rows(py), pid)


def test_failed_kills_and_signal_filter_agree() -> None:
    s, c, py = _run(["-k", "-x"])
    rows = [r for r in s.rows(py) if r.split()[3] == str(MISSING)]
    assert len(rows) == 1 and rows[0].split()[2:] == ["12", str(MISSING), "-3"]
    assert all(r.split()[4] != "0" for r in py[1:])  # -x: failures only
    assert [r for r in s.rows(c) if r in rows] == rows
    s, c, py = _run(["-s", "10", "-n"])
    assert all(r.split()[3] == "SIGUSR1" for r in py[1:])
    assert [r for r in s.rows(py) if r.split()[3] == str(s.child)] == [
        r for r in s.rows(c) if r.split()[3] == str(s.child)]
    assert any(r.split()[3] == str(s.child) for r in s.rows(py))


def test_pid_filter_and_json() -> None:
    me = os.getpid()
    t = Running([*corebpf_tool("sigsnoop"), "--json", "-k", "-p", str(me)], None)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not t.lines:
        signal.pthread_kill(threading.get_ident(), 0)
        os.kill(me, 0)
        t._read(0.5)
    lines, err = t.stop()
    assert t.proc.returncode == 0, err
    rows = [json.loads(ln) for ln in lines]
    assert rows and all(r["pid"] == me for r in rows)
    r = rows[0]
    assert (r["sig"], r["signame"], r["tpid"], r["ret"]) == (0, "N/A", me, 0)


def test_bad_options_and_clean_stop() -> None:
    for opts, msg in ((["-s", "USR1"], "Invalid SIGNAL: USR1"), (["-p", "-4"], "Invalid PID: -4")):
        r = subprocess.run([*corebpf_tool("sigsnoop"), *opts], capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr
    t = Running([*corebpf_tool("sigsnoop"), "-k"], HEADER)
    ours = tool_links(t.proc.pid)
    assert ours and live_links(ours) == ours
    t.stop(signal.SIGTERM)
    assert t.proc.returncode == 0
    assert not live_links(ours)
