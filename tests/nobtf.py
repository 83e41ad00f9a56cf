"""Run a command as if on a kernel without BTF: in a private mount namespace where
/sys/kernel/btf is an empty tmpfs, the directories libbpf searches for a vmlinux are empty,
and /etc/os-release is a file of the test's choosing (so that the machine key a bundle is
searched by is known). ``uname -r`` cannot be faked: bundles built for these tests carry
this kernel's real release.

The kernel itself is untouched: BPF still loads, only the BTF files are out of sight, which
is what a distro kernel built without CONFIG_DEBUG_INFO_BTF looks like to user space.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from corebpf.archive.bundle import VMLINUX_PATHS

#: hidden with an empty tmpfs when present (the parents of every libbpf vmlinux path)
_HIDDEN = ("/sys/kernel/btf", "/boot", "/lib/modules/{r}", "/usr/lib/modules/{r}",
           "/usr/lib/debug")

_SCRIPT = """set -e
for d in "$@"; do
  [ "$d" = -- ] && break
  shift
  if [ -d "$d" ]; then
    mount -t tmpfs -o "size=$COREBPF_NOBTF_TMPFS_SIZE,mode=0755" corebpf-nobtf "$d"
  fi
done
shift
mount --bind "$COREBPF_NOBTF_OS_RELEASE" /etc/os-release
exec "$@"
"""


def unavailable() -> str | None:
    """Why the harness cannot run here (one reason), or None."""
    if os.geteuid() != 0:
        return "hiding /sys/kernel/btf in a mount namespace needs root"
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return "unshare(1) and mount(8) (util-linux) are not installed"
    return None


def require() -> None:
    """Skip the calling test when the harness cannot run here."""
    why = unavailable()
    if why is not None:
        pytest.skip(why)


def os_release_text(distro: str, version: str) -> str:
    return f'ID={distro}\nVERSION_ID="{version}"\nNAME="corebpf no-BTF test"\n'


def run_without_btf(argv: Sequence[str], os_release: str | Path, *,
                    env: Mapping[str, str] | None = None, timeout: float = 60,
                    cwd: str | Path | None = None, tmpfs_size: str = "64k"
                    ) -> subprocess.CompletedProcess[str]:
    """``argv`` in the no-BTF namespace, with /etc/os-release replaced by the file
    ``os_release`` (write one with :func:`os_release_text`); output captured as text.
    ``tmpfs_size`` bounds each hiding tmpfs (``mount -o size=``): a test that writes a
    vmlinux into /boot there needs megabytes."""
    release = os.uname().release
    hidden = [d.format(r=release) for d in _HIDDEN]
    # every place select_core_btf (and libbpf) looks must be under a hidden directory
    for template in VMLINUX_PATHS:
        path = template.format(r=release)
        assert any(path.startswith(h + "/") for h in hidden), path
    full_env = dict(os.environ if env is None else env,
                    COREBPF_NOBTF_OS_RELEASE=str(os_release),
                    COREBPF_NOBTF_TMPFS_SIZE=tmpfs_size)
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SCRIPT,
         "corebpf-nobtf", *hidden, "--", *argv],
        env=full_env, capture_output=True, text=True, timeout=timeout, check=False,
        cwd=cwd)


__all__ = ["os_release_text", "require", "run_without_btf", "unavailable"]
