"""A veth pair with one end in a network namespace of the test's own, packets sent from
that side, and what is attached to an interface as the kernel says it (not as corebpf
remembers it)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

HERE_ADDR, PEER_ADDR = "10.233.0.1", "10.233.0.2"
BPF_TCX_INGRESS, BPF_TCX_EGRESS = 46, 47


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _mac(iface: str, ns: str | None = None) -> str:
    cmd = ["ip", *(["-n", ns] if ns else []), "-j", "link", "show", "dev", iface]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return str(json.loads(out)[0]["address"])


@contextmanager
def veth() -> Iterator[tuple[str, str]]:
    """(namespace, interface here): a veth pair, ``HERE_ADDR`` on this side, its peer
    (``PEER_ADDR``) in a new namespace; both removed on exit, whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces and veth pairs need root")
    if not shutil.which("ip"):
        pytest.skip("iproute2 (ip) is not installed")
    tag = uuid.uuid4().hex[:6]
    ns, here, peer = f"cbns{tag}", f"cbA{tag}", f"cbB{tag}"
    _ip("netns", "add", ns)
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns)
        _ip("addr", "add", f"{HERE_ADDR}/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", ns, "addr", "add", f"{PEER_ADDR}/30", "dev", peer)
        _ip("-n", ns, "link", "set", peer, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        # permanent neighbours both ways: a datagram never waits in the ARP queue, so it
        # has crossed the hooks when sendto() returns (counts read right after are whole)
        here_mac = _mac(here)
        peer_mac = _mac(peer, ns)
        _ip("neigh", "replace", PEER_ADDR, "lladdr", peer_mac, "dev", here, "nud", "permanent")
        _ip("-n", ns, "neigh", "replace", HERE_ADDR, "lladdr", here_mac, "dev", peer, "nud",
            "permanent")
        yield ns, here
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def send_udp(ns: str, n: int, port: int = 9) -> None:
    """``n`` UDP datagrams of 4 bytes from inside ``ns`` to this side of the pair."""
    subprocess.run(["ip", "netns", "exec", ns, "python3", "-c",
                    "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                    f"for _ in range({n}): s.sendto(b'ping', ('{HERE_ADDR}', {port}))"],
                   check=True, capture_output=True)


#: iproute2's XDP_ATTACHED_* modes
XDP_NATIVE, XDP_GENERIC = 1, 2


def _xdp(iface: str) -> dict[str, object]:
    out = subprocess.run(["ip", "-j", "-d", "link", "show", "dev", iface], check=True,
                         capture_output=True, text=True).stdout
    xdp = json.loads(out)[0].get("xdp")
    return xdp if isinstance(xdp, dict) else {}


def xdp_prog_id(iface: str) -> int | None:
    """The id of the XDP program on ``iface`` (``ip -j link``), None if there is none."""
    prog = _xdp(iface).get("prog")
    return int(prog.get("id", 0)) or None if isinstance(prog, dict) else None


def xdp_mode(iface: str) -> int | None:
    """How the XDP program on ``iface`` runs (:data:`XDP_NATIVE`, :data:`XDP_GENERIC`)."""
    mode = _xdp(iface).get("mode")
    return mode if isinstance(mode, int) else None


def tcx_prog_ids(iface: str, attach_type: int) -> list[int]:
    """The programs on ``iface``'s tcx ingress or egress (BPF_PROG_QUERY)."""
    from corebpf import sys as ksys

    return ksys.prog_query(socket.if_nametoindex(iface), attach_type)[0]


def bpftool_net(iface: str) -> dict[str, object]:
    """``bpftool -j net show dev IFACE``: what bpftool sees on the interface."""
    out = subprocess.run(["bpftool", "-j", "net", "show", "dev", iface], check=True,
                         capture_output=True, text=True).stdout
    data = json.loads(out)
    return data[0] if isinstance(data, list) and data else {}


def send_out(n: int, port: int = 9) -> None:
    """``n`` UDP datagrams from this side to the peer: through this interface's egress
    (ICMP errors would too, but the kernel rate-limits them)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(n):
            s.sendto(b"pong", (PEER_ADDR, port))
