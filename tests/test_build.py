"""corebpf build: BPF C to stripped CO-RE objects per target and a loadable skeleton."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from corebpf.elf import ElfFile
from corebpf.obj.object import ObjectSpec
from tests.skeleton.conftest import import_module

CLI = [sys.executable, "-m", "corebpf"]

PORTABLE = """\
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
	__type(value, struct event);
} events SEC(".maps");

const volatile __u32 target_pid = 0;
__u64 calls = 0;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct event e = {};

	e.pid = bpf_get_current_pid_tgid() >> 32;
	if (e.pid != target_pid)
		return 0;
	calls++;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	bpf_ringbuf_output(&events, &e, sizeof(e), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

KPROBE = """\
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
%s
__u64 last_arg = 0;

SEC("kprobe/do_nanosleep")
int on_sleep(struct pt_regs *ctx)
{
	last_arg = PT_REGS_PARM1(ctx);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

def corebpf_build(*args: str, env: dict[str, str] | None = None
                  ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "build", *args], capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("build")
    (d / "probe.bpf.c").write_text(PORTABLE)
    p = corebpf_build(str(d / "probe.bpf.c"), "-o", str(d / "out"), "--target", "bpfel,bpfeb")
    assert p.returncode == 0, p.stderr
    return d / "out"


def _sections(path: Path) -> set[str]:
    return {s.name for s in ElfFile(path.read_bytes(), source=str(path)).sections}


def test_objects_per_target(built: Path) -> None:
    assert (built / "include" / "vmlinux.h").stat().st_size > 100_000
    for variant, endian in (("bpfel", "<"), ("bpfeb", ">")):
        obj = built / f"probe.{variant}.o"
        names = _sections(obj)
        assert {".BTF", ".BTF.ext"} <= names
        assert not [n for n in names if n.startswith(".debug_")], names
        assert ObjectSpec.load(obj).endian == endian


def test_skeleton_loads(built: Path) -> None:
    mod: Any = import_module(built / "probe_skel.py")
    with mod.Probe() as skel:
        skel.rodata.target_pid = os.getpid()
        skel.load()
        skel.attach()
        os.getppid()
        evs = list(skel.maps.events.read(timeout=0.5))
        assert [(e.pid, type(e.comm)) for e in evs] == [(os.getpid(), str)]
        assert skel.bss.calls == 1


def _prog_insns(obj: Path) -> bytes:
    return ObjectSpec.load(obj).programs["on_sleep"].insns


def test_arch_targets(tmp_path: Path) -> None:
    src = tmp_path / "sleepy.bpf.c"
    src.write_text(KPROBE % "")  # arm64's user_pt_regs comes from corebpf build
    p = corebpf_build(str(src), "-o", str(tmp_path / "out"), "--target", "amd64,arm64")
    assert p.returncode == 0, p.stderr
    out = tmp_path / "out"
    x86, arm64 = out / "sleepy.x86.bpfel.o", out / "sleepy.arm64.bpfel.o"
    assert x86.exists() and arm64.exists()
    assert not (tmp_path / "out" / "sleepy.bpfel.o").exists()
    # PT_REGS_PARM1 reads di on x86 and regs[0] on arm64: the define reached clang
    assert _prog_insns(x86) != _prog_insns(arm64)
    for o in (x86, arm64):
        assert not [n for n in _sections(o) if n.startswith(".debug_")]
    text = (tmp_path / "out" / "sleepy_skel.py").read_text()
    assert "'x86.bpfel'" in text and "'arm64.bpfel'" in text
    mod: Any = import_module(tmp_path / "out" / "sleepy_skel.py")
    skel = mod.Sleepy()
    assert skel.obj.source.endswith("x86.bpfel.o") == (os.uname().machine == "x86_64")
    skel.close()


def test_compile_error(tmp_path: Path, built: Path) -> None:
    src = tmp_path / "broken.bpf.c"
    src.write_text('#include "vmlinux.h"\nint f(void) { return undefined_thing; }\n')
    p = corebpf_build(str(src), "-o", str(tmp_path / "out"), "--no-vmlinux-h",
                      "-I", str(built / "include"), "--target", "bpfel")
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert "corebpf: error:" in p.stderr
    assert "broken.bpf.c" in p.stderr and "undefined_thing" in p.stderr
    assert "error: use of undeclared identifier" in p.stderr  # clang's own words


def test_missing_clang(tmp_path: Path) -> None:
    src = tmp_path / "probe.bpf.c"
    src.write_text(PORTABLE)
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CLANG", "STRIP")}
    env["PATH"] = str(empty)
    p = corebpf_build(str(src), "-o", str(tmp_path / "out"), env=env)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert "needs clang" in p.stderr and "CLANG" in p.stderr
    assert not (tmp_path / "out" / "probe.bpfel.o").exists()


def test_unknown_target(tmp_path: Path) -> None:
    src = tmp_path / "probe.bpf.c"
    src.write_text(PORTABLE)
    p = corebpf_build(str(src), "-o", str(tmp_path / "out"), "--target", "vax")
    assert p.returncode == 1 and "vax" in p.stderr and "Traceback" not in p.stderr
