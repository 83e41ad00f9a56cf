"""corebpf tool execsnoop against libbpf-tools' execsnoop on the same execs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid

from .peer import Running, c_tool, corebpf_tool, live_links, side_by_side, tool_links

HEADER = r"PCOMM\s+PID\s+PPID\s+RET ARGS"


def _workload(tag: str) -> list[int]:
    pids = []
    for argv in (["/bin/echo", tag, "a b", 'q"t', "tab\tx"], ["/bin/true", tag] + [
            str(i) for i in range(25)]):
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        pids.append(p.pid)
        p.wait()
    subprocess.run(["/bin/sh", "-c", f"exec /nonexistent-{tag} 2>/dev/null"])
    return pids


def _rows(lines: list[str], tag: str) -> list[str]:
    return [ln for ln in lines if tag in ln]


def test_rows_agree_with_libbpf_tools() -> None:
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    c, py, _ = side_by_side(c_tool("execsnoop"), corebpf_tool("execsnoop"), HEADER,
                            lambda: _workload(tag))
    assert c[0].rstrip() == py[0].rstrip()
    assert len(_rows(c, tag)) == 3  # echo, true, and the sh that fails to exec
    assert _rows(c, tag) == _rows(py, tag)


def test_options_agree_with_libbpf_tools() -> None:
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    opts = ["-x", "-q", "-U", "--max-args", "3"]
    c, py, _ = side_by_side([*c_tool("execsnoop"), *opts],
                            [*corebpf_tool("execsnoop"), *opts], "UID", lambda: _workload(tag))
    assert c[0] == py[0]
    rows_c, rows_py = _rows(c, tag), _rows(py, tag)
    assert len(rows_c) == 4  # the failed exec too (-x)
    assert rows_c == rows_py


def test_exact_values_and_json() -> None:
    """--json has no header: run the workload until its rows show up."""
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    t = Running([*corebpf_tool("execsnoop"), "--json", "-x"], None)
    t.wait_attached(2)  # sys_enter_execve and sys_exit_execve: every exec seen from now
    _workload(tag)
    t.wait_for(f"nonexistent-{tag}", 20)  # the workload's last exec
    lines, _ = t.stop()
    assert t.proc.returncode == 0
    rows = [json.loads(ln) for ln in lines if tag in ln]
    echo = next(r for r in rows if r["args"][0] == "/bin/echo")
    assert echo["args"] == ["/bin/echo", tag, "a b", 'q"t', "tab\tx"]
    assert echo["ppid"] == os.getpid() and echo["ret"] == 0 and echo["pcomm"] == "echo"
    assert echo["uid"] == os.getuid()
    true = next(r for r in rows if r["args"][0] == "/bin/true")
    assert true["truncated"] and len(true["args"]) == 20
    failed = next(r for r in rows if r["ret"] != 0)
    assert failed["ret"] == -2 and failed["pcomm"] == "sh"


def test_stop_leaves_nothing_attached() -> None:
    t = Running([*corebpf_tool("execsnoop")], HEADER)
    ours = tool_links(t.proc.pid)
    assert ours and live_links(ours) == ours
    t.stop(signal.SIGTERM)
    assert t.proc.returncode == 0
    assert not live_links(ours)
