"""User-space CO-RE end to end: one uprobe object (tests/progs/user_core.bpf.c), compiled
once against v1 of ``struct data``, reads every field right from v1 and v2 builds of a
program and of a shared library (tests/progs/userspace, built here with gcc and clang-19)
when relocated against that build's BTF from DWARF: listed before the kernel's, merged
with the kernel's into one file, and through ``corebpf run``. The wrong build's BTF reads
the wrong bytes, and the kernel's alone leaves the reads poisoned."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import corebpf.btf as btf
from corebpf.dwarf import btf_from_dwarf
from corebpf.errors import VerifierError
from corebpf.links import attach
from corebpf.loader import CoreBTF, load
from corebpf.run import read_globals
from tests.conftest import KERNEL_BTF, PROGS, ROOT

OBJ = PROGS / "user_core.bpf.o"
SRC = PROGS / "userspace"
CALLS = 3
#: the values data.h gives call i, and v2's fillers
A = [1000 + 111 * i for i in range(CALLS)]
B = [0x1122334455660000 + i for i in range(CALLS)]
FLAGS = 0x7777
SIZE = {"v1": 32, "v2": 56}
VERSIONS = ("v1", "v2")

pytestmark = [
    pytest.mark.skipif(os.uname().machine != "x86_64",
                       reason="the object reads pt_regs.di, x86-64's first argument"),
    pytest.mark.skipif(
        os.geteuid() != 0 or not os.path.exists("/sys/bus/event_source/devices/uprobe"),
        reason="attaching uprobes needs root and the uprobe PMU"),
    pytest.mark.skipif(not KERNEL_BTF.exists(), reason="no /sys/kernel/btf/vmlinux"),
]


class Built:
    """Both versions of the program and of libfoo from one compiler, with their BTF."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def binary(self, kind: str, ver: str) -> Path:
        """The program (app) or library (lib) of one version."""
        return self.out / (f"app_{ver}" if kind == "app" else f"{ver}/libfoo.so.1")

    def btf(self, kind: str, ver: str) -> Path:
        path = self.binary(kind, ver)
        return path.with_name(path.name + ".btf")

    def target(self, kind: str, ver: str) -> str:
        """BINARY:FUNC of the uprobe."""
        return f"{self.binary(kind, ver)}:{'process' if kind == 'app' else 'foo_process'}"

    def command(self, kind: str, ver: str) -> tuple[list[str], dict[str, str]]:
        """How to run it: the app itself, or main_lib (built against v1) on this libfoo."""
        if kind == "app":
            return [str(self.binary(kind, ver))], dict(os.environ)
        return [str(self.out / "main_lib")], {**os.environ,
                                              "LD_LIBRARY_PATH": str(self.out / ver)}


def _build(out: Path, cc: str) -> Built:
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    subprocess.run(["make", "-s", "-C", str(SRC), f"OUT={out}", f"CC={cc}"], check=True)
    built = Built(out)
    for kind in ("app", "lib"):
        for ver in VERSIONS:
            built.btf(kind, ver).write_bytes(btf_from_dwarf(built.binary(kind, ver)))
    return built


