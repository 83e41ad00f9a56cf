"""corebpf run: --set parsing, values to JSON, and real runs (events, --set's effect,
SIGINT, the final globals/maps dump, no fd left open)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

import corebpf.btf as btf
from corebpf.btf.codec import codec
from corebpf.btf.types import IntEncoding
from corebpf.btf.writer import Builder
from corebpf.cli import main
from corebpf.globals import VariableError
from corebpf.obj import ObjectSpec
from corebpf.run import (
    RunError,
    decode_variables,
    parse_assignments,
    parse_value,
    rodata_values,
    run,
    to_json,
)
from tests.conftest import KERNEL_BTF, PROGS, ROOT

EXECSNOOP = PROGS / "execsnoop.bpf.o"
#: struct event's fields in execsnoop.bpf.c (its BTF has the struct: records decode by name)
EVENT_FIELDS = ("pid", "ppid", "uid", "retval", "comm", "filename")

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not KERNEL_BTF.exists(),
                                reason="loading BPF programs needs root and a kernel with BTF")


# -- pure helpers ---------------------------------------------------------------------------


class Types:
    def __init__(self) -> None:
        b = self.b = Builder()
        self.u32 = b.add(btf.Int("unsigned int", 4, 0, 0, 32))
        self.int = b.add(btf.Int("int", 4, IntEncoding.SIGNED, 0, 32))
        self.char = b.add(btf.Int("char", 1, IntEncoding.SIGNED, 0, 8))
        self.u8 = b.add(btf.Int("unsigned char", 1, 0, 0, 8))
        self.bool = b.add(btf.Int("_Bool", 1, IntEncoding.BOOL, 0, 8))
        self.dbl = b.add(btf.Float("double", 8))
        self.name = b.add(btf.Array(self.char, self.u32, 8))
        self.addr = b.add(btf.Array(self.u8, self.u32, 4))
        self.mode = b.add(btf.Enum("mode", 4, [btf.EnumValue("OFF", 0),
                                               btf.EnumValue("ON", 5)], signed=False))
        self.ev = b.add(btf.Struct("ev", 20, [btf.Member("pid", self.u32, 0, 0),
                                             btf.Member("name", self.name, 32, 0),
                                             btf.Member("addr", self.addr, 96, 0),
                                             btf.Member("on", self.bool, 128, 0)], False))
        self.spec = btf.from_bytes(b.encode())


def test_parse_assignments() -> None:
    assert parse_assignments(["a=1", "b=x=y", "a=2"]) == {"a": "2", "b": "x=y"}
    with pytest.raises(RunError, match=r"'target_uid'.*NAME=VALUE"):
        parse_assignments(["target_uid"])


def test_parse_value_by_type() -> None:
    t = Types()
    s = t.spec
    assert parse_value(s, t.u32, "0x10") == (16).to_bytes(4, "little")
    assert parse_value(s, t.int, "-2") == (-2).to_bytes(4, "little", signed=True)
    assert parse_value(s, t.bool, "true") == b"\x01"
    assert parse_value(s, t.bool, "0") == b"\x00"
    assert parse_value(s, t.name, "sshd") == b"sshd\0\0\0\0"
    assert parse_value(s, t.mode, "ON") == (5).to_bytes(4, "little")
    assert parse_value(s, t.dbl, "1.5") == struct.pack("<d", 1.5)
    assert parse_value(s, t.ev, '{"pid": 3}')[:4] == (3).to_bytes(4, "little")
    with pytest.raises(VariableError, match=r"var 'x'.*not an integer"):
        parse_value(s, t.u32, "ten", what="var 'x'")
    with pytest.raises(VariableError, match=r"var 'x'.*does not fit"):
        parse_value(s, t.u32, str(1 << 32), what="var 'x'")
    with pytest.raises(VariableError, match=r"var 'x'.*does not fit char\[8\]"):
        parse_value(s, t.name, "eightchr", what="var 'x'")
    with pytest.raises(VariableError, match=r"var 'x'.*not a boolean"):
        parse_value(s, t.bool, "maybe", what="var 'x'")


def test_rodata_values_name_the_variable() -> None:
    obj = ObjectSpec.load(EXECSNOOP)
    assert rodata_values(obj, {"target_uid": "0x3e8", "ignore_failed": "-1"}) == {
        "target_uid": (1000).to_bytes(4, "little"),
        "ignore_failed": (-1).to_bytes(4, "little", signed=True)}
    with pytest.raises(VariableError, match=r"no read-only global variable 'nope'.*target_uid"):
        rodata_values(obj, {"nope": "1"})
    with pytest.raises(VariableError, match=r".rodata variable 'target_uid'.*not an integer"):
        rodata_values(obj, {"target_uid": "root"})
    with pytest.raises(VariableError, match=r"variable 'target_uid'.*does not fit"):
        rodata_values(obj, {"target_uid": "0x100000000"})
    with pytest.raises(VariableError) as e:  # said once: no "x does not fit T: T: x ..."
        rodata_values(obj, {"target_uid": "-5"})
    msg = str(e.value)
    assert msg.count("does not fit") == 1 and msg.count("-5") == 1, msg


def test_to_json_by_type() -> None:
    t = Types()
    raw = struct.pack("<I8s4s?3x", 7, b"bash\0\xff\xff\xff", b"\x7f\0\0\x01", True)
    value = codec(t.spec, t.ev).decode(raw)
    got = to_json(t.spec, t.ev, value)
    assert got == {"pid": 7, "name": "bash", "addr": "7f000001", "on": True}
    json.dumps(got)
    assert to_json(t.spec, t.name, b"\xff\xfe\0\0\0\0\0\0") == "fffe000000000000"  # not text
    assert to_json(None, 0, {"k": b"\x01", "big": 1 << 70}) == {"k": "01", "big": 1 << 70}
    assert to_json(t.spec, t.dbl, float("nan")) == "nan"


def test_decode_variables_of_a_data_section() -> None:
    obj = ObjectSpec.load(EXECSNOOP)
    ro = next(m for m in obj.maps.values() if m.is_data and m.read_only)
    data = bytearray(ro.value_size)
    off = {v.name: v.offset for v in ro.variables}
    struct.pack_into("<I", data, off["target_uid"], 4242)
    struct.pack_into("<i", data, off["ignore_failed"], -3)
    assert decode_variables(obj.btf, ro, bytes(data)) == {"target_uid": 4242,
                                                          "ignore_failed": -3}


def test_unknown_event_type_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXECSNOOP), "--event-type", "nosuch"]) == 1
    assert "--event-type 'nosuch'" in capsys.readouterr().err


def test_bad_set_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(EXECSNOOP), "--set", "target_uid=abc"]) == 1
    assert "'target_uid'" in capsys.readouterr().err
    assert main(["run", str(EXECSNOOP), "--set", "target_uid=-5"]) == 1
    err = capsys.readouterr().err
    assert err.count("target_uid") == 1 and err.count("does not fit") == 1, err
    assert ".rodata variable 'target_uid' (const volatile __u32): -5 does not fit in " \
        "unsigned int (0..4294967295)" in err


# -- real runs ---------------------------------------------------------------------------------


class _Run:
    """`corebpf run` in a subprocess, its stdout going to a file (a pipe nobody reads
    would stall its reader and make the kernel drop records)."""

    def __init__(self, *args: str):
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.out = tempfile.TemporaryFile("w+")
        self.p = subprocess.Popen([sys.executable, "-m", "corebpf", "run", *args], cwd=ROOT,
                                  env=env, stdout=self.out, stderr=subprocess.PIPE, text=True)


def _start(*args: str) -> _Run:
    """`corebpf run` in a subprocess, returned once its programs are attached."""
    r = _Run(*args)
    assert r.p.stderr is not None
    line = r.p.stderr.readline()
    while line and "attached" not in line:
        line = r.p.stderr.readline()
    if not line:
        _out, err = r.p.communicate()
        pytest.fail(f"corebpf run failed ({r.p.returncode}): {err}")
    return r


def _finish(r: _Run, timeout: float = 30) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    _, err = r.p.communicate(timeout=timeout)
    assert r.p.returncode == 0, err
    r.out.seek(0)
    out = r.out.read()
    r.out.close()
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines and set(lines[-1]) == {"globals", "maps"}, out[-500:]
    return lines[:-1], lines[-1]


def _execsnoop_events(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    evs = []
    for rec in lines:
        assert rec["map"] == "events" and set(rec["event"]) == set(EVENT_FIELDS), rec
        evs.append(tuple(rec["event"][f] for f in EVENT_FIELDS))
    return evs


@needs_root
def test_execsnoop_reports_an_exec(tmp_path: Path) -> None:
    exe = tmp_path / "corebpf-run-true"
    shutil.copy("/bin/true", exe)
    p = _start(str(EXECSNOOP), "--duration", "2")
    child = subprocess.Popen([str(exe), "x"])
    child.wait()
    lines, final = _finish(p)
    mine = [e for e in _execsnoop_events(lines) if e[0] == child.pid]
    assert mine, f"no event for pid {child.pid} among {len(lines)}"
    _, ppid, uid, _, comm, filename = mine[0]
    assert (ppid, uid) == (os.getpid(), os.getuid())
    assert comm == Path("/proc/self/comm").read_text().strip()[:15]
    assert filename == str(exe)[:127]
    g = final["globals"]
    assert g[".rodata"] == {"target_uid": 0xFFFFFFFF, "ignore_failed": 0}
    assert g[".bss"]["total_events"] >= len(lines) >= 1
    by_uid = {e["key"]: e["value"] for e in final["maps"]["execs_by_uid"]}
    assert by_uid[os.getuid()] >= 1


@needs_root
def test_set_filters_and_sigint_ends_cleanly(tmp_path: Path) -> None:
    uid = 4242
    p = _start(str(EXECSNOOP), "--set", f"target_uid={uid}")
    child = subprocess.Popen(["/bin/true"], user=uid, group=uid)
    child.wait()
    subprocess.run(["/bin/true"], check=True)  # ours, root's: filtered out
    time.sleep(0.3)
    p.p.send_signal(signal.SIGINT)
    lines, final = _finish(p)
    evs = _execsnoop_events(lines)
    assert {e[2] for e in evs} == {uid}, evs
    assert any(e[0] == child.pid for e in evs)
    assert final["globals"][".rodata"]["target_uid"] == uid
    assert [e["key"] for e in final["maps"]["execs_by_uid"]] == [uid]


@needs_root
def test_in_process_run_closes_every_fd() -> None:
    def fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    run(EXECSNOOP, duration=0.2, btf=KERNEL_BTF, out=io.StringIO(), err=io.StringIO())
    before = fds()
    out = io.StringIO()
    assert run(EXECSNOOP, duration=0.5, btf=KERNEL_BTF, out=out, err=io.StringIO()) == 0
    assert fds() == before
    final = json.loads(out.getvalue().splitlines()[-1])
    assert "execs_by_uid" in final["maps"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


PERF_SRC = r"""
struct event { __u32 pid; __s32 tag; char comm[16]; __u8 raw[4]; };

