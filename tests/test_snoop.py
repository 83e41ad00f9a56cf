"""Snoop-style tools on the real kernel: the test causes the event (open a file, connect
to a port), then checks what the program recorded (pid, comm, path, port, count); and
nothing a program or link holds outlives close() or the process that loaded it."""

from __future__ import annotations

import errno
import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from corebpf import sys as ksys
from corebpf.links import attach
from corebpf.loader import Collection, load
from corebpf.ringbuf import RingBuffer
from tests.conftest import PROGS, ROOT

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/sys/kernel/btf/vmlinux"),
    reason="attaching BPF programs needs root and a kernel with BTF",
)

SNOOP = PROGS / "snoop.bpf.o"
# struct open_event: pid, tid, flags, path_len, comm[16], path[256]
OPEN_EVENT = struct.Struct("=IIiI16s256s")


def _load(*programs: str, pid: int | None = None) -> Collection:
    return load(SNOOP, rodata={"target_pid": os.getpid() if pid is None else pid},
                programs=programs)


def _global(coll: Collection, section: str, name: str) -> int:
    """A global variable's value, read from the data map's mmap (the kernel's copy)."""
    m = next(m for m in coll.maps.values() if m.spec.section == section)
    var = next(v for v in m.spec.variables if v.name == name)
    assert m.mmap is not None, f"{m.name} is not mmapped"
    return int.from_bytes(m.mmap[var.offset:var.offset + var.size], sys.byteorder)


def _comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode()


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# -- opensnoop --------------------------------------------------------------------------


def test_opensnoop_records_pid_comm_and_path(tmp_path: Path) -> None:
    path = tmp_path / f"corebpf-opensnoop-{uuid.uuid4().hex}"
    path.write_bytes(b"x")  # written before the program attaches: one event below
    with _load("on_openat") as coll, RingBuffer(coll.maps["opens"]) as rb:
        with attach(coll.programs["on_openat"]):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            os.close(fd)
        events = [OPEN_EVENT.unpack(rec[:OPEN_EVENT.size]) for rec in rb.records(timeout=0)]
        assert _global(coll, ".bss", "open_drops") == 0
    ours = [e for e in events if _cstr(e[5]) == str(path)]
    assert len(ours) == 1, [_cstr(e[5]) for e in events]
    pid, tid, flags, path_len, comm, _ = ours[0]
    assert pid == os.getpid()
    assert tid == pid  # the main thread opened it
    assert _cstr(comm) == _comm()
    assert path_len == len(str(path)) + 1  # bpf_probe_read_user_str counts the NUL
    assert flags & 3 == os.O_RDONLY and flags & os.O_CLOEXEC
    # the filter: every event is this process's
    assert {e[0] for e in events} == {os.getpid()}


def test_opensnoop_ignores_other_processes(tmp_path: Path) -> None:
    """A child opening a file is not this process: target_pid keeps it out of the ring."""
    path = tmp_path / f"corebpf-other-{uuid.uuid4().hex}"
    path.write_bytes(b"x")
    with _load("on_openat") as coll, RingBuffer(coll.maps["opens"]) as rb:
        with attach(coll.programs["on_openat"]):
            subprocess.run(["cat", str(path)], check=True, capture_output=True)
        paths = [_cstr(OPEN_EVENT.unpack(rec[:OPEN_EVENT.size])[5])
                 for rec in rb.records(timeout=0)]
    assert str(path) not in paths


def test_opensnoop_stops_on_link_close(tmp_path: Path) -> None:
    path = tmp_path / "after-close"
    path.write_bytes(b"x")
    with _load("on_openat") as coll, RingBuffer(coll.maps["opens"]) as rb:
        attach(coll.programs["on_openat"]).close()
        with open(path, "rb"):
            pass
        assert list(rb.records(timeout=0)) == []


# -- connect ----------------------------------------------------------------------------


def _connects(coll: Collection) -> dict[int, int]:
    """connects map as {port in host order: count}."""
    with coll.maps["connects"].as_map() as m:
        return {socket.ntohs(k & 0xFFFF): v for k, v in m.items()}


def test_connect4_counts_by_destination_port() -> None:
    with socket.socket() as srv, _load("on_connect4") as coll:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        port = srv.getsockname()[1]
        with attach(coll.programs["on_connect4"]):  # the root cgroup: every process
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    peer, _addr = srv.accept()  # the program allowed it: it connected
                    peer.close()
                    assert c.getpeername() == ("127.0.0.1", port)
            assert _connects(coll) == {port: 3}
            assert _global(coll, ".bss", "last_connect_ip4") == int.from_bytes(
                socket.inet_aton("127.0.0.1"), sys.byteorder)
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            srv.accept()[0].close()
        assert _connects(coll) == {port: 3}  # detached on close


