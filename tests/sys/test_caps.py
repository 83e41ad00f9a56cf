"""Without root or CAP_BPF every command that needs the kernel says exactly that, first:
commands and probe sites run for real with privileges dropped (setpriv, as ``nobody`` or
as root without the capabilities)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import pytest

from corebpf.sys import caps
from tests.conftest import PROGS, ROOT

NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"]
NO_BPF_CAPS = ["--inh-caps=-all", "--bounding-set=-bpf,-perfmon,-sys_admin"]
NO_PERFMON = ["--inh-caps=-all", "--bounding-set=-perfmon,-sys_admin"]
EVENTS = str(PROGS / "events.bpf.o")  # a tracepoint program: CAP_BPF + CAP_PERFMON

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="dropping privileges needs root and setpriv "
                                "(util-linux)")


def _as(how: list[str], *argv: str) -> subprocess.CompletedProcess[str]:
    """``argv`` (a Python script's arguments) run through setpriv ``how``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME="/tmp")
    return subprocess.run(["setpriv", *how, sys.executable, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _cli(how: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return _as(how, "-m", "corebpf", *args)


def _said_first(p: subprocess.CompletedProcess[str], prefix: str, needs: str,
                lacks: str) -> None:
    """Exit 1, no traceback, and the privilege message is the first thing on stderr."""
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "BTFFeatures" not in p.stderr, p.stderr
    first = p.stderr.splitlines()[0]
    assert first.startswith(prefix), first
    assert f"needs root or {needs}" in first and f"lacks {lacks}" in first, first


def test_run_as_nobody() -> None:
    p = _cli(NOBODY, "run", EVENTS, "--duration", "1")
    _said_first(p, f"corebpf: error: running {EVENTS} ", "CAP_BPF + CAP_PERFMON",
                "CAP_BPF, CAP_PERFMON")
    assert "(uid 65534)" in p.stderr and p.stdout == ""


def test_tool_execsnoop_as_nobody() -> None:
    p = _cli(NOBODY, "tool", "execsnoop", "--duration", "1")
    _said_first(p, "corebpf tool execsnoop: execsnoop ", "CAP_BPF + CAP_PERFMON",
                "CAP_BPF, CAP_PERFMON")
    assert p.stdout == ""  # not even the header: nothing ran


def test_load_as_nobody() -> None:
    script = ("import sys\nfrom corebpf.errors import PrivilegeError\n"
              "from corebpf.loader import load\n"
              f"try:\n    load({EVENTS!r})\nexcept PrivilegeError as e:\n"
              "    print(e, e.missing, file=sys.stderr)\n    sys.exit(1)\n")
    p = _as(NOBODY, "-c", script)
    _said_first(p, f"loading {EVENTS} ", "CAP_BPF + CAP_PERFMON", "CAP_BPF, CAP_PERFMON")
    assert p.stderr.rstrip().endswith(f"[{caps.CAP_BPF}, {caps.CAP_PERFMON}]")


def test_root_without_the_capabilities() -> None:
    p = _cli(NO_BPF_CAPS, "run", EVENTS, "--duration", "1")
    _said_first(p, "corebpf: error: running ", "CAP_BPF + CAP_PERFMON",
                "CAP_BPF, CAP_PERFMON")
    assert "(uid 0)" in p.stderr
    p = _cli(NO_BPF_CAPS, "tool", "execsnoop", "--duration", "1")
    _said_first(p, "corebpf tool execsnoop: ", "CAP_BPF + CAP_PERFMON",
                "CAP_BPF, CAP_PERFMON")


def test_only_what_the_programs_take_is_asked_for() -> None:
    """Without CAP_PERFMON: a tracepoint program is refused naming CAP_PERFMON alone; an
    XDP/tc object (CAP_BPF + CAP_NET_ADMIN) still runs."""
    p = _cli(NO_PERFMON, "run", EVENTS, "--duration", "1")
    _said_first(p, "corebpf: error: running ", "CAP_BPF + CAP_PERFMON", "CAP_PERFMON")
    p = _cli(NO_PERFMON, "run", str(PROGS / "netcount.bpf.o"), "--duration", "0")
    assert p.returncode == 0, p.stderr
    assert '"packets"' in p.stdout
    # what the verifier refuses only for want of CAP_PERFMON says so: an XDP program
    # subtracting its packet pointers
    script = ("from corebpf import sys as ksys\nfrom corebpf.errors import VerifierError\n"
              "code = bytes.fromhex('6112040000000000' '6113000000000000' '1f32000000000000'"
              " 'b700000002000000' '9500000000000000')\n"
              "try:\n    ksys.prog_load(6, code, 'GPL')\n"
              "except VerifierError as e:\n    print(e.errno, e)\n")
    p = _as(NO_PERFMON, "-c", script)
    assert p.stdout.startswith(f"{errno.EACCES} "), (p.stdout, p.stderr)
    assert "this process lacks CAP_PERFMON, without which the verifier refuses pointer " \
        "arithmetic" in p.stdout


def test_probe_sites_say_privileges_not_features() -> None:
    """Past the early check (called directly), each kernel call an unprivileged process
    makes is a PrivilegeError: the BTF feature probes (once reported as BTF features the
    kernel lacks), BTF, map and program loads, perf_event_open."""
    script = r"""
import sys
from corebpf import sys as ksys
from corebpf.errors import PrivilegeError
from corebpf.features import btf_features
from corebpf.sys.perf_event import perf_event_attr, perf_event_open

calls = {
    "features": btf_features,
    "btf": lambda: ksys.btf_load(b"\x9f\xeb\x01\x18" + bytes(20)),
    "map": lambda: ksys.map_create(2, 4, 4, 1),
    "prog": lambda: ksys.prog_load(5, bytes.fromhex("b7000000000000009500000000000000"), "GPL"),
    "ids": lambda: ksys.prog_get_next_id(0),
    "perf": lambda: perf_event_open(perf_event_attr(1, 0), pid=0, cpu=-1),
}
for name, call in calls.items():
    try:
        call()
    except PrivilegeError as e:
        print(name, "|", e)
    else:
        print(name, "| no error")
"""
    p = _as(NOBODY, "-c", script)
    assert p.returncode == 0, p.stderr
    said = dict(line.split(" | ", 1) for line in p.stdout.splitlines())
    assert set(said) == {"features", "btf", "map", "prog", "ids", "perf"}, p.stdout
    for name in ("features", "btf"):
        assert said[name].startswith("bpf(BTF_LOAD) needs root or CAP_BPF:"), said[name]
    assert said["map"].startswith("bpf(MAP_CREATE) needs root or CAP_BPF:")
    assert said["prog"].startswith("bpf(PROG_LOAD) needs root or CAP_BPF + CAP_PERFMON "
                                   "(for tracing programs): this process (uid 65534) lacks "
                                   "CAP_BPF, CAP_PERFMON")
    assert said["ids"].startswith("bpf(PROG_GET_NEXT_ID) needs root or CAP_SYS_ADMIN")
    assert said["perf"].startswith("perf_event_open needs root or CAP_PERFMON")


@pytest.mark.parametrize("obj", ["prog", "map", "link", "btf"])
def test_inspection_verbs_as_nobody(obj: str) -> None:
    p = _cli(NOBODY, obj, "list")
    assert p.returncode == 1 and "Traceback" not in p.stderr, p.stderr
    first = p.stderr.splitlines()[0]
    assert first.startswith(f"corebpf: error: bpf({obj.upper()}_GET_NEXT_ID) needs root "
                            "or CAP_SYS_ADMIN"), first


def test_root_is_never_refused_for_privileges() -> None:
    """With every capability an EPERM is the kernel's own verdict (a security policy on
    fentry, a frozen map): not mapped, so the caller's fallbacks still see it."""
    assert caps.has(caps.CAP_BPF) and caps.has(caps.CAP_PERFMON)
    assert caps.refusal("PROG_LOAD", errno.EPERM, bytes(4)) is None
    assert caps.refusal("MAP_UPDATE_ELEM", errno.EPERM, b"") is None
    assert caps.refusal("PROG_GET_NEXT_ID", errno.EPERM, b"") is None
    caps.require("anything", frozenset({2, 6}), tracing=True, network=True)


def test_needed_follows_the_program_types() -> None:
    assert caps.needed(frozenset({1})) == [caps.CAP_BPF]  # socket filter
    assert caps.needed(frozenset({5})) == [caps.CAP_BPF, caps.CAP_PERFMON]  # tracepoint
    assert caps.needed(frozenset({6, 3})) == [caps.CAP_BPF, caps.CAP_NET_ADMIN]  # xdp, tc
    assert caps.needed(frozenset({28})) == [caps.CAP_BPF, caps.CAP_PERFMON,
                                            caps.CAP_NET_ADMIN]  # freplace: both
    assert caps.has(caps.CAP_BPF, 1 << caps.CAP_SYS_ADMIN)  # SYS_ADMIN implies it
    assert not caps.has(caps.CAP_BPF, 1 << caps.CAP_PERFMON)
