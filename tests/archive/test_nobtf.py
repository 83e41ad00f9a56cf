"""A kernel without BTF, staged in a mount namespace (tests/nobtf.py): ``corebpf run --bundle``
relocates against the bundle's entry for this machine, loads, attaches and reports an exec;
a bundle without this machine fails with the keys looked for and the nearest entries."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.archive.bundle import Bundle, build_bundle
from corebpf.archive.sources import discover, normalize_arch
from tests.conftest import KERNEL_BTF, PROGS, ROOT, debian_files
from tests.nobtf import os_release_text, require, run_without_btf

EXECSNOOP = PROGS / "execsnoop.bpf.o"
RELEASE = os.uname().release
ARCH = normalize_arch(os.uname().machine)

#: runs inside the namespace: `corebpf run`, and once it is attached one exec of ours
_DRIVER = r"""
import json, subprocess, sys, tempfile
out = tempfile.TemporaryFile("w+")
p = subprocess.Popen(sys.argv[1:], stdout=out, stderr=subprocess.PIPE, text=True)
err = []
for line in p.stderr:
    err.append(line)
    if "attached" in line:
        break
child = subprocess.Popen(["/bin/true", "corebpf-nobtf"])
child.wait()
_, rest = p.communicate(timeout=60)
out.seek(0)
print(json.dumps({"rc": p.returncode, "child": child.pid, "stdout": out.read(),
                  "stderr": "".join(err) + rest}))
"""


def _tree(root: Path, with_here: bool) -> Path:
    """A BTFHub-layout archive: the Debian 12 kernels, and this kernel's own BTF filed as
    debian/12/<arch>/<uname -r>.btf (raw BTF, as an archive holds it)."""
    for deb in debian_files():
        dest = root / "debian" / "12" / "x86_64" / deb.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(deb, dest)
    if with_here:
        here = root / "debian" / "12" / ARCH / f"{RELEASE}.btf"
        here.parent.mkdir(parents=True, exist_ok=True)
        here.write_bytes(btf.load(KERNEL_BTF).raw)
    return root


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a bundle with this kernel as debian/12, one with the Debian kernels only)."""
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel has no /sys/kernel/btf/vmlinux to put in a bundle")
    base = tmp_path_factory.mktemp("nobtf")
    out = []
    for name, here in (("here", True), ("debian", False)):
        tree = _tree(base / name, here)
        path = base / f"{name}.tar.xz"
        report = build_bundle([EXECSNOOP], tree, path, jobs=2, progress=False)
        assert report.kernels == len(discover(tree)) and not report.skipped
        out.append(path)
    return out[0], out[1]


def _os_release(tmp_path: Path, distro: str = "debian", version: str = "12") -> Path:
    path = tmp_path / "os-release"
    path.write_text(os_release_text(distro, version))
    return path


def test_namespace_hides_the_kernels_btf(tmp_path: Path) -> None:
    """The staging itself: no BTF in sight, and the chosen os-release read."""
    require()
    r = run_without_btf(
        [sys.executable, "-c", "import os, json; from corebpf.archive.sources import "
         "machine_key; print(json.dumps([os.path.exists('/sys/kernel/btf/vmlinux'), "
         "machine_key()]))"], _os_release(tmp_path, "ubuntu", "20.04"), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    exists, key = json.loads(r.stdout)
    assert not exists
    assert key == ["ubuntu", "20.04", ARCH, RELEASE]


def test_run_with_a_bundle_on_a_kernel_without_btf(bundles: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    require()
    here, _ = bundles
    b = Bundle.open(here)
    assert b.lookup(distro="debian", version="12", arch=ARCH, release=RELEASE) is not None
    r = run_without_btf(
        [sys.executable, "-c", _DRIVER, sys.executable, "-m", "corebpf", "run", str(EXECSNOOP),
         "--bundle", str(here), "--duration", "2"], _os_release(tmp_path), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["rc"] == 0, res["stderr"]
    lines = [json.loads(line) for line in res["stdout"].splitlines()]
    assert lines and set(lines[-1]) == {"globals", "maps"}
    mine = [rec["event"] for rec in lines[:-1]
            if rec.get("map") == "events" and rec["event"]["pid"] == res["child"]]
    assert mine, f"no event for pid {res['child']} in {res['stdout'][-2000:]}"
    assert mine[0]["filename"] == "/bin/true"
    assert mine[0]["uid"] == os.getuid()


def test_run_with_a_bundle_that_lacks_this_machine(bundles: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    """The error names the keys looked for and the bundle's nearest kernels, without a
    traceback."""
    require()
    _, debian = bundles
    r = run_without_btf([sys.executable, "-m", "corebpf", "run", str(EXECSNOOP), "--bundle",
                         str(debian), "--duration", "1"], _os_release(tmp_path), cwd=ROOT)
    assert r.returncode != 0
    err = r.stderr
    assert "Traceback" not in err, err
    for part in ("distro=debian", "version=12", f"arch={ARCH}", f"release={RELEASE}",
                 "/sys/kernel/btf/vmlinux", f"/boot/vmlinux-{RELEASE}"):
        assert part in err, (part, err)
    if ARCH == "x86_64":
        assert "nearest entries: debian/12/x86_64/" in err, err
        # the closest release first (this kernel is newer than any Debian 12 one here)
        nearest = err.split("nearest entries: ")[1].split(";")[0].split(", ")
        assert nearest[0] == "debian/12/x86_64/6.12.117+deb12-amd64", nearest