def test_connect4_in_a_cgroup_of_the_tests_own() -> None:
    """Attached to a child cgroup, the program sees a process moved into it and not this
    one (which stays where it is)."""
    from corebpf.sys.fs import cgroup2_root

    root = cgroup2_root()
    cg = Path(root) / f"corebpf-test-{uuid.uuid4().hex[:8]}"
    try:
        cg.mkdir()
    except OSError as e:
        pytest.skip(f"cannot create a cgroup under {root}: {e}")
    try:
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(8)
            port = srv.getsockname()[1]
            # the child joins the cgroup, then says so and connects once it is told to
            child = subprocess.Popen(
                [sys.executable, "-c",
                 "import os, socket, sys\n"
                 f"open({str(cg / 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
                 "print('in', flush=True); sys.stdin.readline()\n"
                 f"socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            try:
                assert child.stdout is not None and child.stdin is not None
                assert child.stdout.readline() == b"in\n"
                with _load("on_connect4", pid=child.pid) as coll, \
                        attach(coll.programs["on_connect4"], cgroup=str(cg)):
                    child.stdin.write(b"go\n")
                    child.stdin.close()
                    assert child.wait(timeout=10) == 0
                    srv.accept()[0].close()
                    assert _connects(coll) == {port: 1}
            finally:
                child.kill()
                child.wait()
    finally:
        cg.rmdir()


# -- lifetime ---------------------------------------------------------------------------


def _gone(get_fd: object, obj_id: int, timeout: float = 5.0) -> bool:
    """True once get_fd(obj_id) fails with ENOENT. The last reference goes at exit, but
    a program's memory may be freed after an RCU grace period, so poll a little."""
    assert callable(get_fd)
    deadline = time.monotonic() + timeout
    while True:
        try:
            get_fd(obj_id).close()
        except OSError as e:
            if e.errno == errno.ENOENT:
                return True
            raise
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


_CHILD = """
import os, struct, sys
from corebpf.loader import load
from corebpf.links import attach
from corebpf.sys import obj_info
coll = load(sys.argv[1], rodata={"target_pid": os.getpid()}, programs=["on_openat"])
link = attach(coll.programs["on_openat"])
prog_id = struct.unpack_from("=I", obj_info(coll.programs["on_openat"].fd.fd), 4)[0]
link_id = struct.unpack_from("=I", obj_info(link.fd.fd, 64), 4)[0]
print(prog_id, link_id, flush=True)
os._exit(0)  # no close(), no finalisers: only the kernel's cleanup at exit
"""


def test_nothing_stays_attached_after_process_exit() -> None:
    out = subprocess.run([sys.executable, "-c", _CHILD, str(SNOOP)], check=True,
                         capture_output=True, text=True, cwd=ROOT, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    prog_id, link_id = map(int, out.stdout.split())
    assert prog_id > 0 and link_id > 0
    assert _gone(ksys.prog_get_fd_by_id, prog_id), f"program {prog_id} outlived its process"
    assert _gone(ksys.link_get_fd_by_id, link_id), f"link {link_id} outlived its process"


def test_by_id_sees_a_live_program_and_link() -> None:
    """The other side of the exit test: while the fds are open the ids resolve."""
    with _load("on_openat") as coll, attach(coll.programs["on_openat"]) as link:
        assert link.fd is not None
        prog_id = struct.unpack_from("=I", ksys.obj_info(coll.programs["on_openat"].fd.fd), 4)[0]
        link_id = struct.unpack_from("=I", ksys.obj_info(link.fd.fd, 64), 4)[0]
        with ksys.prog_get_fd_by_id(prog_id) as fd:
            assert struct.unpack_from("=I", ksys.obj_info(fd.fd), 4)[0] == prog_id
        with ksys.link_get_fd_by_id(link_id) as fd:
            # struct bpf_link_info: type, id, prog_id
            assert struct.unpack_from("=II", ksys.obj_info(fd.fd, 64), 4) == (link_id, prog_id)
    assert _gone(ksys.prog_get_fd_by_id, prog_id)
    assert _gone(ksys.link_get_fd_by_id, link_id)


def test_close_restores_proc_self_fd(tmp_path: Path) -> None:
    before = _fds()
    coll = _load("on_openat", "on_connect4")
    links = [attach(coll.programs["on_openat"]), attach(coll.programs["on_connect4"])]
    rb = RingBuffer(coll.maps["opens"])
    with open(tmp_path / "f", "wb"):
        pass
    assert len(list(rb.records(timeout=0))) >= 1
    assert _fds() != before
    rb.close()
    for link in links:
        link.close()
    coll.close()
    assert _fds() == before
