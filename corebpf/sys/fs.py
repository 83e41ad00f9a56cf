"""bpffs and tracefs: found in /proc/mounts, mounted when missing (as root)."""

from __future__ import annotations

import ctypes
import os

from .calls import libc

BPFFS = "/sys/fs/bpf"
TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def _mounts() -> list[tuple[str, str]]:
    try:
        with open("/proc/mounts") as f:
            return [(p[1], p[2]) for p in (line.split() for line in f) if len(p) >= 3]
    except OSError:
        return []


def _mount(fstype: str, target: str) -> None:
    os.makedirs(target, exist_ok=True)
    ret = libc().mount(fstype.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(0),
                       None)
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount -t {fstype} {target}: {os.strerror(err)}"
                      + (" (needs root)" if err == 1 else ""))


def ensure_bpffs(path: str = BPFFS) -> str:
    """A bpffs at ``path`` (mounting one there if nothing is mounted)."""
    for target, fstype in _mounts():
        if target == path and fstype == "bpf":
            return path
    parent_bpf = any(fstype == "bpf" and (path + "/").startswith(target + "/")
                     for target, fstype in _mounts())
    if parent_bpf:
        os.makedirs(path, exist_ok=True)
        return path
    _mount("bpf", path)
    return path


def ensure_tracefs() -> str:
    """The tracefs directory (mounting /sys/kernel/tracing if none is mounted)."""
    for target, fstype in _mounts():
        if fstype == "tracefs":
            return target
    _mount("tracefs", TRACEFS_CANDIDATES[0])
    return TRACEFS_CANDIDATES[0]


def cgroup2_root() -> str:
    """Where the cgroup v2 hierarchy is mounted (mounting one if there is none)."""
    for target, fstype in _mounts():
        if fstype == "cgroup2":
            return target
    path = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/cpu") else "/sys/fs/cgroup"
    _mount("cgroup2", path)
    return path
