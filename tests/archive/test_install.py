"""`corebpf btf install` / `uninstall` (corebpf.archive.install): this machine's BTF as a
vmlinux ELF where libbpf looks, written atomically, corebpf's own files marked, others
never replaced or removed without force.

The proof is the issue's: in a mount namespace that hides /sys/kernel/btf and every
vmlinux path (tests/nobtf.py), Debian's unmodified libbpf-tools runqlat (C, libbpf 1.1)
fails, then runs and prints its histogram once `corebpf btf install` has written
/boot/vmlinux-$(uname -r), from a copy of the kernel's BTF and from a bundle built for
runqlat's own BPF object (taken out of the binary)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.archive.bundle import VMLINUX_PATHS, NoBTFError, build_bundle
from corebpf.archive.install import (
    INSTALL_FORMAT,
    InstallError,
    default_path,
    install_btf,
    read_marker,
    search_paths,
    uninstall_btf,
)
from corebpf.archive.sources import normalize_arch
from corebpf.btf.vmlinux import vmlinux_elf
from corebpf.cli import main
from corebpf.elf import ElfFile
from tests.conftest import KERNEL_BTF, PROGS, ROOT, debian_files
from tests.nobtf import os_release_text, require, run_without_btf

RELEASE = os.uname().release
ARCH = normalize_arch(os.uname().machine)
KEY = ("debian", "12", ARCH, RELEASE)
RUNQLAT = Path("/usr/sbin/runqlat")
NO_KERNEL_BTF = "/nonexistent/corebpf-test/vmlinux"


@pytest.fixture(scope="module")
def kernel_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this kernel's BTF (made before any namespace hides it)."""
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel has no /sys/kernel/btf/vmlinux to copy")
    path = tmp_path_factory.mktemp("kbtf") / f"{RELEASE}.btf"
    path.write_bytes(btf.load(KERNEL_BTF).raw)
    return path


def _install(src: Path | None, path: Path, **kw: object) -> object:
    kw.setdefault("distro", "debian")
    kw.setdefault("version", "12")
    return install_btf(src, path=path, **kw)  # type: ignore[arg-type]


# -- the library ---------------------------------------------------------------------------


def test_default_path_is_libbpfs_first_vmlinux_path() -> None:
    assert default_path() == f"/boot/vmlinux-{RELEASE}"
    assert search_paths("5.4.0-1") == [p.format(r="5.4.0-1") for p in VMLINUX_PATHS]


def test_install_round_trip(kernel_raw: Path, tmp_path: Path) -> None:
    target = tmp_path / "vmlinux"
    r = _install(kernel_raw, target)
    assert r.path == str(target) and r.kind == "file" and r.source == str(kernel_raw)
    assert r.key == KEY and not r.minimized and r.replaced is None
    # not a libbpf path: said so, not refused
    assert any("not one of libbpf's vmlinux paths" in w for w in r.warnings)
    assert btf.load(target, index_cache=False).raw == kernel_raw.read_bytes()
    assert target.stat().st_mode & 0o777 == 0o644
    note = read_marker(target)
    assert note is not None and note["format"] == INSTALL_FORMAT
    assert note["key"] == list(KEY) and note["source"] == str(kernel_raw)
    assert note["btf_sha256"] == r.btf_sha256 and note["minimized"] is False
    assert [p.name for p in tmp_path.iterdir()] == ["vmlinux"]  # no temp file left


def test_a_second_install_replaces_corebpfs_own_file(kernel_raw: Path, tmp_path: Path) -> None:
    target = tmp_path / "vmlinux"
    _install(kernel_raw, target)
    r = _install(kernel_raw, target)
    assert r.replaced == "corebpf"


