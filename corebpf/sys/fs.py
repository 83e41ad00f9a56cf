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


def parse_cpu_list(text: str) -> list[int]:
    """CPU ids from the kernel's list format ("0-3,5,7-8")."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def cpu_ids(kind: str) -> list[int]:
    """/sys/devices/system/cpu/{possible,online} as a list of CPU ids."""
    with open(f"/sys/devices/system/cpu/{kind}") as f:
        return parse_cpu_list(f.read())


def possible_cpu_count() -> int:
    """How many CPUs per-CPU maps and perf event arrays hold a slot for: the highest
    possible CPU id plus one, holes included."""
    try:
        ids = cpu_ids("possible")
    except OSError:
        return os.cpu_count() or 1
    return max(ids) + 1 if ids else (os.cpu_count() or 1)
