"""Attaching for real on this kernel: each program counts what the test then causes."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from corebpf import sys as ksys
from corebpf.errors import AttachError, VerifierError
from corebpf.links import attach
from corebpf.loader import Collection, load
from tests.conftest import PROGS

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/sys/kernel/btf/vmlinux"),
    reason="attaching BPF programs needs root and a kernel with BTF",
)

(C_RAW_TP, C_FENTRY, C_FEXIT, C_LSM, C_XDP, C_SOCKET, C_TP, C_TP_BTF, C_UPROBE, C_URETPROBE,
 C_CGROUP, C_TCX) = range(12)


def _load(*programs: str) -> Collection:
    return load(PROGS / "attach.bpf.o", rodata={"target_pid": os.getpid()},
                programs=programs)


def count(coll: Collection, idx: int) -> int:
    k, v = ctypes.c_uint32(idx), ctypes.c_uint64(0)
    ksys.map_elem(ksys.BPFCommand.MAP_LOOKUP_ELEM, coll.maps["counts"].fd.fd, k, v)
    return v.value


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_raw_tracepoint_and_tp_btf_count_syscalls() -> None:
    before = _fds()
    with _load("on_raw_tp", "on_tp_btf") as coll:
        links = [attach(coll.programs["on_raw_tp"]), attach(coll.programs["on_tp_btf"])]
        for _ in range(20):
            os.getppid()
        assert count(coll, C_RAW_TP) >= 20 and count(coll, C_TP_BTF) >= 20
        for link in links:
            link.close()
        n = count(coll, C_RAW_TP)
        os.getppid()
        assert count(coll, C_RAW_TP) == n  # detached on close
    assert _fds() == before


def test_task_iterator_lists_this_process() -> None:
    with _load("on_iter") as coll, attach(coll.programs["on_iter"]) as it:
        lines = it.read().decode().splitlines()  # type: ignore[attr-defined]
        pids = {int(line.split()[0]): line.split(maxsplit=1)[1] for line in lines}
        assert os.getpid() in pids


def test_socket_filter_sees_datagrams() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b, _load("on_socket") as coll, attach(coll.programs["on_socket"], sock=b):
        for i in range(3):
            a.send(b"x" * (i + 1))
            assert b.recv(16) == b"x" * (i + 1)
        assert count(coll, C_SOCKET) == 3


def test_cgroup_sock_create() -> None:
    with _load("on_cgroup") as coll:
        with attach(coll.programs["on_cgroup"]):
            for _ in range(4):
                socket.socket().close()
            assert count(coll, C_CGROUP) == 4
        socket.socket().close()
        assert count(coll, C_CGROUP) == 4


@pytest.fixture()
def veth() -> Iterator[tuple[str, str]]:
    """A veth pair: one end here, the peer in a network namespace of the test's own."""
    if not shutil.which("ip"):
        pytest.skip("iproute2 (ip) is not installed")
    tag = uuid.uuid4().hex[:6]
    ns, here, peer = f"cbns{tag}", f"cbA{tag}", f"cbB{tag}"
    run = lambda *a: subprocess.run(a, check=True, capture_output=True)  # noqa: E731
    run("ip", "netns", "add", ns)
    try:
        run("ip", "link", "add", here, "type", "veth", "peer", "name", peer)
        run("ip", "link", "set", peer, "netns", ns)
        run("ip", "addr", "add", "10.231.0.1/30", "dev", here)
        run("ip", "link", "set", here, "up")
        run("ip", "-n", ns, "addr", "add", "10.231.0.2/30", "dev", peer)
        run("ip", "-n", ns, "link", "set", peer, "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        yield ns, here
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _send_from_ns(ns: str, n: int) -> None:
    """UDP datagrams from inside the namespace to this side of the pair."""
    subprocess.run(["ip", "netns", "exec", ns, "python3", "-c",
                    "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                    f"for _ in range({n}): s.sendto(b'ping', ('10.231.0.1', 9))"],
                   check=True, capture_output=True)


def test_xdp_on_veth(veth: tuple[str, str]) -> None:
    ns, here = veth
    with _load("on_xdp") as coll:
        with attach(coll.programs["on_xdp"], iface=here):
            _send_from_ns(ns, 5)
            assert count(coll, C_XDP) >= 5
        n = count(coll, C_XDP)
        _send_from_ns(ns, 3)
        assert count(coll, C_XDP) == n


def test_tcx_ingress_on_veth(veth: tuple[str, str]) -> None:
    ns, here = veth
    with _load("on_tcx") as coll, attach(coll.programs["on_tcx"], iface=here):
        _send_from_ns(ns, 5)
        assert count(coll, C_TCX) >= 5


def _trampolines_refused() -> str | None:
    try:
        _load("on_fentry").close()
    except VerifierError as e:
        if e.errno == 1:
            return ("this kernel refuses BPF trampoline programs (fentry/fexit/fmod_ret/lsm) "
                    "with EPERM even for root; `bpftool prog load` fails the same way")
        raise
    return None


def test_fentry_fexit_lsm() -> None:
    reason = _trampolines_refused()
    if reason:
        pytest.skip(reason)
    with _load("on_fentry", "on_fexit", "on_lsm") as coll:
        links = [attach(coll.programs[n]) for n in ("on_fentry", "on_fexit", "on_lsm")]
        with open("/etc/hostname", "rb"):
            pass
        assert count(coll, C_FENTRY) >= 1 and count(coll, C_FEXIT) >= 1
        assert count(coll, C_LSM) >= 1
        for link in links:
            link.close()


def test_tracepoint_counts_getppid() -> None:
    with _load("on_tp") as coll, attach(coll.programs["on_tp"]):
        for _ in range(7):
            os.getppid()
        assert count(coll, C_TP) == 7


def test_pinned_link_outlives_its_fd_until_unpinned() -> None:
    """A pinned link stays attached after close(); reopened from the pin, unpin + close
    detach it, as bpftool's `link pin` and `rm` do."""
    from corebpf.errors import AttachError
    from corebpf.links import Link

    if not os.path.ismount("/sys/fs/bpf"):
        pytest.skip("no bpffs at /sys/fs/bpf")
    path = f"/sys/fs/bpf/corebpf_test_link_{uuid.uuid4().hex[:8]}"
    with _load("on_tp") as coll:
        link = attach(coll.programs["on_tp"])
        link.pin(path)
        link.close()
        os.getppid()
        assert count(coll, C_TP) == 1  # still attached through the pin
        again = Link.from_pin(path)
        assert again.pinned == path
        os.getppid()
        assert count(coll, C_TP) == 2
        again.unpin()
        assert not os.path.exists(path)
        again.close()
        os.getppid()
        assert count(coll, C_TP) == 2  # detached
        with pytest.raises(AttachError, match="not pinned"):
            again.unpin()
    with pytest.raises(AttachError, match=f"pinned link {path}"):
        Link.from_pin(path)


def test_loaded_map_as_map_decodes_through_btf() -> None:
    with _load("on_tp") as coll, attach(coll.programs["on_tp"]):
        for _ in range(3):
            os.getppid()
        with coll.maps["counts"].as_map() as counts:
            assert counts[C_TP] == 3
            assert dict(counts.items())[C_TP] == 3
        ro = next(name for name, m in coll.maps.items() if m.spec.is_data and
                  m.spec.read_only)
        with coll.maps[ro].as_map() as rodata:  # global data: the fixed-up DATASEC
            assert rodata[0]["target_pid"] == os.getpid()


LIBC = "/lib/x86_64-linux-gnu/libc.so.6" if os.path.exists(
    "/lib/x86_64-linux-gnu/libc.so.6") else "/lib/aarch64-linux-gnu/libc.so.6"


def test_uprobe_and_uretprobe_on_libc() -> None:
    if not os.path.exists(LIBC):
        pytest.skip(f"no {LIBC}")
    with _load("on_uprobe", "on_uretprobe") as coll:
        links = [attach(coll.programs["on_uprobe"], target=f"{LIBC}:getppid"),
                 attach(coll.programs["on_uretprobe"], target=f"{LIBC}:getppid")]
        for _ in range(5):
            os.getppid()
        assert count(coll, C_UPROBE) == 5 and count(coll, C_URETPROBE) == 5
        for link in links:
            link.close()


def test_uprobe_on_a_test_binary_by_symbol(tmp_path: object) -> None:
    """A function in a binary the test builds, called a known number of times, filtered to
    the child's pid (the pid option of attach)."""
    from pathlib import Path

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the test binary")
    tmp = Path(str(tmp_path))
    src = tmp / "target.c"
    src.write_text("#include <stdio.h>\n#include <unistd.h>\n"
                   "__attribute__((noinline)) int corebpf_probe_me(int x) "
                   "{ return x * 2 + (int)getpid() % 2; }\n"
                   "int main(void) { int s = 0; read(0, &s, 1); for (int i = 0; i < 9; i++) "
                   "s += corebpf_probe_me(i); printf(\"%d\\n\", s); return 0; }\n")
    exe = tmp / "target"
    subprocess.run([cc, "-O1", "-o", str(exe), str(src)], check=True)
    child = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        coll = load(PROGS / "attach.bpf.o", rodata={"target_pid": child.pid},
                    programs=["on_uprobe"])
        with coll, attach(coll.programs["on_uprobe"], target=f"{exe}:corebpf_probe_me",
                          pid=child.pid):
            assert child.stdin is not None
            child.stdin.write(b"x")
            child.stdin.close()
            child.wait(timeout=10)
            assert count(coll, C_UPROBE) == 9
    finally:
        child.kill()
        child.wait()


def test_kprobes_are_reported_missing_on_this_kernel() -> None:
    from corebpf.errors import AttachError
    from corebpf.perf_links import attach_kprobe

    if os.path.exists("/sys/bus/event_source/devices/kprobe"):
        pytest.skip("this kernel has kprobes; the no-kprobe path is what is tested here")
    with pytest.raises(AttachError, match="no kprobe PMU"):
        attach_kprobe(0, "do_sys_openat2")


def test_kprobe() -> None:
    if not os.path.exists("/sys/bus/event_source/devices/kprobe"):
        pytest.skip("this kernel has no kprobes (no kprobe PMU under "
                    "/sys/bus/event_source/devices)")
    with _load("on_kprobe") as coll, attach(coll.programs["on_kprobe"]):
        with open("/etc/hostname", "rb"):
            pass
        assert count(coll, C_RAW_TP) >= 1


# -- XDP and tc on an interface: netcount.bpf.o counts each hook's packets -------------------

NETCOUNT = PROGS / "netcount.bpf.o"
H_XDP, H_TCX_IN, H_TCX_OUT, H_TC = range(4)


def _packets(coll: Collection) -> list[int]:
    with coll.maps["packets"].as_map() as m:
        return [m[i] for i in range(4)]


def test_attach_xdp_counts_and_detaches() -> None:
    from corebpf.links import XDP_FLAGS_SKB_MODE, attach_xdp
    from tests.netns import (
        XDP_GENERIC,
        XDP_NATIVE,
        bpftool_net,
        send_udp,
        veth,
        xdp_mode,
        xdp_prog_id,
    )

    with veth() as (ns, here), load(NETCOUNT, programs=["count_xdp"]) as coll:
        prog = coll.programs["count_xdp"]
        with attach_xdp(prog, here) as link:
            assert link.description == f"xdp on {here}"
            assert xdp_prog_id(here) is not None
            assert xdp_mode(here) == XDP_NATIVE  # veth has native XDP
            assert bpftool_net(here)["xdp"]  # bpftool sees it too
            send_udp(ns, 5)
            assert _packets(coll)[H_XDP] >= 5
        assert xdp_prog_id(here) is None and not bpftool_net(here)["xdp"]
        n = _packets(coll)[H_XDP]
        send_udp(ns, 3)
        assert _packets(coll)[H_XDP] == n
        # by index, in generic mode
        with attach_xdp(prog, socket.if_nametoindex(here), XDP_FLAGS_SKB_MODE) as link:
            assert link.description == f"xdp on {here} (skb)"
            assert xdp_mode(here) == XDP_GENERIC
            send_udp(ns, 2)
            assert _packets(coll)[H_XDP] >= n + 2
        assert xdp_prog_id(here) is None


def test_tcx_ingress_egress_and_classic_tc() -> None:
    """tcx/ingress and tcx/egress by their sections; a classic SEC("tc") program on tcx,
    to ingress by default and to egress when told; nothing left after close."""
    from corebpf.links import attach_programs
    from tests.netns import (
        BPF_TCX_EGRESS,
        BPF_TCX_INGRESS,
        send_out,
        send_udp,
        tcx_prog_ids,
        veth,
    )

    with veth() as (ns, here), load(NETCOUNT) as coll:
        links, skipped = attach_programs(coll, iface=here)
        try:
            assert not skipped and len(links) == 4
            assert len(tcx_prog_ids(here, BPF_TCX_INGRESS)) == 2  # count_ingress, count_tc
            assert len(tcx_prog_ids(here, BPF_TCX_EGRESS)) == 1
            send_udp(ns, 5)
            send_out(4)
            counts = _packets(coll)
            assert counts[H_XDP] >= 5 and counts[H_TCX_IN] >= 5 and counts[H_TC] >= 5
            assert counts[H_TCX_OUT] >= 4
        finally:
            for link in links:
                link.close()
        assert tcx_prog_ids(here, BPF_TCX_INGRESS) == []
        assert tcx_prog_ids(here, BPF_TCX_EGRESS) == []
        links, _ = attach_programs(coll, {"count_tc": "egress"}, iface=here)
        try:
            assert len(tcx_prog_ids(here, BPF_TCX_EGRESS)) == 2
            before = _packets(coll)[H_TC]
            send_out(3)
            assert _packets(coll)[H_TC] >= before + 3
        finally:
            for link in links:
                link.close()
        assert tcx_prog_ids(here, BPF_TCX_EGRESS) == []


def test_interface_programs_without_an_interface_are_left_out() -> None:
    from corebpf.links import attach_programs

    with load(NETCOUNT) as coll:
        links, skipped = attach_programs(coll)
        assert links == []
        assert set(skipped) == {"count_xdp", "count_ingress", "count_egress", "count_tc"}
        assert "network interface" in skipped["count_tc"]
        with pytest.raises(AttachError, match="network interface; none was given"):
            attach(coll.programs["count_xdp"])


def test_a_missing_interface_is_named() -> None:
    from corebpf.links import attach_tcx, attach_xdp, resolve_iface

    with load(NETCOUNT, programs=["count_xdp", "count_tc"]) as coll:
        with pytest.raises(AttachError, match="no network interface 'cbnosuch0'"):
            attach_xdp(coll.programs["count_xdp"], "cbnosuch0")
        with pytest.raises(AttachError, match="no network interface with index 999999"):
            attach_tcx(coll.programs["count_tc"], 999999)
        with pytest.raises(AttachError, match="tc direction 'sideways'"):
            attach_tcx(coll.programs["count_tc"], "lo", "sideways")
    assert resolve_iface("lo") == (1, "lo") and resolve_iface("1") == (1, "lo")
