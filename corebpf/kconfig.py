"""Kernel configuration and version, the values behind ``.kconfig`` externs."""

from __future__ import annotations

import os


def read_kconfig(path: str | None = None) -> dict[str, str]:
    """CONFIG_* values from /proc/config.gz or /boot/config-$(uname -r) (as libbpf reads
    them); an empty dict when neither exists."""
    candidates = [path] if path else ["/proc/config.gz", f"/boot/config-{os.uname().release}"]
    for p in candidates:
        if p is None or not os.path.exists(p):
            continue
        try:
            if p.endswith(".gz"):
                import gzip

                with gzip.open(p, "rt", errors="replace") as f:
                    text = f.read()
            else:
                with open(p, errors="replace") as f:
                    text = f.read()
        except OSError:
            continue
        import re

        config_line = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
        out = {}
        for line in text.splitlines():
            m = config_line.match(line.strip())
            if m:
                out[m.group(1)] = m.group(2)
        return out
    return {}


def kernel_version(release: str | None = None) -> int:
    """LINUX_KERNEL_VERSION: KERNEL_VERSION(a, b, c) of ``uname -r`` (c capped at 255)."""
    release = release or os.uname().release
    nums = []
    for part in release.split(".", 3)[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        nums.append(int(digits))
        if len(digits) != len(part):
            break
    if len(nums) < 2:
        return 0
    a, b, c = nums[0], nums[1], nums[2] if len(nums) > 2 else 0
    return (a << 16) + (b << 8) + min(c, 255)