const volatile __u32 target_pid = 0;
struct event last = {};
__u64 hits = 0;

struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 16384); } rb SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} pb SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} per_cpu SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct event e = {};
	__u32 zero = 0;
	__u64 *n;

	e.pid = bpf_get_current_pid_tgid() >> 32;
	if (e.pid != target_pid)
		return 0;
	e.tag = -7;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	e.raw[0] = 1; e.raw[1] = 2; e.raw[2] = 3; e.raw[3] = 4;
	bpf_perf_event_output(ctx, &pb, BPF_F_CURRENT_CPU, &e, sizeof(e));
	bpf_ringbuf_output(&rb, &e, sizeof(e), 0);
	last = e;
	__sync_fetch_and_add(&hits, 1);
	n = bpf_map_lookup_elem(&per_cpu, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def _build(d: Path, body: str) -> Path:
    """A BPF object built from ``body`` with clang (skips without one)."""
    clang = shutil.which("clang-19") or shutil.which("clang")
    if clang is None:
        pytest.skip("no clang to build the test object")
    src, obj = d / "t.bpf.c", d / "t.bpf.o"
    src.write_text("#include <linux/types.h>\n#include <linux/bpf.h>\n"
                   "#include <bpf/bpf_helpers.h>\n" + body)
    arch = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout
    subprocess.run([clang, "-O2", "-g", "-target", "bpfel", f"-I/usr/include/{arch.strip()}",
                    "-c", str(src), "-o", str(obj)], check=True)
    return obj


@pytest.fixture(scope="module")
def perf_obj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("run"), PERF_SRC)