@pytest.mark.parametrize("what", ["vmlinux", "bytes", "symlink"])
def test_refuses_to_overwrite_a_file_that_is_not_corebpfs(kernel_raw: Path, tmp_path: Path,
                                                          what: str) -> None:
    target = tmp_path / "vmlinux"
    other = tmp_path / "other"
    other.write_bytes(b"precious")
    if what == "vmlinux":  # a real vmlinux-like ELF with .BTF, but no corebpf note
        target.write_bytes(vmlinux_elf(kernel_raw.read_bytes()))
    elif what == "bytes":
        target.write_bytes(b"precious")
    else:
        target.symlink_to(other)
    before = target.read_bytes()
    with pytest.raises(InstallError, match=r"refusing to replace it \(--force"):
        _install(kernel_raw, target)
    assert target.read_bytes() == before and other.read_bytes() == b"precious"
    r = _install(kernel_raw, target, force=True)
    assert r.replaced is not None and r.replaced != "corebpf"
    assert not target.is_symlink() and read_marker(target) is not None
    assert other.read_bytes() == b"precious"  # a link is replaced, never written through


def test_uninstall(kernel_raw: Path, tmp_path: Path) -> None:
    target = tmp_path / "vmlinux"
    _install(kernel_raw, target)
    path, note = uninstall_btf(target)
    assert path == str(target) and not target.exists()
    assert note is not None and note["source"] == str(kernel_raw)
    with pytest.raises(InstallError, match="nothing installed"):
        uninstall_btf(target)
    target.write_bytes(vmlinux_elf(kernel_raw.read_bytes()))  # not corebpf's
    with pytest.raises(InstallError, match=r"refusing to remove it \(--force"):
        uninstall_btf(target)
    assert target.exists()
    assert uninstall_btf(target, force=True) == (str(target), None)
    assert not target.exists()


def test_nothing_is_written_for_input_that_is_not_btf(tmp_path: Path) -> None:
    bad = tmp_path / "bad.btf"
    bad.write_bytes(b"\x9f\xeb\x01\x00" + b"\xff" * 40)  # BTF magic, nonsense header
    target = tmp_path / "out" / "vmlinux"
    target.parent.mkdir()
    with pytest.raises(InstallError):
        _install(bad, target, kernel_btf=NO_KERNEL_BTF)
    assert list(target.parent.iterdir()) == []
    with pytest.raises(InstallError, match="no such file"):
        _install(tmp_path / "missing", target)
    with pytest.raises(InstallError, match=r"directory .* does not exist"):
        _install(bad, tmp_path / "nodir" / "vmlinux")


_FSIZE = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
from corebpf.archive.install import install_btf
from corebpf.errors import Error
try:
    install_btf(sys.argv[1], path=sys.argv[2], distro="debian", version="12")
except Error as e:
    print(e)
    sys.exit(3)
"""


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(kernel_raw: Path,
                                                             tmp_path: Path) -> None:
    """Atomicity with a real failure: the write runs out of file size (RLIMIT_FSIZE, a
    megabyte for 5 MB of BTF) half way; the earlier install is intact, nothing else is
    left in the directory."""
    target = tmp_path / "vmlinux"
    small = tmp_path / "small.btf"
    small.write_bytes(btf.load(PROGS / "execsnoop.bpf.o").raw)
    _install(small, target, kernel_btf=NO_KERNEL_BTF)
    before = target.read_bytes()
    r = subprocess.run([sys.executable, "-c", _FSIZE, str(kernel_raw), str(target)],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 3, r.stderr
    assert f"{target}: cannot write" in r.stdout
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.btf", "vmlinux"]


def test_btf_that_is_not_this_kernels(tmp_path: Path) -> None:
    """Where the kernel shows its own BTF, other BTF is refused without force (libbpf
    would never read the file); where it shows none, a file is trusted as --btf is."""
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel has no /sys/kernel/btf/vmlinux to compare with")
    files = debian_files()
    if not files:
        pytest.skip("no Debian BTF in tests/data")
    target = tmp_path / "vmlinux"
    with pytest.raises(InstallError, match="not this kernel's BTF: it differs from "
                       "/sys/kernel/btf/vmlinux"):
        _install(files[0], target)
    assert not target.exists()
    r = _install(files[0], target, force=True)
    assert any("differs from this kernel's own" in w for w in r.warnings)
    r = _install(files[0], target, kernel_btf=NO_KERNEL_BTF)
    assert not any("differs" in w for w in r.warnings)
    assert btf.load(target, index_cache=False).raw == btf.load(files[0]).raw


@pytest.fixture(scope="module")
def here_bundle(kernel_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle for execsnoop.bpf.o holding this kernel as debian/12."""
    base = tmp_path_factory.mktemp("bundle")
    dest = base / "tree" / "debian" / "12" / ARCH / f"{RELEASE}.btf"
    dest.parent.mkdir(parents=True)
    shutil.copyfile(kernel_raw, dest)
    out = base / "here.tar.xz"
    build_bundle([PROGS / "execsnoop.bpf.o"], base / "tree", out, jobs=1, progress=False)
    return out


