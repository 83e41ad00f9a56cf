"""The BPF links one process holds, from its fdinfo: which links a tool made, even while
other tests attach their own."""

from __future__ import annotations

import os


def links_of(pid: int) -> set[int]:
    out = set()
    base = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(base):
        try:
            with open(f"{base}/{fd}") as f:
                for line in f:
                    if line.startswith("link_id:"):
                        out.add(int(line.split()[1]))
        except OSError:
            continue
    return out