@needs_root
def test_ring_and_perf_events_decoded(perf_obj: Path) -> None:
    p = _start(str(perf_obj), "--set", f"target_pid={os.getpid()}", "--event-type",
               "struct event", "--duration", "1.5")
    for _ in range(3):
        os.getppid()
    lines, final = _finish(p)
    comm = Path("/proc/self/comm").read_text().strip()[:15]
    want = {"pid": os.getpid(), "tag": -7, "comm": comm, "raw": "01020304"}
    ring = [r for r in lines if r["map"] == "rb"]
    perf = [r for r in lines if r["map"] == "pb"]
    assert [r["event"] for r in ring] == [want] * 3
    assert [r["event"] for r in perf] == [want] * 3
    assert all(isinstance(r["cpu"], int) for r in perf)
    assert not any("lost" in r for r in lines)
    g = final["globals"]
    assert g[".bss"] == {"last": want, "hits": 3}
    assert g[".rodata"] == {"target_pid": os.getpid()}
    [entry] = final["maps"]["per_cpu"]
    assert entry["key"] == 0 and sum(entry["value"]) == 3
    assert set(final["maps"]) == {"per_cpu"}


@needs_root
def test_default_event_type_is_struct_event(perf_obj: Path) -> None:
    out = io.StringIO()
    run(perf_obj, duration=0.1, rodata={"target_pid": "1"}, out=out, err=io.StringIO())
    assert json.loads(out.getvalue())["globals"][".bss"]["hits"] == 0
    from corebpf.run import event_decoder

    obj = ObjectSpec.load(perf_obj)
    dec = event_decoder(obj, obj.maps["rb"])
    assert dec(bytes(28))["event"]["comm"] == ""
    assert dec(b"\x01") == {"data": "01"}  # too short for the type: hex



