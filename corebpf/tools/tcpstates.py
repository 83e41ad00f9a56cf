"""tcpstates: every TCP state change with the time spent in the old state, as libbpf-tools'
tcpstates prints it (one tracepoint, sock/inet_sock_set_state: no variants).

One documented C bug fixed: -L/-D take ports 1..65535 (the C tool lets 65536 through,
which becomes port 0 in its u16 map key), and the message names the whole argument (the C
tool prints only its first comma-separated part).
"""

from __future__ import annotations

import argparse
import socket

from .base import Compat, Tool
from .hist import strftime_now

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from .objects.tcpstates_skel import Event
    from .objects.tcpstates_skel import Tcpstates as Skel

AF_INET = 2
AF_INET6 = 10

#: include/net/tcp_states.h, index = state number (0 is none)
STATES = ("", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
          "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV", "UNKNOWN")


def _state(n: int) -> str:
    return STATES[n] if 0 < n < len(STATES) else STATES[-1]


def _ports(text: str) -> list[int]:
    try:
        ports = [int(p, 10) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"Invalid ports: {text}") from None
    if not all(0 < p <= 65535 for p in ports):
        raise argparse.ArgumentTypeError(f"Invalid ports: {text}")
    return ports


def _ntop(family: int, raw: bytes) -> str:
    if family == AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw[:16])


class Tcpstates(Tool):
    name = "tcpstates"
    doc = ("Trace TCP session state changes and durations.\n\n"
           "USAGE: tcpstates [-4] [-6] [-T] [-L lport] [-D dport]")
    examples = """\
EXAMPLES:
    tcpstates                  # trace all TCP state changes
    tcpstates -T               # include timestamps
    tcpstates -L 80            # only trace local port 80
    tcpstates -D 80            # only trace remote port 80"""

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("-4", "--ipv4", dest="family", action="store_const", const=AF_INET,
                       default=0, help="Trace IPv4 family only")
        p.add_argument("-6", "--ipv6", dest="family", action="store_const", const=AF_INET6,
                       help="Trace IPv6 family only")
        p.add_argument("-D", "--remoteport", type=_ports, metavar="DPORT",
                       help="Comma-separated list of remote ports to trace.")
        p.add_argument("-L", "--localport", type=_ports, metavar="LPORT",
                       help="Comma-separated list of local ports to trace.")
        p.add_argument("-T", "--timestamp", action="store_true",
                       help="Include timestamp on output")
        p.add_argument("-w", "--wide", action="store_true",
                       help="Wide column output (fits IPv6 addresses)")

    def open(self) -> Skel:
        from .objects import tcpstates_skel

        return tcpstates_skel.Tcpstates()

    def configure(self, skel: Skel, compat: Compat) -> None:
        a = self.args
        skel.rodata.target_family = a.family
        skel.rodata.filter_by_sport = a.localport is not None
        skel.rodata.filter_by_dport = a.remoteport is not None

    def header(self) -> None:
        a = self.args
        skel: Skel = self.skel
        # the port sets go in after load, as the C tool fills them (nothing is reported
        # before: an empty set lets no event through)
        for port in a.localport or ():
            skel.maps.sports[port] = port
        for port in a.remoteport or ():
            skel.maps.dports[port] = port
        if a.json:
            return
        h = f"{'TIME(s)':<8} " if a.timestamp else ""
        if a.wide:
            h += (f"{'SKADDR':<16} {'PID':<7} {'COMM':<16} {'IP':<2} {'LADDR':<26} "
                  f"{'LPORT':<5} {'RADDR':<26} {'RPORT':<5} {'OLDSTATE':<11} -> "
                  f"{'NEWSTATE':<11} MS\n")
        else:
            h += (f"{'SKADDR':<16} {'PID':<7} {'COMM':<10} {'LADDR':<15} {'LPORT':<5} "
                  f"{'RADDR':<15} {'RPORT':<5} {'OLDSTATE':<11} -> {'NEWSTATE':<11} MS\n")
        self.emit(h)

    def event(self, ev: Event) -> None:
        a = self.args
        saddr = _ntop(ev.family, bytes(ev.saddr))
        daddr = _ntop(ev.family, bytes(ev.daddr))
        old, new = _state(ev.oldstate), _state(ev.newstate)
        ms = ev.delta_us / 1000.0
        if a.json:
            row: dict[str, Any] = {}
            if a.timestamp:
                row["time"] = strftime_now()
            row.update(skaddr=f"{ev.skaddr:x}", pid=ev.pid, comm=ev.comm,
                       ip=4 if ev.family == AF_INET else 6, laddr=saddr, lport=ev.sport,
                       raddr=daddr, rport=ev.dport, oldstate=old, newstate=new, ms=ms)
            self.emit_json(row)
            return
        line = f"{strftime_now():>8} " if a.timestamp else ""
        if a.wide:
            ip = 4 if ev.family == AF_INET else 6
            line += (f"{ev.skaddr:<16x} {ev.pid:<7d} {ev.comm:<16} {ip:<2d} {saddr:<26} "
                     f"{ev.sport:<5d} {daddr:<26} {ev.dport:<5d} {old:<11} -> {new:<11} "
                     f"{ms:.3f}\n")
        else:
            line += (f"{ev.skaddr:<16x} {ev.pid:<7d} {ev.comm[:10]:<10} {saddr:<15} "
                     f"{ev.sport:<5d} {daddr:<15} {ev.dport:<5d} {old:<11} -> {new:<11} "
                     f"{ms:.3f}\n")
        self.emit(line)


TOOL = Tcpstates
