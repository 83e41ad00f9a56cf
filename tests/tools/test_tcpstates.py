"""corebpf tool tcpstates against libbpf-tools' tcpstates on the same loopback connects:
the same transitions, addresses and ports; durations close (each tool times them)."""

from __future__ import annotations

import json
import signal
import socket
import time

from .peer import Running, c_tool, corebpf_tool, live_links, side_by_side, tool_links

HEADER = r"SKADDR\s+PID\s+COMM"


def _connect_and_close(family: int, server: socket.socket) -> None:
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    server.listen(4)
    with socket.socket(family) as c:
        c.connect((host, server.getsockname()[1]))
        conn, _ = server.accept()
        c.close()
        conn.close()
    time.sleep(0.2)
    server.close()


def _bound(family: int) -> socket.socket:
    """A socket bound to a free loopback port, not listening yet (no state change)."""
    s = socket.socket(family)
    s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
    return s


def _rows(lines: list[str], port: int, lport_col: int, rport_col: int) -> list[list[str]]:
    """The rows of one connection (the port on either side)."""
    out = []
    for ln in lines:
        f = ln.split()
        if len(f) > rport_col and str(port) in (f[lport_col], f[rport_col]):
            out.append(f)
    return out


def _agree(c: list[list[str]], py: list[list[str]], skip: int = 0, least: int = 10) -> None:
    """Every column but the time (first ``skip``) and the duration equal; durations close."""
    assert len(c) >= least  # listen, both handshake sides, both closes, ...
    assert [r[skip:-1] for r in c] == [r[skip:-1] for r in py]
    for rc, rp in zip(c, py, strict=True):
        assert abs(float(rc[-1]) - float(rp[-1])) < 1.0, (rc, rp)


def test_rows_agree_with_libbpf_tools() -> None:
    s4, s6 = _bound(socket.AF_INET), _bound(socket.AF_INET6)
    p4, p6 = s4.getsockname()[1], s6.getsockname()[1]

    def work() -> None:
        _connect_and_close(socket.AF_INET, s4)
        _connect_and_close(socket.AF_INET6, s6)

    c, py, _ = side_by_side(c_tool("tcpstates"), corebpf_tool("tcpstates"), HEADER, work)
    assert c[0] == py[0]
    # SKADDR PID COMM LADDR LPORT RADDR RPORT OLD -> NEW MS
    for port in (p4, p6):
        rc, rp = _rows(c, port, 4, 6), _rows(py, port, 4, 6)
        _agree(rc, rp)
    states = [(r[7], r[9]) for r in _rows(py, p4, 4, 6)]
    assert ("CLOSE", "LISTEN") in states and ("SYN_SENT", "ESTABLISHED") in states
    assert ("LISTEN", "CLOSE") in states


def test_wide_timestamp_ipv6_only_agree() -> None:
    s4, s6 = _bound(socket.AF_INET), _bound(socket.AF_INET6)
    p4, p6 = s4.getsockname()[1], s6.getsockname()[1]

    def work() -> None:
        _connect_and_close(socket.AF_INET, s4)
        _connect_and_close(socket.AF_INET6, s6)

    opts = ["-w", "-T", "-6"]
    c, py, _ = side_by_side([*c_tool("tcpstates"), *opts], [*corebpf_tool("tcpstates"), *opts],
                            r"TIME\(s\)\s+" + HEADER, work)
    assert c[0] == py[0]
    # TIME SKADDR PID COMM IP LADDR LPORT RADDR RPORT OLD -> NEW MS
    assert _rows(py, p4, 6, 8) == []
    rc, rp = _rows(c, p6, 6, 8), _rows(py, p6, 6, 8)
    _agree(rc, rp, skip=1)
    assert all(r[4] == "6" and r[5] == "::1" for r in rp)


def test_port_filters_agree() -> None:
    s, other = _bound(socket.AF_INET), _bound(socket.AF_INET)
    port = s.getsockname()[1]

    def work() -> None:
        _connect_and_close(socket.AF_INET, s)
        _connect_and_close(socket.AF_INET, other)

    opts = ["-L", f"{port},1"]
    c, py, _ = side_by_side([*c_tool("tcpstates"), *opts], [*corebpf_tool("tcpstates"), *opts],
                            HEADER, work)
    rows_c, rows_py = [ln.split() for ln in c[1:]], [ln.split() for ln in py[1:]]
    # the listener's and the accepted socket's changes: 7 rows
    _agree([r for r in rows_c if r[4] == str(port)], [r for r in rows_py if r[4] == str(port)],
           least=7)
    assert all(r[4] == str(port) for r in rows_py)  # only that local port


def test_json_and_clean_stop() -> None:
    t = Running([*corebpf_tool("tcpstates"), "--json", "-4"], None)
    t.wait_attached()
    s = _bound(socket.AF_INET)
    port = s.getsockname()[1]
    _connect_and_close(socket.AF_INET, s)
    mine = tool_links(t.proc.pid)
    assert mine and live_links(mine) == mine
    t.stop(signal.SIGTERM)
    assert t.proc.returncode == 0
    assert not live_links(mine)
    rows = [json.loads(ln) for ln in t.lines if ln.strip()]
    mine = [r for r in rows if port in (r["lport"], r["rport"])]
    assert mine[0]["oldstate"] == "CLOSE" and mine[0]["newstate"] == "LISTEN"
    assert mine[0]["laddr"] == "127.0.0.1" and mine[0]["ip"] == 4 and mine[0]["ms"] == 0.0
    handshake = next(r for r in mine if r["oldstate"] == "SYN_SENT")
    assert handshake["newstate"] == "ESTABLISHED" and handshake["rport"] == port
