"""Kernel configuration and version, the values behind ``.kconfig`` externs."""

from __future__ import annotations

import os
import re

_CONFIG_LINE = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")


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
        out = {}
        for line in text.splitlines():
            m = _CONFIG_LINE.match(line.strip())
            if m:
                out[m.group(1)] = m.group(2)
        return out
    return {}


def kernel_version(release: str | None = None) -> int:
    """LINUX_KERNEL_VERSION: KERNEL_VERSION(a, b, c) of ``uname -r`` (c capped at 255)."""
    release = release or os.uname().release
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not m:
        return 0
    a, b, c = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    return (a << 16) + (b << 8) + min(c, 255)
