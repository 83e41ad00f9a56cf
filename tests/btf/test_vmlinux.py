"""corebpf.btf.vmlinux: the minimal ELF holding only .BTF that `corebpf btf install` writes.
Read back by corebpf, by libbpf 1.1's own btf__parse_elf (what btf__load_vmlinux_btf
uses on its vmlinux paths), by bpftool and by pahole; 64- and 32-bit classes, both byte
orders; the corebpf note found again, and never found in what is not one."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.btf.vmlinux import MACHINES, NOTE_SECTION, read_note, vmlinux_elf
from corebpf.elf import ElfFile
from corebpf.errors import BTFError
from tests.conftest import KERNEL_BTF, ROOT, debian_files, run_bpftool

HERE = Path(__file__).resolve().parent
BE_OBJECT = ROOT / "corebpf" / "tools" / "objects" / "execsnoop.bpfeb.o"


@functools.cache
def _parse_elf() -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None or not Path("/usr/include/bpf/btf.h").exists():
        pytest.skip("needs gcc and libbpf-dev")
    out = Path(tempfile.mkdtemp(prefix="corebpf-parse-elf-")) / "parse"
    subprocess.run([cc, "-O2", str(HERE / "btf_parse_elf.c"), "-lbpf", "-o", str(out)],
                   check=True, capture_output=True)
    return out


def _libbpf(path: Path) -> str:
    r = subprocess.run([str(_parse_elf()), str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def _kernel_raw() -> bytes:
    if KERNEL_BTF.exists():
        return btf.load(KERNEL_BTF).raw
    files = debian_files()
    if not files:
        pytest.skip("no kernel BTF here and no Debian BTF in tests/data")
    return btf.load(files[0]).raw


def _be_raw() -> bytes:
    return bytes(ElfFile(BE_OBJECT.read_bytes()).section_data(".BTF"))


def test_kernel_btf_round_trips_through_every_reader(tmp_path: Path) -> None:
    raw = _kernel_raw()
    path = tmp_path / "vmlinux"
    path.write_bytes(vmlinux_elf(raw, arch="x86_64", note={"format": "test"}))
    assert btf.load(path, index_cache=False).raw == raw
    spec = btf.from_bytes(raw)
    assert _libbpf(path) == f"types={len(spec.ids())} pointer_size=8 endianness=little"
    raw_file = tmp_path / "raw.btf"
    raw_file.write_bytes(raw)
    assert run_bpftool("btf", "dump", "file", str(path)) == \
        run_bpftool("btf", "dump", "file", str(raw_file))
    if shutil.which("pahole"):
        r = subprocess.run(["pahole", "-F", "btf", "-C", "list_head", str(path)],
                           capture_output=True, text=True, timeout=120)
        assert "struct list_head {" in r.stdout, r.stderr[-500:]


@pytest.mark.parametrize("arch", ["x86_64", "arm64", "arm", "x86"])
def test_class_and_machine_follow_the_architecture(tmp_path: Path, arch: str) -> None:
    """libbpf takes the pointer size from the ELF class."""
    raw = _be_raw()  # any small BTF
    data = vmlinux_elf(raw, arch=arch)
    elf = ElfFile(data)
    machine, is64 = MACHINES[arch]
    assert (elf.machine, elf.is64) == (machine, is64)
    path = tmp_path / "vmlinux"
    path.write_bytes(data)
    assert f"pointer_size={8 if is64 else 4}" in _libbpf(path)


def test_big_endian_btf_gets_a_big_endian_elf(tmp_path: Path) -> None:
    raw = _be_raw()
    assert raw[:2] == b"\xeb\x9f"
    path = tmp_path / "vmlinux"
    path.write_bytes(vmlinux_elf(raw, arch="s390x", note={"a": [1, "b"]}))
    elf = ElfFile(path.read_bytes())
    assert elf.endian == ">" and bytes(elf.section_data(".BTF")) == raw
    assert read_note(path.read_bytes()) == {"a": [1, "b"]}
    assert "endianness=big" in _libbpf(path)
    assert run_bpftool("btf", "dump", "file", str(path)) == \
        run_bpftool("btf", "dump", "file", str(BE_OBJECT))


def test_the_note_is_a_real_elf_note(tmp_path: Path) -> None:
    """readelf -n shows it with its owner: the marker is standard ELF, not a private
    layout."""
    if shutil.which("readelf") is None:
        pytest.skip("binutils' readelf is not installed")
    path = tmp_path / "vmlinux"
    path.write_bytes(vmlinux_elf(btf.load(BE_OBJECT).raw, note={"format": "x"}))
    out = subprocess.run(["readelf", "-W", "-S", "-n", str(path)], capture_output=True,
                         text=True, check=True).stdout
    assert NOTE_SECTION in out and "corebpf" in out and ".BTF" in out


def test_no_note_where_there_is_none() -> None:
    raw = btf.load(BE_OBJECT).raw
    assert read_note(vmlinux_elf(raw)) is None
    assert read_note(raw) is None
    assert read_note(BE_OBJECT.read_bytes()) is None
    assert read_note(b"\x7fELF" + b"\0" * 10) is None  # corrupt ELF: None, no error
    data = bytearray(vmlinux_elf(raw, note={"k": "v"}))
    desc = data.rindex(b'{"k":"v"}')
    data[desc] = ord("[")  # not JSON any more
    assert read_note(bytes(data)) is None


def test_bad_input_is_a_btf_error() -> None:
    with pytest.raises(BTFError, match="not raw BTF"):
        vmlinux_elf(b"\x7fELF....")
    with pytest.raises(BTFError, match="no ELF machine known for architecture 'vax'"):
        vmlinux_elf(btf.load(BE_OBJECT).raw, arch="vax")
