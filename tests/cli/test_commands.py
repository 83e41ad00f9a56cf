"""The corebpf command end to end (it holds no logic: these check the wiring)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import PROGS


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corebpf", *args], capture_output=True,
                          text=True, check=False)


def test_obj_dump_annotates_core_relocations() -> None:
    out = run("obj", "dump", str(PROGS / "execsnoop.bpf.o"))
    assert out.returncode == 0, out.stderr
    assert "(85) call bpf_get_current_task#35" in out.stdout
    assert "CO-RE relo #0: <byte_off>" in out.stdout and "task_struct.real_parent" in out.stdout
    assert "map events: ringbuf" in out.stdout


def test_core_relocate_json_schema() -> None:
    out = run("core", "relocate", str(PROGS / "core_kinds.bpf.o"), "--json")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert records
    for r in records:
        assert set(r) == {"program", "section", "index", "insn", "kind", "local", "target",
                          "poisoned"}


def test_btf_dump_errors_name_the_file() -> None:
    out = run("btf", "dump", "/nonexistent.btf")
    assert out.returncode == 1 and "/nonexistent.btf" in out.stderr
