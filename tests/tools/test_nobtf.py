"""The tools on a kernel without BTF: in a mount namespace that hides /sys/kernel/btf (and
every vmlinux libbpf would look for) and shows a chosen /etc/os-release, a tool relocates
against its embedded bundle's entry for the machine, or says which keys it looked for."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from corebpf import btf
from corebpf.archive.bundle import build_bundle
from corebpf.tools.base import BUNDLE

from ..conftest import KERNEL_BTF, ROOT, debian_files
from ..nobtf import os_release_text, require, run_without_btf

RELEASE = os.uname().release
ARCH = os.uname().machine
OBJECTS = ROOT / "corebpf" / "tools" / "objects"


@pytest.fixture(scope="module")
def bundle_with_this_kernel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tools' bundle as scripts/build_tools_bundle.py builds it, with this kernel's
    BTF filed as debian/12/<arch>/<uname -r>: the machine the namespace pretends to be."""
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel has no /sys/kernel/btf/vmlinux to put in a bundle")
    root = tmp_path_factory.mktemp("tools-nobtf")
    for deb in debian_files():
        dest = root / "debian" / "12" / "x86_64" / deb.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(deb, dest)
    here = root / "debian" / "12" / ARCH / f"{RELEASE}.btf"
    here.parent.mkdir(parents=True, exist_ok=True)
    here.write_bytes(btf.load(KERNEL_BTF).raw)
    objects = sorted(str(p) for p in OBJECTS.glob("*.bpfel.o") if p.name.count(".") == 2)
    out = root / "bundle.tar.xz"
    report = build_bundle(objects, root, out, jobs=2, progress=False)
    assert not report.skipped
    return out


def _os_release(tmp_path: Path) -> Path:
    p = tmp_path / "os-release"
    p.write_text(os_release_text("debian", "12"))
    return p


def test_a_tool_runs_on_its_embedded_bundle(bundle_with_this_kernel: Path,
                                            tmp_path: Path) -> None:
    """execsnoop with no kernel BTF in sight: the bundle at the package's own path (a
    bundle that knows this machine, mounted there) gives the CO-RE target, and exec rows
    come out."""
    require()
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    script = (f'mount --bind {bundle_with_this_kernel} {BUNDLE} && exec "$@"')
    result: dict[str, subprocess.CompletedProcess[str]] = {}

    def run() -> None:
        result["r"] = run_without_btf(
            ["sh", "-c", script, "sh", sys.executable, "-m", "corebpf", "tool", "execsnoop",
             "-v", "--duration", "4"], _os_release(tmp_path), cwd=ROOT)

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 6
    while t.is_alive() and time.monotonic() < deadline:
        subprocess.run(["/bin/echo", tag], stdout=subprocess.DEVNULL)
        time.sleep(0.2)
    t.join(60)
    r = result["r"]
    assert r.returncode == 0, r.stderr
    assert f"entry debian/12/{ARCH}/{RELEASE}" in r.stderr
    assert "(bundle)" in r.stderr
    rows = [ln for ln in r.stdout.splitlines() if tag in ln]
    assert rows and rows[0].split()[0] == "echo" and rows[0].endswith(f"/bin/echo {tag} ")


def test_no_entry_names_the_keys(tmp_path: Path) -> None:
    """The shipped bundle has no entry for this machine: the error says which keys were
    looked for and which kernels are nearest, exit 1, no traceback."""
    require()
    if not os.path.exists(BUNDLE):
        pytest.skip("the tools' bundle is not built (scripts/build_tools_bundle.py)")
    r = run_without_btf([sys.executable, "-m", "corebpf", "tool", "execsnoop",
                         "--duration", "1"], _os_release(tmp_path), cwd=ROOT)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for part in ("distro=debian", "version=12", f"arch={ARCH}", f"release={RELEASE}",
                 "nearest entries:"):
        assert part in r.stderr, (part, r.stderr)