def test_install_from_a_bundle(here_bundle: Path, tmp_path: Path) -> None:
    target = tmp_path / "vmlinux"
    r = _install(here_bundle, target, kernel_btf=NO_KERNEL_BTF)
    assert r.kind == "bundle" and r.minimized
    assert f"bundle {here_bundle} entry debian/12/{ARCH}/{RELEASE}" in r.source
    assert any("minimized" in w for w in r.warnings)
    spec = btf.load(target, index_cache=False)
    assert spec.find_by_name("task_struct")  # what execsnoop relocates against
    with pytest.raises(NoBTFError, match=f"no BTF for ubuntu/20.04/{ARCH}/5.4.0-1"):
        _install(here_bundle, target, distro="ubuntu", version="20.04", release="5.4.0-1",
                 kernel_btf=NO_KERNEL_BTF)


def test_cli(kernel_raw: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "vmlinux"
    assert main(["btf", "install", "--from", str(kernel_raw), "--path", str(target)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{target}: BTF of ") and f"from {kernel_raw}" in out
    assert "warning:" in err and "not one of libbpf's vmlinux paths" in err
    target.write_bytes(b"someone else's")
    assert main(["btf", "install", "--from", str(kernel_raw), "--path", str(target)]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["btf", "install", "--from", str(kernel_raw), "--path", str(target),
                 "--force"]) == 0
    assert "replacing a file corebpf did not write" in capsys.readouterr().out
    assert main(["btf", "uninstall", "--path", str(target)]) == 0
    assert capsys.readouterr().out == f"removed {target} (BTF from {kernel_raw})\n"
    assert main(["btf", "uninstall", "--path", str(target)]) == 1
    assert "nothing installed" in capsys.readouterr().err


# -- the proof: unmodified libbpf-tools on a kernel without (visible) BTF ------------------


def embedded_bpf_object(binary: Path) -> bytes:
    """The BPF ELF object a libbpf skeleton embeds (bpftool gen skeleton's byte array):
    the ELF header with e_machine EM_BPF, up to its section header table's end."""
    data = binary.read_bytes()
    at = data.find(b"\x7fELF\x02\x01\x01")
    while at >= 0:
        if struct.unpack_from("<H", data, at + 18)[0] == 247:
            shoff, = struct.unpack_from("<Q", data, at + 40)
            shentsize, shnum = struct.unpack_from("<HH", data, at + 58)
            obj = data[at:at + shoff + shentsize * shnum]
            ElfFile(obj)  # a sound ELF
            return obj
        at = data.find(b"\x7fELF\x02\x01\x01", at + 1)
    raise AssertionError(f"{binary}: no embedded BPF object")


#: runs inside the namespace: runqlat before, `btf install`, runqlat after, uninstall
_DRIVER = r"""
import json, os, subprocess, sys
def run(argv, timeout=60):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return {"rc": p.returncode, "out": p.stdout, "err": p.stderr}
runqlat = ["timeout", "-s", "INT", "20", sys.argv[1], "1", "1"]
steps = {"before": run(runqlat),
         "install": run([sys.executable, "-m", "corebpf", "btf", "install", *sys.argv[2:]]),
         "boot": sorted(os.listdir("/boot"))}
steps["after"] = run(runqlat)
steps["uninstall"] = run([sys.executable, "-m", "corebpf", "btf", "uninstall"])
steps["boot_after"] = sorted(os.listdir("/boot"))
print(json.dumps(steps))
"""


def run_runqlat_proof(tmp_path: Path, install_args: list[str],
                      env: dict[str, str] | None = None) -> dict[str, object]:
    """The steps of :data:`_DRIVER` in the no-BTF namespace (os-release debian 12, a
    /boot that holds a kernel's BTF), each one checked."""
    require()
    if not os.access(RUNQLAT, os.X_OK):
        pytest.skip("Debian's libbpf-tools is not installed (/usr/sbin/runqlat)")
    osr = tmp_path / "os-release"
    osr.write_text(os_release_text("debian", "12"))
    r = run_without_btf([sys.executable, "-c", _DRIVER, str(RUNQLAT), *install_args], osr,
                        cwd=ROOT, tmpfs_size="64m", timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    steps = json.loads(r.stdout)
    before, inst, after = steps["before"], steps["install"], steps["after"]
    # libbpf 1.1 finds no BTF anywhere: no sysfs file, no vmlinux on its paths
    assert before["rc"] != 0 and "vmlinux BTF is not found" in before["err"], before
    assert inst["rc"] == 0, inst["err"]
    assert inst["out"].startswith(f"/boot/vmlinux-{RELEASE}: BTF of debian/12/{ARCH}/"
                                  f"{RELEASE} from ")
    assert steps["boot"] == [f"vmlinux-{RELEASE}"]
    assert after["rc"] == 0, after["err"]
    assert "Tracing run queue latency" in after["out"]
    assert "usecs" in after["out"] and "distribution" in after["out"]
    rows = [line for line in after["out"].splitlines() if "->" in line]
    assert rows and sum(int(line.split(":")[1].split()[0]) for line in rows) > 0
    assert steps["uninstall"]["rc"] == 0 and steps["boot_after"] == []
    return steps


def test_runqlat_runs_on_what_btf_install_wrote(kernel_raw: Path, tmp_path: Path) -> None:
    steps = run_runqlat_proof(tmp_path, ["--from", str(kernel_raw)])
    print(steps["after"]["out"])  # type: ignore[index]


def test_runqlat_runs_on_a_bundle_built_for_its_own_object(kernel_raw: Path,
                                                           tmp_path: Path) -> None:
    """The bundle holds this kernel's BTF minimized for runqlat's embedded object: libbpf
    relocates against it (its tp_btf probe finds no btf_trace_ typedef in minimized BTF
    and runqlat takes its raw_tp programs, as on an old kernel)."""
    if not os.access(RUNQLAT, os.R_OK):
        pytest.skip("Debian's libbpf-tools is not installed (/usr/sbin/runqlat)")
    obj = tmp_path / "runqlat.bpf.o"
    obj.write_bytes(embedded_bpf_object(RUNQLAT))
    dest = tmp_path / "tree" / "debian" / "12" / ARCH / f"{RELEASE}.btf"
    dest.parent.mkdir(parents=True)
    shutil.copyfile(kernel_raw, dest)
    bundle = tmp_path / "runqlat-btf.tar.xz"
    report = build_bundle([obj], tmp_path / "tree", bundle, jobs=1, progress=False)
    assert report.kernels == 1 and not report.skipped
    steps = run_runqlat_proof(tmp_path, ["--from", str(bundle)])
    assert "minimized" in steps["install"]["err"]  # type: ignore[index]
