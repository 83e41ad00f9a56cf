"""corebpf tool tcpconnect: exact rows for known connects. libbpf-tools' tcpconnect needs
kprobes, which this kernel lacks: one test shows it failing where ours prints the row."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from corebpf.features import kprobes_available

from .peer import Running, c_tool, corebpf_tool, live_links, tool_links

HEADER = r"PID\s+COMM\s+IP SADDR\s+DADDR"
COMM = open("/proc/self/comm").read().strip()


@contextmanager
def listener(family: int = socket.AF_INET) -> Iterator[int]:
    """A listening loopback port (its number)."""
    s = socket.socket(family)
    s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
    s.listen(16)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def connect(host: str, port: int) -> int:
    """Connect (refused is fine); the source port used."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.connect((host, port))
        except ConnectionRefusedError:
            pass
        sport: int = s.getsockname()[1]
    return sport


def rows(lines: list[str], port: int) -> list[list[str]]:
    return [ln.split() for ln in lines if ln.split() and ln.split()[-1] == str(port)]


def _stop(t: Running) -> list[str]:
    lines, err = t.stop()
    assert t.proc.returncode == 0, err
    return lines


def test_c_tool_fails_here_ours_prints_the_row() -> None:
    if kprobes_available():
        pytest.skip("this kernel has kprobes: libbpf-tools' tcpconnect works here")
    c = subprocess.run(c_tool("tcpconnect"), capture_output=True, text=True, timeout=60)
    assert c.returncode == 1
    assert "failed to attach BPF programs" in c.stderr
    t = Running([*corebpf_tool("tcpconnect"), "-v"], HEADER)
    with listener() as port:
        connect("127.0.0.1", port)
        time.sleep(0.3)
    lines, err = t.stop()
    assert t.proc.returncode == 0, err
    assert "using tracepoint programs" in err
    assert rows(lines, port) == [[str(os.getpid()), COMM[:12], "4", "127.0.0.1",
                                  "127.0.0.1", str(port)]]


def test_rows_ipv4_ipv6_refused_with_uid() -> None:
    t = Running([*corebpf_tool("tcpconnect"), "-U"], r"UID\s+" + HEADER)
    assert t.lines[0] == (f"{'UID':<6}{'PID':<6} {'COMM':<12} {'IP':<2} {'SADDR':<16} "
                          f"{'DADDR':<16} {'DPORT':<5}")
    refused = free_port()
    with listener() as p4, listener(socket.AF_INET6) as p6:
        connect("127.0.0.1", p4)
        connect("::1", p6)
        connect("127.0.0.1", refused)
        time.sleep(0.3)
    lines = _stop(t)
    me = [str(os.getuid()), str(os.getpid()), COMM[:12]]
    assert rows(lines, p4) == [[*me, "4", "127.0.0.1", "127.0.0.1", str(p4)]]
    assert rows(lines, p6) == [[*me, "6", "::1", "::1", str(p6)]]
    assert rows(lines, refused) == [[*me, "4", "127.0.0.1", "127.0.0.1", str(refused)]]
    # columns as the C tool's printf: %-6d UID, %-6d PID, %-12.12s COMM, ...
    line = next(ln for ln in lines if ln.endswith(f" {p4:<5}"))
    assert line == (f"{os.getuid():<6}{os.getpid():<6} {COMM[:12]:<12} {4:<2} "
                    f"{'127.0.0.1':<16} {'127.0.0.1':<16} {p4:<5}")


def test_source_port_and_port_filter() -> None:
    """-s: the real ephemeral port (the tracepoint variant waits for the handshake's end);
    -P: destination ports, compared in the right byte order."""
    with listener() as wanted, listener() as other:
        t = Running([*corebpf_tool("tcpconnect"), "-s", "-P", f"{wanted},1"],
                    HEADER + r"\s+SPORT\s+DPORT")
        sport = connect("127.0.0.1", wanted)
        connect("127.0.0.1", other)
        time.sleep(0.3)
        lines = _stop(t)
    assert rows(lines, wanted) == [[str(os.getpid()), COMM[:12], "4", "127.0.0.1",
                                    "127.0.0.1", str(sport), str(wanted)]]
    assert rows(lines, other) == []


