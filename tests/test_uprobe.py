"""Uprobe symbol resolution as libbpf's elf_find_func_offset does it, checked against
readelf on binaries gcc builds here and on libc, and uprobes that fire on them."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from corebpf.elf import ElfFile
from corebpf.errors import AttachError
from corebpf.links import attach
from corebpf.loader import Collection, load
from corebpf.obj import ObjectSpec
from corebpf.perf_links import attach_uprobe, find_binary, find_function, resolve_uprobe
from tests.conftest import PROGS

SRC = Path(__file__).parent / "progs" / "uprobe_target"
CC = shutil.which("gcc") or shutil.which("cc")
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"

root_only = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/sys/bus/event_source/devices/uprobe"),
    reason="attaching uprobes needs root and the uprobe PMU")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if CC is None:
        pytest.skip("no C compiler to build the test binaries")
    out = tmp_path_factory.mktemp("uprobe")
    subprocess.run(["make", "-s", "-C", str(SRC), f"OUT={out}", f"CC={CC}"], check=True)
    return {"pie": out / "uprobe_pie", "nopie": out / "uprobe_nopie"}


def readelf_funcs(path: Path | str, dyn: bool = False) -> list[tuple[str, int, str]]:
    """(name, value, bind) of every FUNC symbol as readelf prints them."""
    out = subprocess.run(["readelf", "-W", "--dyn-syms" if dyn else "-s", str(path)],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND":
            rows.append((f[7], int(f[1], 16), f[4]))
    return rows


def file_offset(path: Path | str, vaddr: int) -> int:
    """The file offset of a virtual address, from readelf's section table."""
    out = subprocess.run(["readelf", "-W", "-S", str(path)], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        m = re.search(r"\]\s+\S+\s+\S+\s+([0-9a-f]{16})\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
        if m:
            addr, off, size = (int(x, 16) for x in m.groups())
            if addr and addr <= vaddr < addr + size:
                return vaddr - addr + off
    raise AssertionError(f"{vaddr:#x} in no section of {path}")


def elf(path: Path | str) -> ElfFile:
    return ElfFile(Path(path).read_bytes(), source=str(path))


@pytest.mark.parametrize("kind", ["pie", "nopie"])
def test_offsets_match_readelf(built: dict[str, Path], kind: str) -> None:
    exe = built[kind]
    syms = {n: (v, b) for n, v, b in readelf_funcs(exe)}
    value, _ = syms["target_func"]
    assert resolve_uprobe(str(exe), "target_func") == (str(exe), file_offset(exe, value))
    assert resolve_uprobe(str(exe), "target_func+0x4")[1] == file_offset(exe, value) + 4
    if kind == "nopie":
        assert value >= 0x400000  # absolute address, offset from the segment
        assert file_offset(exe, value) == value - 0x400000


@pytest.mark.parametrize("kind", ["pie", "nopie"])
def test_local_beats_weak_and_twins_are_ambiguous(built: dict[str, Path], kind: str) -> None:
    exe = built[kind]
    rows = readelf_funcs(exe)
    local = next(v for n, v, b in rows if n == "weak_or_local" and b == "LOCAL")
    weak = next(v for n, v, b in rows if n == "weak_or_local" and b == "WEAK")
    assert local != weak
    assert find_function(elf(exe), "weak_or_local") == file_offset(exe, local)
    twins = sorted(file_offset(exe, v) for n, v, _ in rows if n == "twin")
    assert len(twins) == 2
    with pytest.raises(AttachError, match="'twin' is ambiguous") as e:
        find_function(elf(exe), "twin")
    for off in twins:  # the error lists every candidate
        assert f"{off:#x}" in str(e.value)


def test_missing_name_suggests_the_closest(built: dict[str, Path]) -> None:
    with pytest.raises(AttachError, match=r"no function 'target_fucn'; closest: target_func"):
        resolve_uprobe(str(built["pie"]), "target_fucn")


def test_libc_by_name_and_versions() -> None:
    if not os.path.exists(LIBC):
        pytest.skip(f"no {LIBC}")
    path, off = resolve_uprobe("libc.so.6", "malloc")
    assert path == os.path.realpath(LIBC)
    dyn = readelf_funcs(LIBC, dyn=True)
    want = {n: file_offset(LIBC, v) for n, v, _ in dyn}
    assert off == want["malloc@@GLIBC_2.2.5"]
    assert resolve_uprobe("libc.so.6", "malloc@@GLIBC_2.2.5")[1] == off
    assert resolve_uprobe("libc.so.6", "malloc@GLIBC_2.2.5")[1] == off
    # two versions at two places: a plain name is the default (@@) one
    old = [n for n in want if n.startswith("pthread_cond_wait@") and "@@" not in n]
    new = [n for n in want if n.startswith("pthread_cond_wait@@")]
    if old and new:
        assert want[old[0]] != want[new[0]]
        assert resolve_uprobe("libc.so.6", "pthread_cond_wait")[1] == want[new[0]]
        assert resolve_uprobe("libc.so.6", old[0])[1] == want[old[0]]
        assert resolve_uprobe("libc.so.6", new[0])[1] == want[new[0]]
    with pytest.raises(AttachError, match=r"no function 'malloc@GLIBC_9\.9'"):
        resolve_uprobe("libc.so.6", "malloc@GLIBC_9.9")


def test_library_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.exists(LIBC):
        pytest.skip(f"no {LIBC}")
    assert os.path.realpath(find_binary("libc.so.6")) == os.path.realpath(LIBC)
    shutil.copy(LIBC, tmp_path / "libc.so.6")
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/nonexistent:{tmp_path}")
    assert find_binary("libc.so.6") == str(tmp_path / "libc.so.6")  # LD_LIBRARY_PATH first
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_binary("bash") in ("/usr/bin/bash", "/usr/sbin/bash")  # then /usr/bin
    with pytest.raises(AttachError, match=r"cannot find 'libnothere\.so\.1'"):
        find_binary("libnothere.so.1")


def test_sleepable_sections_parse() -> None:
    spec = ObjectSpec.load(PROGS / "uprobe.bpf.o")
    d = spec.programs["on_entry_sleepable"].section_def
    assert d is not None and d.sleepable
    from corebpf.obj.sections import AttachKind, section_def

    for name in ("uprobe.s/bin:f", "uretprobe.s/bin:f+0x4", "uprobe/a/b:c", "uretprobe/x:y"):
        sd = section_def(name)
        assert sd is not None and sd.attach == AttachKind.UPROBE


def _bss(coll: Collection) -> dict[str, int]:
    spec = coll.obj
    data = coll.maps[next(n for n in coll.maps if n.endswith(".bss"))].read_data()
    syms = {s.name: s.value for s in spec.elf.symbols}
    return {n: struct.unpack_from("=q", data, syms[n])[0]
            for n in ("entry_hits", "entry_arg", "ret_hits", "ret_val", "sleepable_hits",
                      "cookie")}


@root_only
@pytest.mark.parametrize("kind", ["pie", "nopie"])
def test_uprobes_fire(built: dict[str, Path], kind: str) -> None:
    """Entry (argument, BPF cookie), return (value) and sleepable uprobes on the built
    program, filtered to the child's pid, through attach()'s BINARY:FUNC target."""
    exe = built[kind]
    child = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "ready\n"
        with load(PROGS / "uprobe.bpf.o") as coll:
            links = [
                attach_uprobe(coll.programs["on_entry"].fd.fd, str(exe), "target_func",
                              pid=child.pid, cookie=0x1234),
                attach(coll.programs["on_return"], target=f"{exe}:target_func",
                       pid=child.pid),
                attach(coll.programs["on_entry_sleepable"], target=f"{exe}:target_func",
                       pid=child.pid),
            ]
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == f"{41 + 1 + 2 + 3 + 4}\n"
            assert child.wait(timeout=10) == 0
            got = _bss(coll)
            for link in links:
                link.close()
        assert got == {"entry_hits": 1, "entry_arg": 20, "ret_hits": 1, "ret_val": 41,
                       "sleepable_hits": 1, "cookie": 0x1234}
    finally:
        child.kill()
        child.wait()
