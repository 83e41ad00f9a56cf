"""corebpf tool bashreadline against libbpf-tools' bashreadline: lines typed into an
interactive bash on a pty."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
import uuid

import pytest

from .peer import Running, c_tool, corebpf_tool, live_links, side_by_side, tool_links

HEADER = r"TIME\s+PID\s+COMMAND"
LONG = "true " + "z" * 100


def _lines(tag: str) -> list[str]:
    return [f"echo {tag} 'x y'", "", LONG, "exit"]


class Bash:
    """An interactive bash on a pty that reads the given lines, then exits."""

    pid = 0

    def __init__(self, lines: list[str]):
        self.lines = lines

    def __call__(self) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: bash on the pty's slave side
            os.execv("/bin/bash", ["bash", "--norc", "--noprofile", "-i"])
        self.pid = pid
        try:
            os.write(fd, "".join(x + "\n" for x in self.lines).encode())
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:  # drain its output until it exits
                r, _, _ = select.select([fd], [], [], 0.5)
                if r:
                    try:
                        if not os.read(fd, 4096):
                            break
                    except OSError:  # EIO: the slave side closed
                        break
                elif os.waitpid(pid, os.WNOHANG)[0]:
                    pid = 0
                    break
        finally:
            os.close(fd)
            if pid:
                os.waitpid(pid, 0)

    def rows(self, lines: list[str]) -> list[str]:
        """Its rows without TIME (libbpf-tools 0.26 prints the month as the minutes)."""
        return [ln[10:] for ln in lines[1:] if ln[10:].split(" ", 1)[0] == str(self.pid)]


def _expected(b: Bash, tag: str) -> list[str]:
    return [f"{b.pid:<7} echo {tag} 'x y'", f"{b.pid:<7} ", f"{b.pid:<7} {LONG[:79]}",
            f"{b.pid:<7} exit"]


def test_rows_agree_with_libbpf_tools() -> None:
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    b = Bash(_lines(tag))
    c, py, _ = side_by_side(c_tool("bashreadline"), corebpf_tool("bashreadline"), HEADER, b)
    assert c[0] == py[0] == "TIME      PID     COMMAND"
    assert b.rows(py) == _expected(b, tag)
    assert b.rows(c) == b.rows(py)
    for ln in py[1:]:
        time.strptime(ln[:8], "%H:%M:%S")


def test_shared_option_agrees() -> None:
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    b = Bash(_lines(tag))
    opts = ["-s", "/bin/bash"]
    c, py, _ = side_by_side([*c_tool("bashreadline"), *opts],
                            [*corebpf_tool("bashreadline"), *opts], HEADER, b)
    assert b.rows(py) == _expected(b, tag)
    assert b.rows(c) == b.rows(py)


def test_json() -> None:
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    t = Running([*corebpf_tool("bashreadline"), "--json"], None)
    deadline = time.monotonic() + 20
    b = Bash([f"echo {tag}", "exit"])
    # --json has no header: type until the line shows up
    while time.monotonic() < deadline and not any(tag in ln for ln in t.lines):
        b()
        t._read(0.5)
    lines, err = t.stop()
    assert t.proc.returncode == 0, err
    rows = [json.loads(ln) for ln in lines]
    mine = [r for r in rows if r["pid"] == b.pid]
    assert [r["command"] for r in mine] == [f"echo {tag}", "exit"]
    time.strptime(mine[0]["time"], "%H:%M:%S")


def test_library_target_and_missing_file() -> None:
    r = subprocess.run([*corebpf_tool("bashreadline"), "-s", "/nonexistent"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "could not find readline in /nonexistent" in r.stderr
    lib = next((p for p in ("/lib/x86_64-linux-gnu/libreadline.so.8",
                            "/usr/lib/aarch64-linux-gnu/libreadline.so.8",
                            "/lib/aarch64-linux-gnu/libreadline.so.8") if os.path.exists(p)),
               None)
    if lib is None:
        pytest.skip("no libreadline.so.8 here")
    t = Running([*corebpf_tool("bashreadline"), "-v", "-s", lib], HEADER)
    _, err = t.stop()
    assert t.proc.returncode == 0, err
    assert f"uretprobe on {lib}:readline" in err


def test_clean_stop() -> None:
    t = Running([*corebpf_tool("bashreadline")], HEADER)
    ours = tool_links(t.proc.pid)
    assert ours and live_links(ours) == ours
    t.stop(signal.SIGTERM)
    assert t.proc.returncode == 0
    assert not live_links(ours)
