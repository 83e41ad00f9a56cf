"""tcpconnect: active TCP connects (IPv4 and IPv6), traced or counted per flow, as
libbpf-tools' tcpconnect prints them.

libbpf-tools' tool needs kprobes; this one takes the first way in the running kernel
allows: fexit on tcp_v[46]_connect, else kprobes on them (per-arch objects), else the
sock/inet_sock_set_state tracepoint at CLOSE -> SYN_SENT. Differences of the tracepoint
variant: with -s the row waits for the socket to leave SYN_SENT (the source port is chosen
after the tracepoint fires), and a connect that fails inside tcp_v[46]_connect after
SYN_SENT (no free source port) is reported without -s. Our object keeps ports in host byte
order (the C tool's dport is in network order and swapped when printed); the rows are the
same.
"""

from __future__ import annotations

import argparse
import socket
import sys

from .base import INT_MAX, Compat, Tool, c_int

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from .objects.tcpconnect_skel import Event
    from .objects.tcpconnect_skel import Tcpconnect as Skel

AF_INET = 2
AF_INET6 = 10
MAX_PORTS = 64

FEXIT = ("tcp_v4_connect_fexit", "tcp_v6_connect_fexit")
KPROBE = ("tcp_v4_connect_kprobe", "tcp_v4_connect_kretprobe", "tcp_v6_connect_kprobe",
          "tcp_v6_connect_kretprobe")
TRACEPOINT = ("inet_sock_set_state_tp",)


_pid = c_int("invalid PID: {}", 1, INT_MAX)
_uid = c_int("invalid UID: {}", 0, 0xFFFFFFFE)
_port = c_int("invalid PORT_LIST: {}", 1, 65535)


def _ports(text: str) -> list[int]:
    parts = text.split(",")
    if len(parts) > MAX_PORTS:
        raise argparse.ArgumentTypeError(f"invalid PORT_LIST: {text}")
    try:
        return [_port(p) for p in parts]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"invalid PORT_LIST: {text}") from None


class _NotImplemented(argparse.Action):
    """-C/-M: the C tool says so (without a newline) and carries on."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:

        sys.stderr.write(f"not implemented: --{self.dest}")
        sys.stderr.flush()


def _ntop(af: int, raw: bytes) -> str:
    if af == AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw[:16])


class Tcpconnect(Tool):
    name = "tcpconnect"
    doc = "tcpconnect: Count/Trace active tcp connections"
    examples = """\