@needs_root
def test_attach_failure_names_the_program(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    obj = _build(tmp_path, 'SEC("tp/nosuch/event") int tail(void *c) { return 0; }\n'
                 'char L[] SEC("license") = "GPL";\n')
    assert main(["run", str(obj), "--duration", "0.1"]) == 1
    err = capsys.readouterr().err
    assert "program 'tail' (section 'tp/nosuch/event')" in err and "does not exist" in err


@needs_root
def test_perf_samples_and_losses_add_up(perf_obj: Path) -> None:
    n = 20000
    p = _start(str(perf_obj), "--set", f"target_pid={os.getpid()}", "--duration", "3")
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # one CPU's ring: the loss report follows there
    try:
        for _ in range(n):
            os.getppid()
        # the kernel reports a loss with the next sample that finds room: once the reader
        # has drained the ring, one more
        time.sleep(0.5)
        os.getppid()
        n += 1
    finally:
        os.sched_setaffinity(0, cpus)
    lines, final = _finish(p, timeout=60)
    samples = sum(1 for r in lines if r["map"] == "pb" and "event" in r)
    lost = sum(r["lost"] for r in lines if r["map"] == "pb" and "lost" in r)
    assert final["globals"][".bss"]["hits"] == n
    assert samples + lost == n, (samples, lost)


@needs_root
def test_stop_event_ends_a_run_from_another_thread() -> None:
    import threading

    stop = threading.Event()
    out = io.StringIO()
    result: list[int] = []
    t = threading.Thread(target=lambda: result.append(
        run(EXECSNOOP, out=out, err=io.StringIO(), stop_event=stop)))
    t.start()
    time.sleep(0.5)
    stop.set()
    t.join(10)
    assert result == [0]
    assert "globals" in json.loads(out.getvalue().splitlines()[-1])


@needs_root
def test_typed_ring_and_perf_maps_run() -> None:
    """Maps that name their event type with __type(value, struct event) load (as 0/0 ring
    buffer and 4/4 perf event array) and their records decode as that type."""
    p = _start(str(PROGS / "events.bpf.o"), "--set", f"target_pid={os.getpid()}",
               "--duration", "1")
    for _ in range(2):
        os.getppid()
    lines, _final = _finish(p)
    want = {"pid": os.getpid(), "tag": -3,
            "comm": Path("/proc/self/comm").read_text().strip()[:11]}
    assert [r["event"] for r in lines if r["map"] == "ring"] == [want] * 2
    assert [r["event"] for r in lines if r["map"] == "perf"] == [want] * 2


@needs_root
def test_untyped_records_say_how_to_type_them(capsys: pytest.CaptureFixture[str]) -> None:
    """A ring buffer whose records have no BTF type prints hex, and says once, before
    anything runs, how to give them one; typed maps say nothing."""
    assert main(["run", str(PROGS / "snoop.bpf.o"), "--duration", "0"]) == 0
    err = capsys.readouterr().err
    assert err.count("its records have no type") == 1
    assert "ring buffer 'opens'" in err and "__type(value, struct X)" in err
    assert "--event-type" in err
    assert main(["run", str(PROGS / "events.bpf.o"), "--duration", "0"]) == 0
    assert "no type" not in capsys.readouterr().err


@needs_root
def test_verifier_refusal_shows_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    bad = str(PROGS / "verifier_bad.bpf.o")
    assert main(["run", bad, "--duration", "0"]) == 1
    err = capsys.readouterr().err
    assert "program no_null_check: BPF_PROG_LOAD failed: Permission denied" in err
    assert "verifier log (last 20 of" in err
    assert "R0 invalid mem access 'map_value_or_null'" in err
    assert "r0 = *(u64 *)(r0 +0)" in err
    assert "call bpf_get_current_pid_tgid" not in err  # the head of the log: -v only
    assert main(["run", "-v", bad]) == 1
    err = capsys.readouterr().err
    assert "\nverifier log:\n" in err and "call bpf_get_current_pid_tgid" in err
    assert "R0 invalid mem access 'map_value_or_null'" in err


@pytest.mark.parametrize("args", [["--duration", "-1"], ["--duration", "nan"],
                                  ["--duration", "inf"], ["--duration", "soon"],
                                  ["--set", "target_uid"], ["--set", "=1"]])
def test_bad_arguments_are_usage_errors(args: list[str],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", str(EXECSNOOP), *args])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {args[0]}: {args[1]!r}" in err


def test_run_refuses_a_bad_duration() -> None:
    with pytest.raises(RunError, match=r"duration -1\.0: expected a finite number"):
        run(EXECSNOOP, duration=-1.0, out=io.StringIO(), err=io.StringIO())


@needs_root
def test_btf_is_repeatable(tmp_path: Path) -> None:
    """--btf A --btf B: searched in order; struct data from the application's BTF, the
    kernel's types from the kernel's (the run's own syscalls fire the raw_tp)."""
    from tests.user_btf import APP_V1, OBJ, app_btf, expected

    app = tmp_path / "app.btf"
    app.write_bytes(app_btf(APP_V1).raw)
    r = subprocess.run([sys.executable, "-m", "corebpf", "run", str(OBJ), "--btf", str(app),
                        "--btf", str(KERNEL_BTF), "--duration", "0"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[-1])["globals"][".bss"]["results"]
    assert {k: got[k] for k in expected(APP_V1)} == expected(APP_V1)
    assert got["pid_ok"] > 0 and got["pid_bad"] == 0


def test_uprobe_target_from_the_command_line() -> None:
    """--uprobe PROG=BINARY:FUNC attaches a bare SEC("uprobe") program (here in libc, by
    library name) and --pid limits it to one process; an unknown PROG lists the
    programs."""
    obj = str(PROGS / "uprobe.bpf.o")
    child = subprocess.Popen([sys.executable, "-c", "import os, time\ntime.sleep(1.5)\n"
                       "for _ in range(50): os.getppid()\ntime.sleep(1)"])
    try:
        r = subprocess.run([sys.executable, "-m", "corebpf", "run", obj, "--duration", "2.5",
                     "--uprobe", "on_entry=libc.so.6:getppid", "--pid", str(child.pid)],
                    capture_output=True, text=True, timeout=60)
    finally:
        child.wait()
    assert r.returncode == 0, r.stderr
    assert "'on_return' not attached" in r.stderr
    final = json.loads(r.stdout.splitlines()[-1])
    assert final["globals"][".bss"]["entry_hits"] == 50
    r = subprocess.run([sys.executable, "-m", "corebpf", "run", obj, "--duration", "0",
                 "--uprobe", "nosuch=libc.so.6:getppid"], capture_output=True, text=True,
                timeout=60)
    assert r.returncode == 1 and "no loaded program 'nosuch'" in r.stderr
    assert "on_entry" in r.stderr and "Traceback" not in r.stderr


# -- --iface: XDP and tc programs on a veth pair; --format text ------------------------------

NETCOUNT = PROGS / "netcount.bpf.o"


def _udp_rows(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r["event"] for r in lines if r["map"] == "pkts" and r["event"]["ip"]["proto"] == 17]


@needs_root
@pytest.mark.parametrize(("tc_direction", "mode"), [(None, None), ("egress", "skb")])
def test_run_iface_attaches_and_detaches(tc_direction: str | None, mode: str | None) -> None:
    from tests.netns import (
        BPF_TCX_EGRESS,
        BPF_TCX_INGRESS,
        XDP_GENERIC,
        XDP_NATIVE,
        bpftool_net,
        send_out,
        send_udp,
        tcx_prog_ids,
        xdp_mode,
        xdp_prog_id,
    )
    from tests.netns import veth as veth_pair

    with veth_pair() as (ns, here):
        extra = ["--tc", f"count_tc={tc_direction}"] if tc_direction else []
        extra += ["--xdp-mode", mode] if mode else []
        p = _start(str(NETCOUNT), "--iface", here, "--duration", "2", *extra)
        assert xdp_prog_id(here) is not None
        assert xdp_mode(here) == (XDP_GENERIC if mode else XDP_NATIVE)
        ingress, egress = (tcx_prog_ids(here, BPF_TCX_INGRESS),
                           tcx_prog_ids(here, BPF_TCX_EGRESS))
        assert (len(ingress), len(egress)) == ((1, 2) if tc_direction else (2, 1))
        send_udp(ns, 5)
        send_out(4)
        lines, final = _finish(p)
        assert xdp_prog_id(here) is None and not bpftool_net(here)["xdp"]
        assert tcx_prog_ids(here, BPF_TCX_INGRESS) == []
        assert tcx_prog_ids(here, BPF_TCX_EGRESS) == []
    counts = {e["key"]: e["value"] for e in final["maps"]["packets"]}
    assert counts[0] >= 5 and counts[1] >= 5 and counts[2] >= 4  # XDP, tcx in, tcx out
    assert counts[3] >= (4 if tc_direction else 5)
    udp = _udp_rows(lines)
    assert len(udp) == 5, udp
    assert udp[0] == {"ifindex": udp[0]["ifindex"], "len": 46,
                      "ip": {"proto": 17, "ttl": 64, "tot_len": 32}, "hook": "xdp",
                      "kind": 0}


def test_run_iface_names_a_missing_interface(capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("the privilege check comes first without root")
    assert main(["run", str(NETCOUNT), "--iface", "cbnosuch0"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "corebpf: error: no network interface 'cbnosuch0'", err


def test_run_tc_direction_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", str(NETCOUNT), "--tc", "count_tc=sideways"])
    assert e.value.code == 2
    assert "expected PROG=ingress or PROG=egress" in capsys.readouterr().err


@needs_root
def test_run_format_text_on_an_interface() -> None:
    """Records as an aligned table under a header (nested struct flattened, char array as
    text, enum by name), then the globals-free dump with the map as a table."""
    from tests.netns import send_udp
    from tests.netns import veth as veth_pair

    with veth_pair() as (ns, here):
        import threading

        out, err = io.StringIO(), io.StringIO()
        started = threading.Event()

        class _Err(io.StringIO):
            def write(self, s: str) -> int:
                if "attached" in s:
                    started.set()
                return err.write(s)

        t = threading.Thread(target=run, args=(NETCOUNT,), kwargs=dict(
            duration=1.5, out=out, err=_Err(), iface=here, format="text"))
        t.start()
        assert started.wait(20), err.getvalue()
        send_udp(ns, 3)
        t.join(30)
    text = out.getvalue()
    lines = text.splitlines()
    header = lines[0]
    assert header.split() == ["ifindex", "len", "ip.proto", "ip.ttl", "ip.tot_len", "hook",
                              "kind"], text
    rows = [line for line in lines[1:] if line.split()[2:3] == ["17"]]
    assert len(rows) == 3, text
    for row in rows:
        assert row.split()[2:] == ["17", "64", "32", "xdp", "HOOK_XDP"]
        # aligned: right-aligned numbers end under their header's end, text starts there
        for name in ("len", "ip.tot_len"):
            end = header.index(name) + len(name)
            assert row[end - 1] != " " and (end == len(row) or row[end] == " "), (header, row)
        assert row.index("xdp") == header.index("hook")
        assert row.index("HOOK_XDP") == header.index("kind")
    dump = text[text.index("map packets:"):].splitlines()
    assert dump[1].split() == ["key", "value"]
    values = {int(k): int(v) for k, v in (line.split() for line in dump[2:6])}
    assert set(values) == {0, 1, 2, 3} and values[0] >= 3
    assert not text.lstrip().startswith("{")  # no JSON


@needs_root
def test_format_text_dump_of_globals_and_per_cpu_maps(perf_obj: Path) -> None:
    out = io.StringIO()
    run(perf_obj, duration=0.1, rodata={"target_pid": "7"}, out=out, err=io.StringIO(),
        format="text")
    text = out.getvalue()
    assert ".rodata:\n  target_pid  7\n" in text, text
    bss = text[text.index(".bss:"):text.index("map per_cpu:")]
    names = [line.split()[0] for line in bss.splitlines()[1:]]
    assert names == ["last.pid", "last.tag", "last.comm", "last.raw", "hits"], bss
    table = text[text.index("map per_cpu:"):].splitlines()
    assert table[1].split() == ["key", "cpu", "value"]
    from corebpf.sys.fs import possible_cpu_count

    cpus = [line.split()[1] for line in table[2:]]
    assert cpus == [str(c) for c in range(possible_cpu_count())]


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(RunError, match="format 'yaml'"):
        run(EXECSNOOP, format="yaml", out=io.StringIO(), err=io.StringIO())
