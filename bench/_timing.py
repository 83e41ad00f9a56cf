"""Whole-process timing shared by the bench scripts: commands run alternately (corebpf and
its C peer see the same moment of a shared machine), min and median reported, the load
average said, and ``-X importtime`` summed up."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def corebpf_command(python: str) -> list[str]:
    """The ``corebpf`` entry point installed beside ``python`` (what a user runs), else
    ``python -m corebpf``."""
    exe = Path(python).with_name("corebpf")
    return [str(exe)] if exe.exists() else [python, "-m", "corebpf"]


def alternate(cmds: dict[str, list[str]], runs: int, envs: dict[str, dict[str, str]] | None
              = None, warmup: int = 1) -> dict[str, list[float]]:
    """Wall ms of each command, run in turn (A, B, C, A, B, C, ...) from a neutral
    directory (an installed corebpf's byte-compiled modules, not this checkout's), after
    ``warmup`` uncounted rounds (page cache, persisted indexes)."""
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for n in range(warmup + runs):
        for key, cmd in cmds.items():
            env = (envs or {}).get(key)
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env,
                           cwd=tempfile.gettempdir())
            if n >= warmup:
                times[key].append((time.perf_counter() - t) * 1e3)
    return times


def cell(ms: list[float]) -> str:
    return f"{statistics.median(ms):.0f} ms (min {min(ms):.0f})"


def ratio(ours: list[float], theirs: list[float]) -> str:
    return (f"{statistics.median(ours) / statistics.median(theirs):.2f}x "
            f"(min {min(ours) / min(theirs):.2f}x)")


def load_note(before: tuple[float, float, float]) -> str:
    after = os.getloadavg()
    return (f"load average {before[0]:.2f} before, {after[0]:.2f} after "
            f"({os.cpu_count()} cores)")


def import_times(cmd: list[str], runs: int, env: dict[str, str] | None = None
                 ) -> list[tuple[int, str, int, int]]:
    """``-X importtime`` of ``cmd`` (a python command line): (depth, module, self µs,
    cumulative µs) in import order, each the minimum over ``runs``."""
    best: dict[str, list[int]] = {}
    order: list[tuple[int, str]] = []
    line_re = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for _ in range(runs):
        err = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], check=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=tempfile.gettempdir()).stderr
        for line in err.splitlines():
            m = line_re.match(line)
            if m is None:
                continue
            own, cum, name = int(m[1]), int(m[2]), m[4]
            if name not in best:
                order.append(((len(m[3]) - 1) // 2, name))
                best[name] = [own, cum]
            else:
                best[name] = [min(best[name][0], own), min(best[name][1], cum)]
    return [(depth, name, *best[name]) for depth, name in order]  # type: ignore[misc]


def import_summary(rows: list[tuple[int, str, int, int]], top: int = 8) -> str:
    """Where the import time goes: the total, corebpf's and the standard library's own
    time, and the modules that cost most themselves."""
    total = sum(cum for depth, _, _, cum in rows if depth == 0)
    ours = sum(own for _, name, own, _ in rows if name.split(".")[0] == "corebpf")
    biggest = sorted(((own, name) for _, name, own, _ in rows), reverse=True)[:top]
    return (f"{total / 1e3:.1f} ms in {len(rows)} modules: corebpf's own "
            f"{ours / 1e3:.1f} ms, the standard library's {(total - ours) / 1e3:.1f} ms (the "
            "interpreter's own start-up included); "
            "costliest by themselves: "
            + ", ".join(f"{name} {own / 1e3:.1f}" for own, name in biggest))


def python_version(python: str) -> str:
    if python == sys.executable:
        return sys.version.split()[0]
    return subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                          check=True, capture_output=True, text=True).stdout.strip()