EXAMPLES:
    tcpconnect             # trace all TCP connect()s
    tcpconnect -t          # include timestamps
    tcpconnect -p 181      # only trace PID 181
    tcpconnect -P 80       # only trace port 80
    tcpconnect -P 80,81    # only trace port 80 and 81
    tcpconnect -U          # include UID
    tcpconnect -u 1000     # only trace UID 1000
    tcpconnect -c          # count connects per src, dest, port
    tcpconnect --C mappath # only trace cgroups in the map
    tcpconnect --M mappath # only trace mount namespaces in the map"""

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--count", action="store_true",
                       help="Count connects per src ip and dst ip/port")
        p.add_argument("-C", "--cgroupmap", action=_NotImplemented, metavar="PATH",
                       help="trace cgroups in this map")
        p.add_argument("-M", "--mntnsmap", action=_NotImplemented, metavar="PATH",
                       help="trace mount namespaces in this map")
        p.add_argument("-p", "--pid", type=_pid, default=0, metavar="PID",
                       help="Process PID to trace")
        p.add_argument("-P", "--port", type=_ports, default=[], metavar="PORTS",
                       help="Comma-separated list of destination ports to trace")
        p.add_argument("-s", "--source-port", action="store_true",
                       help="Consider source port when counting")
        p.add_argument("-t", "--timestamp", action="store_true",
                       help="Include timestamp on output")
        p.add_argument("-u", "--uid", type=_uid, default=None, metavar="UID",
                       help="Process UID to trace")
        p.add_argument("-U", "--print-uid", action="store_true", help="Include UID on output")

    def open(self) -> Skel:
        from .objects import tcpconnect_skel

        return tcpconnect_skel.Tcpconnect()

    def configure(self, skel: Skel, compat: Compat) -> None:
        a = self.args
        if a.count:
            skel.rodata.do_count = True
        if a.pid:
            skel.rodata.filter_pid = a.pid
        if a.uid is not None:
            skel.rodata.filter_uid = a.uid
        if a.port:
            skel.rodata.filter_ports_len = len(a.port)
            for i, port in enumerate(a.port):
                skel.rodata.filter_ports[i] = port  # host order, as the object compares
        if a.source_port:
            skel.rodata.source_port = True
        self._start_ts = 0

        self.choose_group(skel, [
            ("fexit", FEXIT, compat.fentry("tcp_v4_connect")
             and compat.fentry("tcp_v6_connect")),
            ("kprobe", KPROBE, compat.kprobes()),
            ("tracepoint", TRACEPOINT, compat.tracepoint("sock", "inet_sock_set_state")),
        ], "TCP connects")

    def header(self) -> None:
        a = self.args
        if a.count or a.json:
            return
        h = ""
        if a.timestamp:
            h += f"{'TIME(s)':<9}"
        if a.print_uid:
            h += f"{'UID':<6}"
        h += f"{'PID':<6} {'COMM':<12} {'IP':<2} {'SADDR':<16} {'DADDR':<16}"
        if a.source_port:
            h += f" {'SPORT':<5}"
        self.emit(h + f" {'DPORT':<5}\n")

    def event(self, ev: Event) -> None:
        a = self.args
        if ev.af not in (AF_INET, AF_INET6):
            self.warn(f"broken event: event->af={ev.af}")
            return
        saddr = _ntop(ev.af, bytes(ev.saddr))
        daddr = _ntop(ev.af, bytes(ev.daddr))
        if not self._start_ts:
            self._start_ts = ev.ts_us
        ts = (ev.ts_us - self._start_ts) / 1000000.0
        ip = 4 if ev.af == AF_INET else 6
        if a.json:
            row: dict[str, Any] = {}
            if a.timestamp:
                row["timestamp"] = round(ts, 6)
            row.update(uid=ev.uid, pid=ev.pid, comm=ev.comm, ip=ip, saddr=saddr,
                       daddr=daddr)
            if a.source_port:
                row["sport"] = ev.sport
            row["dport"] = ev.dport
            self.emit_json(row)
            return
        line = ""
        if a.timestamp:
            line += f"{ts:<9.3f}"
        if a.print_uid:
            line += f"{ev.uid:<6d}"
        line += f"{ev.pid:<6d} {ev.comm[:12]:<12} {ip:<2d} {saddr:<16} {daddr:<16}"
        if a.source_port:
            line += f" {ev.sport:<5d}"
        self.emit(line + f" {ev.dport:<5d}\n")

    def finish(self) -> None:
        if not self.args.count:
            return
        a = self.args
        skel: Skel = self.skel
        flows: list[tuple[str, str, int, int, int]] = []
        for k4, n in skel.maps.ipv4_count.items():
            flows.append((_ntop(AF_INET, k4.saddr.to_bytes(4, sys.byteorder)),
                          _ntop(AF_INET, k4.daddr.to_bytes(4, sys.byteorder)),
                          k4.sport, k4.dport, n))
        for k6, n in skel.maps.ipv6_count.items():
            flows.append((_ntop(AF_INET6, bytes(k6.saddr)), _ntop(AF_INET6, bytes(k6.daddr)),
                          k6.sport, k6.dport, n))
        if a.json:
            for laddr, raddr, lport, rport, n in flows:
                row: dict[str, Any] = {"laddr": laddr, "raddr": raddr}
                if a.source_port:
                    row["lport"] = lport
                row.update(rport=rport, connects=n)
                self.emit_json(row)
            return
        h = f"\n{'LADDR':<25} {'RADDR':<25}"
        if a.source_port:
            h += f" {'LPORT':<20}"
        self.emit(h + f" {'RPORT':<20} {'CONNECTS':<10}\n")
        for laddr, raddr, lport, rport, n in flows:
            line = f"{laddr:<25} {raddr:<25}"
            if a.source_port:
                line += f" {lport:<20d}"
            self.emit(line + f" {rport:<20d} {n:<10d}\n")


TOOL = Tcpconnect