def _in_child(argv_code: str, user: int | None = None) -> subprocess.Popen[str]:
    """A python child that runs ``argv_code`` once it reads a line."""
    # the system python: the venv's may not be readable by another user
    python = "/usr/bin/python3" if user is not None else sys.executable
    return subprocess.Popen([python, "-c", "import socket, sys\nsys.stdin.readline()\n"
                             + argv_code], stdin=subprocess.PIPE, text=True, user=user)


def test_pid_and_uid_filters() -> None:
    if not os.access("/usr/bin/python3", os.X_OK):
        pytest.skip("no /usr/bin/python3 to run a connect as uid 65534")
    with listener() as port:
        code = (f"s = socket.socket()\ntry: s.connect(('127.0.0.1', {port}))\n"
                "except OSError: pass\n")
        child = _in_child(code)
        nobody = _in_child(code, user=65534)
        by_pid = Running([*corebpf_tool("tcpconnect"), "-p", str(child.pid)], HEADER)
        by_uid = Running([*corebpf_tool("tcpconnect"), "-U", "-u", "65534"], HEADER)
        for p in (child, nobody):
            assert p.stdin is not None
            p.stdin.write("\n")
            p.stdin.close()
            p.wait()
        connect("127.0.0.1", port)
        time.sleep(0.3)
        pid_rows, uid_rows = rows(_stop(by_pid), port), rows(_stop(by_uid), port)
    assert [r[0] for r in pid_rows] == [str(child.pid)]
    assert [r[:2] for r in uid_rows] == [["65534", str(nobody.pid)]]


def test_count_mode() -> None:
    """-c prints nothing until Ctrl-C, then the connects per flow (trailing spaces are
    the C tool's %-10llu)."""
    with listener() as a, listener() as b, listener(socket.AF_INET6) as c6:
        t = Running([*corebpf_tool("tcpconnect"), "-c", "-P", f"{a},{c6}"], None)
        t.wait_attached()
        for port in (a, a, b):
            connect("127.0.0.1", port)
        connect("::1", c6)
        time.sleep(0.3)
        lines = _stop(t)
    assert lines[0] == ""
    assert lines[1] == f"{'LADDR':<25} {'RADDR':<25} {'RPORT':<20} {'CONNECTS':<10}"
    assert sorted(lines[2:]) == sorted([
        f"{'127.0.0.1':<25} {'127.0.0.1':<25} {a:<20} {2:<10}",
        f"{'::1':<25} {'::1':<25} {c6:<20} {1:<10}"])


def test_timestamp_and_json() -> None:
    t = Running([*corebpf_tool("tcpconnect"), "-t"], r"TIME\(s\)\s+" + HEADER)
    with listener() as port:
        connect("127.0.0.1", port)
        connect("127.0.0.1", port)
        time.sleep(0.3)
    first, second = rows(_stop(t), port)
    assert first[0] == "0.000" and 0 <= float(second[0]) < 5

    j = Running([*corebpf_tool("tcpconnect"), "--json", "-s"], None)
    j.wait_attached()
    with listener() as port:
        sport = connect("127.0.0.1", port)
        time.sleep(0.3)
    out = [json.loads(ln) for ln in _stop(j) if ln.strip()]
    assert [r for r in out if r["dport"] == port] == [{
        "uid": os.getuid(), "pid": os.getpid(), "comm": COMM, "ip": 4,
        "saddr": "127.0.0.1", "daddr": "127.0.0.1", "sport": sport, "dport": port}]


def test_bad_options_and_clean_stop() -> None:
    for opt, msg in ((["-p", "0"], "invalid PID: 0"), (["-u", "x"], "invalid UID: x"),
                     (["-P", "80,0"], "invalid PORT_LIST: 80,0")):
        r = subprocess.run([*corebpf_tool("tcpconnect"), *opt], capture_output=True,
                           text=True)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr
    t = Running(corebpf_tool("tcpconnect"), HEADER)
    mine = tool_links(t.proc.pid)
    assert mine and live_links(mine) == mine
    t.stop(signal.SIGTERM)
    assert t.proc.returncode == 0
    assert not live_links(mine)
