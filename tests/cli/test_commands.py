"""The corebpf command end to end (it holds no logic: these check the wiring)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROGS, ROOT, debian_files


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


OBJS = [str(ROOT / "corebpf" / "tools" / "objects" / f"{t}.bpfel.o")
        for t in ("execsnoop", "opensnoop")]
BUNDLE = str(ROOT / "corebpf" / "tools" / "objects" / "btf-bundle.tar.xz")


def test_several_values_after_one_flag(tmp_path: Path) -> None:
    """`--object A.o B.o --btf K1 K2`, as the README writes it, in gen min-btf, archive
    bundle and check; a positional after the flags is still a positional."""
    k1, k2 = (str(p) for p in debian_files()[:2])
    out = run("gen", "min-btf", "--object", *OBJS, "--btf", k1, k2, "-o", str(tmp_path / "a"))
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "a").iterdir())) == 2
    out = run("gen", "min-btf", "--object", *OBJS, "-o", str(tmp_path / "b"), k1)
    assert out.returncode == 0, out.stderr
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(k1, archive)
    out = run("archive", "bundle", str(archive), "--object", *OBJS, "-o",
              str(tmp_path / "b.tar.xz"))
    assert out.returncode == 0, out.stderr
    assert "1 kernel, 1 distinct BTF" in out.stdout
    # a positional right after the flag's values is still the positional
    out = run("gen", "min-btf", "--object", *OBJS, str(archive), "-o", str(tmp_path / "c"))
    assert out.returncode == 0, out.stderr
    assert [p.name for p in (tmp_path / "c").iterdir()] == [Path(k1).name.split(".btf")[0]
                                                             + ".btf"]
    out = run("archive", "bundle", "--object", *OBJS, str(archive), "-o",
              str(tmp_path / "c.tar.xz"))
    assert out.returncode == 0, out.stderr
    out = run("check", "--object", *OBJS, "--archive", str(archive))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].startswith("1 kernel: 1 ok") \
        and out.stdout.rstrip().endswith("in 2 objects")
    out = run("check", "--archive", str(archive))
    assert out.returncode == 2 and "no object" in out.stderr


def test_archive_lookup_miss_names_the_key_and_nearest() -> None:
    out = run("archive", "lookup", BUNDLE, "--distro", "debian", "--distro-version", "12",
              "--arch", "x86_64", "--release", "6.1.0-99-amd64")
    assert out.returncode == 1
    err = out.stderr
    assert "distro=debian, version=12, arch=x86_64, release=6.1.0-99-amd64" in err, err
    assert "nearest entries: debian/12/x86_64/6.1.0-56" in err, err
    assert "Traceback" not in err


def test_archive_list_columns_align() -> None:
    out = run("archive", "list", BUNDLE)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["KERNEL", "BTF", "BYTES", "TYPES"]
    rows = lines[1:-1]
    assert rows and len({len(r) for r in rows} | {len(lines[0])}) == 1, "columns not aligned"
    for col in ("BYTES", "TYPES"):  # right-aligned numbers end under their heading
        end = lines[0].index(col) + len(col)
        assert all(r[end - 1].isdigit() and (end == len(r) or r[end] == " ") for r in rows)
    assert lines[-1].endswith("distinct BTF") and " kernels, " in lines[-1]
