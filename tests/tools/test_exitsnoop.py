"""corebpf tool exitsnoop against libbpf-tools' exitsnoop on the same exits."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from .peer import Running, c_tool, corebpf_tool, live_links, side_by_side, tool_links

HEADER = r"PCOMM\s+PID\s+PPID\s+TID\s+AGE\(s\)\s+EXIT_CODE"
# a process whose second thread is still blocked when the process calls exit_group(5)
THREADED = """
import os, sys, threading
ev = threading.Event()
t = threading.Thread(target=ev.wait)
t.start()
print(threading.get_native_id(), t.native_id, flush=True)
sys.stdin.readline()
os._exit(5)
"""


class Workload:
    """Known exits: a code, a normal exit, a signal death, a two-thread process (exit
    codes 42, 0, SIGSEGV, 5); remembers pids and tids."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self.thread_tid = 0

    def __call__(self) -> None:
        for name, argv in (("code", ["/bin/sh", "-c", "exit 42"]), ("zero", ["/bin/true"]),
                           ("segv", ["/bin/sh", "-c", "kill -SEGV $$"])):
            p = subprocess.Popen(argv)
            self.pids[name] = p.pid
            p.wait()
        p = subprocess.Popen([sys.executable, "-c", THREADED], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdin is not None
        main, self.thread_tid = map(int, p.stdout.readline().split())
        assert main == p.pid
        self.pids["threads"] = p.pid
        p.stdin.write("\n")
        p.stdin.close()
        p.wait()

    def rows(self, lines: list[str], skip: int = 0) -> dict[int, str]:
        """The rows of our processes by tid, AGE masked (see _ages)."""
        mine = set(self.pids.values()) | {self.thread_tid}
        out = {}
        for ln in lines:
            f = ln.split()
            if len(f) > skip + 4 and f[skip + 3].isdigit() and int(f[skip + 3]) in mine:
                out[int(f[skip + 3])] = ln
        return out


def _masked(line: str) -> str:
    """AGE comes from each tool's own exit-time read: equal to the hundredth almost always."""
    return re.sub(r"(\S+\s+\d+\s+\d+\s+\d+\s+)\d+\.\d\d ", r"\1#.## ", line)


def _age(line: str, skip: int = 0) -> float:
    return float(line.split()[skip + 4])


def test_rows_agree_with_libbpf_tools() -> None:
    w = Workload()
    c, py, _ = side_by_side(c_tool("exitsnoop"), corebpf_tool("exitsnoop"), HEADER, w)
    assert c[0] == py[0] == "PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE"
    rc, rp = w.rows(c), w.rows(py)
    me = os.getpid()
    pyexe = os.path.basename(sys.executable)[:15]
    expect = {w.pids["code"]: ("sh", "code 42"), w.pids["zero"]: ("true", "0"),
              w.pids["segv"]: ("sh", "signal 11 (Segmentation fault)"),
              w.pids["threads"]: (pyexe, "code 5")}
    assert set(rp) == set(expect)  # the process's other thread: only with -T
    for pid, (comm, code) in expect.items():
        assert _masked(rp[pid]) == (f"{comm:<16} {pid:<7} {me:<7} {pid:<7} #.##    {code}")
        assert _masked(rc[pid]) == _masked(rp[pid])
        assert abs(_age(rc[pid]) - _age(rp[pid])) <= 0.011


def test_threads_failed_and_timestamp_agree() -> None:
    """-T -x -t: the thread's own exit (the group's code), no row for the zero exit."""
    w = Workload()
    opts = ["-T", "-x", "-t"]
    c, py, _ = side_by_side([*c_tool("exitsnoop"), *opts], [*corebpf_tool("exitsnoop"), *opts],
                            "TIME", w)
    assert c[0] == py[0] == "TIME(s)  PCOMM            PID     PPID    TID     AGE(s)  EXIT_CODE"
    rc, rp = w.rows(c, skip=1), w.rows(py, skip=1)
    assert set(rp) == {w.pids["code"], w.pids["segv"], w.pids["threads"], w.thread_tid}
    t = rp[w.thread_tid].split()
    assert t[2:5] == [str(w.pids["threads"]), str(os.getpid()), str(w.thread_tid)]
    assert t[-2:] == ["code", "5"]
    for tid, row in rp.items():
        time.strptime(row[:8], "%H:%M:%S")
        assert _masked(rc[tid][9:]) == _masked(row[9:])


def test_pid_filter() -> None:
    """-p: only the one process, both its threads with -T."""
    p = subprocess.Popen([sys.executable, "-c", THREADED], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdin is not None
    _, tid = map(int, p.stdout.readline().split())
    t = Running([*corebpf_tool("exitsnoop"), "-T", "-p", str(p.pid)], HEADER)
    subprocess.run(["/bin/sh", "-c", "exit 3"])
    p.stdin.write("\n")
    p.stdin.close()
    p.wait()
    t.wait_for(rf"^\S+\s+{p.pid}\s+\d+\s+{p.pid}\s", 10)
    t.wait_for(rf"^\S+\s+{p.pid}\s+\d+\s+{tid}\s", 10)
    lines, err = t.stop()
    assert t.proc.returncode == 0, err
    assert sorted(int(ln.split()[3]) for ln in lines[1:]) == sorted([p.pid, tid])


def test_json_values() -> None:
    w = Workload()
    t = Running([*corebpf_tool("exitsnoop"), "--json"], None)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        w()
        t._read(0.5)
        if str(w.pids["segv"]) in "".join(t.lines):
            break
    lines, err = t.stop()
    assert t.proc.returncode == 0, err
    rows = {r["pid"]: r for r in map(json.loads, lines)}
    segv = rows[w.pids["segv"]]
    assert segv["sig"] == signal.SIGSEGV and segv["signal"] == "Segmentation fault"
    assert segv["core_dumped"] is False and segv["ppid"] == os.getpid()
    code = rows[w.pids["code"]]
    assert (code["exit_code"], code["sig"], code["pcomm"]) == (42, 0, "sh")
    assert 0 <= code["age"] < 5


def test_bad_pid_and_clean_stop() -> None:
    r = subprocess.run([*corebpf_tool("exitsnoop"), "-p", "x"], capture_output=True, text=True)
    assert r.returncode == 2 and "Invalid PID: x" in r.stderr
    t = Running([*corebpf_tool("exitsnoop")], HEADER)
    ours = tool_links(t.proc.pid)
    assert ours and live_links(ours) == ours
    t.stop(signal.SIGTERM)
    assert t.proc.returncode == 0
    assert not live_links(ours)
