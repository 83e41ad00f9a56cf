"""tests/progs/inspect.bpf.o loaded and attached every way this kernel allows, its maps
filled, one map, program and link pinned: what the inspection tests compare with
bpftool, by id (other processes may load objects at the same time)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from corebpf import sys as ksys
from corebpf.links import Link, attach
from corebpf.loader import Collection, load
from corebpf.obj.sections import AttachType
from corebpf.perf_links import attach_uprobe
from tests.conftest import PROGS

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/sys/kernel/btf/vmlinux"),
    reason="loading BPF programs needs root and a kernel with BTF")

BPFTOOL = shutil.which("bpftool") or "/usr/sbin/bpftool"

TYPED_ONE = {"count": 5, "delta": -3, "port": 8080, "small": 200, "tiny": -2,
             "comm": b"bash", "raw": b"\x01\x02\x03\x04", "color": 7, "on": True,
             "flag_a": 1, "level": 5, "mode": 9, "sflag": -3, "u": {"as_int": 0x01020304},
             "pts": [{"x": -1, "y": 2}, {"x": 3, "y": -4}], "ptr": 0xFFFF888012345678,
             "wide": (1 << 100) + 5}


def bpftool(*args: str, json_out: bool = True, check: bool = True) -> Any:
    """bpftool's output (parsed with json_out, which adds -j)."""
    if not os.path.exists(BPFTOOL):
        pytest.skip("bpftool is not installed")
    r = subprocess.run([BPFTOOL, *(["-j"] if json_out else []), *args],
                       capture_output=True, text=True)
    if check and r.returncode:
        raise AssertionError(f"bpftool {' '.join(args)}: {r.returncode} {r.stderr}")
    return json.loads(r.stdout) if json_out else r.stdout


class Loaded:
    def __init__(self, coll: Collection, links: dict[str, Link], pin_dir: str,
                 iface: str | None):
        self.coll = coll
        self.iface = iface
        self.links = links
        self.pin_dir = pin_dir
        self.prog_ids = {n: ksys.prog_info(p.fd.fd, map_ids=False).id
                         for n, p in coll.programs.items()}
        self.map_ids = {n: ksys.map_info(m.fd.fd).id for n, m in coll.maps.items()}
        self.link_ids = {n: ksys.link_info(lk.fd.fd).id for n, lk in links.items()
                         if lk.fd is not None}
        self.btf_id = ksys.map_info(coll.maps["typed"].fd.fd).btf_id

    def pin(self, name: str) -> str:
        return os.path.join(self.pin_dir, name)


@contextmanager
def loaded_object() -> Iterator[Loaded]:
    # target_pid stays 0: the programs count nothing, the maps hold still while compared
    coll = load(PROGS / "inspect.bpf.o")
    links: dict[str, Link] = {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    netns = os.open("/proc/self/ns/net", os.O_RDONLY)
    pin_dir = f"/sys/fs/bpf/corebpf-inspect-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    iface = _veth()
    try:
        progs = coll.programs
        for name in ("tail_target", "on_getppid_with_a_long_name", "on_raw_tp", "on_tp_btf",
                     "on_iter", "on_sock_create"):
            links[name] = attach(progs[name])
        if iface is not None:  # an interface of our own: lo may carry others' XDP
            links["on_xdp"] = attach(progs["on_xdp"], iface=iface)
            links["on_tcx"] = attach(progs["on_tcx"], iface=iface)
        links["on_socket"] = attach(progs["on_socket"], sock=sock)
        links["on_sk_lookup"] = Link(ksys.link_create(progs["on_sk_lookup"].fd.fd, netns,
                                                      AttachType.SK_LOOKUP), "sk_lookup")
        from corebpf.perf_links import find_binary

        links["on_uprobe"] = attach_uprobe(progs["on_uprobe"].fd.fd, find_binary("libc.so.6"),
                                           "getppid")
        typed = coll.maps["typed"].as_map()
        typed.update({"id": 1, "name": b"one"}, TYPED_ONE)
        typed.update({"id": 2, "name": b"two\x01"}, {"comm": b"\x01abc", "color": 3})
        typed.close()
        with coll.maps["counts"].as_map() as m:
            m.update(1, 42)
        with coll.maps["pcpu"].as_map() as m:
            m.update(0, [1, 2] + [0] * (m.ncpus - 2) if m.ncpus >= 2 else [1])
        with coll.maps["pcpu_hash"].as_map() as m:
            m.update(9, {"x": 1, "y": -1})
        with coll.maps["untyped"].as_map() as m:
            m.update(b"\x01\x00\x00\x00", b"abcdefghijkl")
        with coll.maps["fifo"].as_map() as m:
            m.push(7)
        os.makedirs(pin_dir, exist_ok=True)
        ksys.obj_pin(coll.maps["counts"].fd.fd, os.path.join(pin_dir, "counts"))
        ksys.obj_pin(progs["on_raw_tp"].fd.fd, os.path.join(pin_dir, "on_raw_tp"))
        raw_link = links["on_raw_tp"].fd
        assert raw_link is not None
        ksys.obj_pin(raw_link.fd, os.path.join(pin_dir, "raw_tp_link"))
        yield Loaded(coll, links, pin_dir, iface)
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)
        for lk in links.values():
            lk.close()
        coll.close()
        sock.close()
        os.close(netns)
        if iface is not None:
            subprocess.run(["ip", "link", "del", iface], capture_output=True)


def _veth() -> str | None:
    """One end of a fresh veth pair (None without iproute2)."""
    if not shutil.which("ip"):
        return None
    name = f"cbi{uuid.uuid4().hex[:8]}"
    r = subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name",
                        name + "p"], capture_output=True)
    return name if r.returncode == 0 else None


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))
