"""corebpf tool runqlat against libbpf-tools' runqlat on one run-queue workload: a sleeper
that wakes a known number of times on a CPU kept busy by two pinned busy loops."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from corebpf.tools.hist import log2_hist_lines

from .peer import Running, c_tool, corebpf_tool, live_links, side_by_side, tool_links

HEADER = r"^Tracing run queue latency\.\.\. Hit Ctrl-C to end\.$"
ROW = re.compile(r"^\s*(\d+) -> (\d+)\s+: (\d+)\s+\|")
WAKEUPS = 200
CPU = 0

HOG = f"import os\nos.sched_setaffinity(0, {{{CPU}}})\nwhile True:\n    pass\n"
SLEEPER = (f"import os, sys, time\nos.sched_setaffinity(0, {{{CPU}}})\nsys.stdin.readline()\n"
           f"for _ in range({WAKEUPS}):\n    time.sleep(0.002)\n")


@contextmanager
def hogs() -> Iterator[list[int]]:
    """Two busy loops sharing one CPU: each waits for the other in the run queue."""
    procs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(2)]
    try:
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()


class Sleeper:
    """A process that, once told, sleeps and wakes WAKEUPS times on the busy CPU."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SLEEPER], stdin=subprocess.PIPE)
        self.pid = self.proc.pid

    @property
    def comm(self) -> str:
        with open(f"/proc/{self.pid}/comm") as f:
            return f.read().strip()

    def run(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0


def total(lines: list[str]) -> int:
    return sum(int(m.group(3)) for ln in lines if (m := ROW.match(ln)))


def labels(lines: list[str]) -> list[str]:
    """Every line that is not a histogram row: header, blank lines, pid/tid lines, units."""
    return [ln for ln in lines if not ROW.match(ln)]


def test_per_pid_agrees_with_libbpf_tools() -> None:
    with hogs():
        s = Sleeper()
        comm = s.comm
        opts = ["-P", "-p", str(s.pid)]
        c, py, _ = side_by_side([*c_tool("runqlat"), *opts], [*corebpf_tool("runqlat"), *opts],
                                HEADER, s.run)
    assert labels(py) == labels(c)
    assert labels(py) == ["Tracing run queue latency... Hit Ctrl-C to end.", "", "",
                          f"pid = {s.pid} {comm}",
                          "     usecs               : count    distribution"]
    # every wakeup of the sleeper is one wait in the run queue, in both tools
    assert total(c) >= WAKEUPS and total(py) >= WAKEUPS
    assert max(total(c), total(py)) < 10 * min(total(c), total(py))


def test_ms_per_thread_agrees_with_libbpf_tools() -> None:
    with hogs() as (h1, _):
        s = Sleeper()
        opts = ["-m", "-L", "-p", str(h1)]
        c, py, _ = side_by_side([*c_tool("runqlat"), *opts], [*corebpf_tool("runqlat"), *opts],
                                HEADER, s.run)
        with open(f"/proc/{h1}/comm") as f:
            comm = f.read().strip()
    assert labels(py) == labels(c)
    assert f"tid = {h1} {comm}" in py
    assert "     msecs               : count    distribution" in py
    # a busy loop preempted by its twin waits in the queue for the twin's slice
    assert total(c) > 0 and total(py) > 0
    assert max(total(c), total(py)) < 10 * min(total(c), total(py))


def test_whole_system_count_grows_with_workload() -> None:
    with hogs():
        s = Sleeper()
        t = Running([*corebpf_tool("runqlat")], HEADER)
        s.run()
        lines, err = t.stop()
    assert t.proc.returncode == 0, err
    assert labels(lines) == ["Tracing run queue latency... Hit Ctrl-C to end.", "",
                             "     usecs               : count    distribution"]
    assert total(lines) >= WAKEUPS


def test_raw_tp_variant_where_tp_btf_is_missing() -> None:
    """A BTF given with --btf is not the kernel's own: no tp_btf, the raw_tp set loads."""
    with hogs():
        s = Sleeper()
        comm = s.comm
        t = Running([*corebpf_tool("runqlat"), "-v", "--btf", "/sys/kernel/btf/vmlinux",
                     "-P", "-p", str(s.pid)], HEADER)
        s.run()
        lines, err = t.stop()
    assert t.proc.returncode == 0, err
    assert "using raw_tp programs (sched_wakeup_raw, sched_wakeup_new_raw, " \
        "sched_switch_raw)" in err
    assert f"pid = {s.pid} {comm}" in lines
    assert total(lines) >= WAKEUPS


def test_interval_count_ends_by_itself() -> None:
    """``-T 1 2``: two summaries, each after a blank line and the time, then exit 0."""
    r = subprocess.run([*corebpf_tool("runqlat"), "-T", "1", "2"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Tracing run queue latency... Hit Ctrl-C to end."
    heads = [i for i, ln in enumerate(lines) if ln == ""]
    assert len(heads) == 2
    for i in heads:
        assert re.fullmatch(r"\d\d:\d\d:\d\d", lines[i + 1])
        assert lines[i + 2] == "     usecs               : count    distribution"


def test_json_per_pidns() -> None:
    r = subprocess.run([*corebpf_tool("runqlat"), "--json", "--pidnss", "1", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    (obj,) = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert obj["unit"] == "usecs"
    mine = os.stat("/proc/self/ns/pid").st_ino
    (h,) = [h for h in obj["hists"] if h["pidns"] == mine]
    assert sum(s["count"] for s in h["slots"]) > 0
    assert h["slots"][0] == {"low": 0, "high": 1, "count": h["slots"][0]["count"]}


def test_options_refused_as_the_c_tool() -> None:
    r = subprocess.run([*corebpf_tool("runqlat"), "-P", "-L"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    assert "pidnss, pids, tids cann't be used together." in r.stderr
    r = subprocess.run([*corebpf_tool("runqlat"), "1", "2", "3"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0 and "unrecognized positional argument: 3" in r.stderr
    assert "Traceback" not in r.stderr


def test_stop_leaves_nothing_attached() -> None:
    t = Running([*corebpf_tool("runqlat")], HEADER)
    mine = tool_links(t.proc.pid)
    assert len(mine) == 3 and live_links(mine) == mine  # one variant of each program
    t.stop(signal.SIGTERM)
    assert t.proc.returncode == 0
    assert not live_links(mine)


# print_log2_hist output captured from libbpf-tools' runqlat (notes): slots -> lines
CAPTURED = [
    ([17, 159, 184, 41, 16, 3], "msecs", """\
     msecs               : count    distribution
         0 -> 1          : 17       |***                                     |
         2 -> 3          : 159      |**********************************      |
         4 -> 7          : 184      |****************************************|
         8 -> 15         : 41       |********                                |
        16 -> 31         : 16       |***                                     |
        32 -> 63         : 3        |                                        |"""),
    ([0, 0, 0, 4, 2, 1, 1, 1, 1, 1, 1, 307, 11, 22, 23, 5], "usecs", """\
     usecs               : count    distribution
         0 -> 1          : 0        |                                        |
         2 -> 3          : 0        |                                        |
         4 -> 7          : 0        |                                        |
         8 -> 15         : 4        |                                        |
        16 -> 31         : 2        |                                        |
        32 -> 63         : 1        |                                        |
        64 -> 127        : 1        |                                        |
       128 -> 255        : 1        |                                        |
       256 -> 511        : 1        |                                        |
       512 -> 1023       : 1        |                                        |
      1024 -> 2047       : 1        |                                        |
      2048 -> 4095       : 307      |****************************************|
      4096 -> 8191       : 11       |*                                       |
      8192 -> 16383      : 22       |**                                      |
     16384 -> 32767      : 23       |**                                      |
     32768 -> 65535      : 5        |                                        |"""),
    ([49], "msecs", """\
     msecs               : count    distribution
         0 -> 1          : 49       |****************************************|"""),
    ([0] * 26, "usecs", ""),
]


@pytest.mark.parametrize(("slots", "unit", "text"), CAPTURED)
def test_printer_matches_captured_output(slots: list[int], unit: str, text: str) -> None:
    padded = slots + [0] * (26 - len(slots))
    assert log2_hist_lines(padded, unit) == (text.splitlines() if text else [])