@pytest.fixture(scope="module", params=["gcc", "clang-19"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _build(tmp_path_factory.mktemp(request.param), request.param)


@pytest.fixture(scope="module")
def gcc_built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return _build(tmp_path_factory.mktemp("gcc-only"), "gcc")


@pytest.fixture(scope="module")
def merged(gcc_built: Built) -> dict[tuple[str, str], Path]:
    """``corebpf btf merge KERNEL BUILD.btf`` for each build (run side by side: each
    copies the kernel's BTF)."""
    jobs = {}
    for kind in ("app", "lib"):
        for ver in VERSIONS:
            out = gcc_built.btf(kind, ver).with_suffix(".merged.btf")
            jobs[kind, ver] = out, subprocess.Popen(
                [sys.executable, "-m", "corebpf", "btf", "merge", str(KERNEL_BTF),
                 str(gcc_built.btf(kind, ver)), "-o", str(out)], cwd=ROOT,
                stderr=subprocess.PIPE, text=True)
    for _out, p in jobs.values():
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    return {k: out for k, (out, _) in jobs.items()}


@pytest.fixture(scope="module")
def regs_di_off() -> int:
    """Where the running kernel's pt_regs keeps di (the object asks CO-RE)."""
    spec = btf.load(KERNEL_BTF)
    regs = spec.type(spec.find("pt_regs", btf.Kind.STRUCT))
    assert isinstance(regs, btf.Struct)
    return next(m.offset for m in regs.members if m.name == "di") // 8


@contextmanager
def started(built: Built, kind: str, ver: str) -> Iterator[subprocess.Popen[str]]:
    """The program (or main_lib on this libfoo), waiting for "go" on stdin."""
    argv, env = built.command(kind, ver)
    child = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
        yield child
    finally:
        child.kill()
        child.wait()


def go(child: subprocess.Popen[str]) -> None:
    """Let it make its calls and exit."""
    assert child.stdin is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.wait(timeout=10) == 0


def probe(built: Built, kind: str, ver: str, core_btf: CoreBTF) -> tuple[dict[str, Any], int]:
    """Load the object relocated against ``core_btf``, attach it to ``kind``/``ver``'s
    function for one run of it; the .bss it filled, and the process id."""
    with started(built, kind, ver) as child, load(OBJ, btf=core_btf) as coll:
        with attach(coll.programs["on_process"], target=built.target(kind, ver),
                    pid=child.pid):
            go(child)
        return read_globals(coll)[".bss"], child.pid


def check(bss: dict[str, Any], kind: str, ver: str, pid: int, regs_di_off: int) -> None:
    """Every value the object read is the one the program put there."""
    assert bss["hits"] == CALLS
    assert bss["data_size"] == SIZE[ver]  # struct data's size in this build
    assert bss["regs_di_off"] == regs_di_off  # pt_regs from the kernel's BTF
    prefix = "call" if kind == "app" else "lib"
    assert bss["seen"][:CALLS] == [
        {"a": A[i], "b": B[i], "name": f"{prefix}-{i}", "via_inner": int(ver == "v2"),
         "pid": pid} for i in range(CALLS)]


@pytest.mark.parametrize("ver", VERSIONS)
@pytest.mark.parametrize("kind", ["app", "lib"])
def test_each_build_with_its_btf_before_the_kernels(built: Built, kind: str, ver: str,
                                                     regs_di_off: int) -> None:
    """btf=[build's from-dwarf BTF, kernel's]: struct data from the first, pt_regs from
    the second; a program's process() and libfoo's foo_process() (uprobe by library
    path, the caller unchanged across library versions)."""
    bss, pid = probe(built, kind, ver, [built.btf(kind, ver), KERNEL_BTF])
    check(bss, kind, ver, pid, regs_di_off)


@pytest.mark.parametrize("ver", VERSIONS)
@pytest.mark.parametrize("kind", ["app", "lib"])
def test_merged_file_as_the_only_target(gcc_built: Built, merged: dict[tuple[str, str], Path],
                                        kind: str, ver: str, regs_di_off: int) -> None:
    bss, pid = probe(gcc_built, kind, ver, merged[kind, ver])
    check(bss, kind, ver, pid, regs_di_off)


@pytest.mark.parametrize(("kind", "ver"), [("app", "v1"), ("app", "v2"), ("lib", "v2")])
def test_corebpf_run(gcc_built: Built, kind: str, ver: str, regs_di_off: int) -> None:
    """corebpf run OBJ --btf BUILD.btf --btf KERNEL --uprobe on_process=BINARY:FUNC --pid:
    the globals it prints at exit hold every value."""
    with started(gcc_built, kind, ver) as child:
        run = subprocess.Popen(
            [sys.executable, "-m", "corebpf", "run", str(OBJ),
             "--btf", str(gcc_built.btf(kind, ver)), "--btf", str(KERNEL_BTF),
             "--uprobe", f"on_process={gcc_built.target(kind, ver)}", "--pid", str(child.pid)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert run.stderr is not None
            lines: list[str] = []
            # "N programs attached" comes once it is listening
            while " attached, reading " not in (line := run.stderr.readline()):
                assert line, f"corebpf run ended: {''.join(lines)}"
                lines.append(line)
            go(child)
            run.send_signal(signal.SIGINT)
            out, err = run.communicate(timeout=30)
        finally:
            run.kill()
            run.wait()
    assert run.returncode == 0, err
    bss = json.loads(out.splitlines()[-1])["globals"][".bss"]
    check(bss, kind, ver, child.pid, regs_di_off)


@pytest.mark.parametrize("kind", ["app", "lib"])
def test_the_wrong_builds_btf_reads_the_wrong_bytes(gcc_built: Built, kind: str) -> None:
    """The negative control: relocated against the other version's BTF, the same object
    reads the fields at the other version's offsets. v1's offsets on v2's struct: a is
    seq's low half (i), b is flags and a side by side, name is inner.kind ("DD"). v2's on
    v1's: a is b's high half, b is the end of name (zeros)."""
    bss, _ = probe(gcc_built, kind, "v2", [gcc_built.btf(kind, "v1"), KERNEL_BTF])
    assert bss["data_size"] == SIZE["v1"]
    assert [(s["a"], s["b"], s["name"], s["via_inner"]) for s in bss["seen"][:CALLS]] == [
        (i, FLAGS | A[i] << 32, "DD", 0) for i in range(CALLS)]
    bss, _ = probe(gcc_built, kind, "v1", [gcc_built.btf(kind, "v2"), KERNEL_BTF])
    assert bss["data_size"] == SIZE["v2"]
    seen = bss["seen"][:CALLS]
    assert [(s["a"], s["b"], s["via_inner"]) for s in seen] == [
        (B[i] >> 32, 0, 1) for i in range(CALLS)]
    prefix = "call" if kind == "app" else "lib"
    assert all(s["name"] != f"{prefix}-{i}" for i, s in enumerate(seen))


def test_kernel_btf_alone_poisons_the_reads() -> None:
    """Without the user BTF struct data has no candidate: the reads are poisoned and the
    verifier refuses the program at the first one, with CO-RE's reason."""
    with pytest.raises(VerifierError) as e:
        load(OBJ, btf=KERNEL_BTF).close()
    msg = str(e.value)
    assert "struct data has no field a on the target BTF" in msg
    assert "poisoned" in msg and "invalid func unknown#195896080" in msg
