"""What every tool gets from corebpf.tools.base, through one real tool: the perf buffer
path of kernels before 5.8, -v's libbpf-style lines, --duration, and clear errors."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from corebpf.tools import TOOLS

from .peer import ROOT, Running, corebpf_tool

HEADER = r"PCOMM\s+PID\s+PPID\s+RET ARGS"


def _exec_rows(argv: list[str]) -> tuple[list[str], str]:
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    t = Running(argv, HEADER)
    subprocess.run(["/bin/echo", tag], stdout=subprocess.DEVNULL)
    t.wait_for(tag, 10)
    lines, err = t.stop()
    assert t.proc.returncode == 0, err
    return [ln for ln in lines if tag in ln], err


def test_perf_buffer_path() -> None:
    """--perf-buffer: `events` becomes a PERF_EVENT_ARRAY and use_ringbuf false before
    load (what a kernel without ring buffers gets); rows are the same."""
    rows, err = _exec_rows([*corebpf_tool("execsnoop"), "--perf-buffer", "-v"])
    assert "events: perf buffer" in err
    assert len(rows) == 1 and rows[0].startswith("echo ")


def test_verbose_lines() -> None:
    rows, err = _exec_rows([*corebpf_tool("execsnoop"), "-v"])
    assert rows
    assert "corebpf: BTF for CO-RE: /sys/kernel/btf/vmlinux (kernel)" in err
    assert "events: ring buffer" in err
    # one line per CO-RE relocation, with what it was patched to
    assert "relo #0: <byte_off>" in err and "struct task_struct.tgid" in err
    assert "patched insn #" in err


def test_duration_ends_the_run() -> None:
    r = subprocess.run([*corebpf_tool("execsnoop"), "--duration", "0.5"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("PCOMM")


def test_bad_btf_is_a_clear_error(tmp_path: object) -> None:
    r = subprocess.run([*corebpf_tool("execsnoop"), "--btf", "/nonexistent.btf"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "/nonexistent.btf" in r.stderr


def test_list_and_unknown_tool() -> None:
    r = subprocess.run([sys.executable, "-m", "corebpf", "tool", "--list"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert [ln.split()[0] for ln in r.stdout.splitlines()] == sorted(TOOLS)
    r = subprocess.run([sys.executable, "-m", "corebpf", "tool", "nosuchtool"], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no tool 'nosuchtool'" in r.stderr


def test_btf_is_repeatable(tmp_path: Path) -> None:
    """The first --btf describes this kernel; further ones are searched after it."""
    from tests.user_btf import APP_V1, app_btf

    app = tmp_path / "app.btf"
    app.write_bytes(app_btf(APP_V1).raw)
    rows, err = _exec_rows([*corebpf_tool("execsnoop"), "-v", "--btf", "/sys/kernel/btf/vmlinux",
                            "--btf", str(app)])
    assert rows
    assert f"BTF for CO-RE: /sys/kernel/btf/vmlinux (explicit), then {app}" in err
