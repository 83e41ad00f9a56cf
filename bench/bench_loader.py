"""Loader benchmark (issue #4): a fresh process that opens, relocates, loads, attaches
and closes an execsnoop-sized object, corebpf next to the same object driven by a libbpf
C skeleton (bpftool gen skeleton + Debian's libbpf), in one run. Wall time and peak RSS.

Run: python bench/bench_loader.py [--runs N] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.bench_btf import _update_markdown, markdown_table  # noqa: E402

OBJECT = ROOT / "tests" / "progs" / "execsnoop.bpf.o"
PY = """
from corebpf.loader import load
from corebpf.links import attach
coll = load({obj!r})
links = [attach(p) for p in coll.programs.values()]
for link in links:
    link.close()
coll.close()
"""


def build_skeleton(tmp: Path) -> Path:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    obj = tmp / "execsnoop.bpf.o"
    shutil.copy(OBJECT, obj)
    skel = subprocess.run([bpftool, "gen", "skeleton", str(obj), "name", "execsnoop_bpf"],
                          check=True, capture_output=True, text=True).stdout
    (tmp / "skel.h").write_text(skel)
    exe = tmp / "skel_main"
    subprocess.run(["cc", "-O2", "-I", str(tmp), str(HERE / "skel_main.c"), "-lbpf", "-lelf",
                    "-lz", "-o", str(exe)], check=True)
    return exe


def measure(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall ms and max peak RSS (MiB) of ``cmd`` over ``runs`` fresh processes."""
    times, rss = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=tempfile.gettempdir())
        times.append((time.perf_counter() - t) * 1e3)
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rss.append(max(after, before) / 1024)
    return statistics.median(times), max(rss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=11)
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with corebpf installed (a clean venv gives real figures)")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_skeleton(Path(tmp))
        c_ms, c_rss = measure([str(exe)], args.runs)
    # ru_maxrss of children is a high-water mark across all children: measure ours after C
    # in a separate interpreter so the C figure cannot hide ours
    code = PY.format(obj=str(OBJECT))
    py_ms, _ = measure([args.python, "-c", code], args.runs)
    rss_probe = subprocess.run(
        [args.python, "-c", code + "\nimport resource\n"
         "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"],
        check=True, capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout.split()[-1]
    py_rss = int(rss_probe) / 1024
    rows = [
        ("open + relocate + load + attach + close, execsnoop-sized object, fresh process",
         f"{py_ms:.0f} ms", f"{c_ms:.0f} ms", f"{py_ms / c_ms:.2f}x", "≤ 1.5x"),
        ("peak RSS of that process", f"{py_rss:.1f} MiB", f"{c_rss:.1f} MiB", "",
         "≤ 40 MB"),
    ]
    table = markdown_table(rows)
    note = (f"Object: `tests/progs/execsnoop.bpf.o`; C peer: bpftool gen skeleton + libbpf "
            f"1.1. Medians of {args.runs} runs; Python {sys.version.split()[0]} "
            f"(`{args.python}`); {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}.\n")
    print(note)
    print(table)
    if args.markdown:
        _update_markdown(Path(args.markdown), "loader", note + "\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
