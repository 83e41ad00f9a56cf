"""Running a tool the way a user does, to compare corebpf's with libbpf-tools' on one
workload: start it (stdout line-buffered, so rows arrive as they happen), wait for its
header (it is attached by then), run the workload, stop it with SIGINT, read its rows."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COREBPF = [sys.executable, "-m", "corebpf"]


def c_tool(name: str) -> list[str]:
    """libbpf-tools' NAME (Debian's libbpf-tools package), line-buffered."""
    path = f"/usr/sbin/{name}"
    if not os.path.exists(path):
        pytest.skip(f"libbpf-tools' {name} is not installed (apt-get install libbpf-tools)")
    stdbuf = shutil.which("stdbuf")
    return [stdbuf, "-oL", path] if stdbuf else [path]


def corebpf_tool(name: str) -> list[str]:
    return [*COREBPF, "tool", name]


class Running:
    """One started tool: its process, and its stdout lines so far."""

    def __init__(self, argv: Sequence[str], ready: str | None, timeout: float = 30.0):
        self.argv = list(argv)
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=ROOT,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self._buf = b""
        if ready is not None:
            self.wait_for(ready, timeout)

    def wait_attached(self, least: int = 1, timeout: float = 30.0) -> set[int]:
        """Its links, once it holds ``least`` of them (tools without a header line:
        --json, -c)."""
        deadline = time.monotonic() + timeout
        while len(links := tool_links(self.proc.pid)) < least:
            assert self.proc.poll() is None and time.monotonic() < deadline, \
                f"{self.argv}: {len(links)} links after {timeout} s"
            self._read(0.1)
        return links

    def _read(self, timeout: float) -> bool:
        assert self.proc.stdout is not None
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return False
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            return False
        self._buf += chunk
        *full, self._buf = self._buf.split(b"\n")
        self.lines += [x.decode("utf-8", "replace") for x in full]
        return True

    def wait_for(self, pattern: str, timeout: float) -> str:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if rx.search(line):
                    return line
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or (not self._read(min(left, 0.5)) and self.proc.poll() is not None):
                err = self.proc.stderr.read().decode() if self.proc.poll() is not None \
                    and self.proc.stderr else ""
                self.stop()
                raise AssertionError(f"{self.argv}: no line matching {pattern!r} in "
                                     f"{timeout} s; stdout {self.lines!r}; stderr {err!r}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> tuple[list[str], str]:
        """Stop it as a user does; every line it printed, and its stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        deadline = time.monotonic() + timeout
        while self._read(max(0.0, min(0.5, deadline - time.monotonic()))) or (
                self.proc.poll() is None and time.monotonic() < deadline):
            pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.argv}: did not stop within {timeout} s of signal {sig}")
        if self._buf:
            self.lines.append(self._buf.decode("utf-8", "replace"))
            self._buf = b""
        err = self.proc.stderr.read().decode() if self.proc.stderr else ""
        return self.lines, err


def side_by_side(c_argv: Sequence[str], py_argv: Sequence[str], ready: str,
                 workload: Callable[[], object], settle: float = 0.5
                 ) -> tuple[list[str], list[str], str]:
    """Both tools attached at once, one workload, both stopped: (C lines, corebpf lines,
    corebpf's stderr)."""
    c = Running(c_argv, ready)
    try:
        py = Running(py_argv, ready)
    except BaseException:
        c.stop()
        raise
    try:
        workload()
        time.sleep(settle)
    finally:
        c_lines, _ = c.stop()
        py_lines, py_err = py.stop()
    assert py.proc.returncode == 0, (py.proc.returncode, py_err)
    return c_lines, py_lines, py_err


def tool_links(pid: int) -> set[int]:
    """Ids of the BPF links process ``pid`` holds, from its fdinfo: a tool's own links,
    whatever other tests attach at the same time."""
    ids = set()
    fdinfo = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                ids.update(int(ln.split()[1]) for ln in f if ln.startswith("link_id:"))
        except OSError:
            pass
    return ids


def live_links(ids: set[int]) -> set[int]:
    """Those of ``ids`` still attached on the machine (to see a stopped tool left none)."""
    import json

    out = subprocess.run(["bpftool", "-j", "link", "list"], capture_output=True, text=True)
    try:
        return ids & {x["id"] for x in json.loads(out.stdout or "[]")}
    except ValueError:
        return set()
