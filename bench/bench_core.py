"""CO-RE benchmarks, corebpf next to its C peer in one run (issue #3).

1. Whole process: `corebpf core relocate OBJ --target BTF --json` of a libbpf-tools-sized
   object (about 20 relocations) against this machine's vmlinux BTF, next to
   `bpftool gen min_core_btf BTF OUT OBJ` on the same object and BTF (bpftool resolves
   every CO-RE relocation of the object against the BTF to decide what to keep).
2. One object relocated against every kernel BTF available (this machine, the project's
   Debian kernels, ../shared/btf-corpus) in one process: time per kernel, parse included.

Run: python bench/bench_core.py [--object OBJ] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.bench_btf import _update_markdown, markdown_table, wall  # noqa: E402

KERNEL_BTF = "/sys/kernel/btf/vmlinux"
DEFAULT_OBJECT = ROOT / "tests" / "progs" / "tools_sized.bpf.o"


def kernels() -> list[Path]:
    files = [Path(KERNEL_BTF)] if os.path.exists(KERNEL_BTF) else []
    files += sorted((ROOT / "tests" / "data" / "btf").glob("*.btf.xz"))
    corpus = ROOT.parent / "shared" / "btf-corpus"
    if corpus.is_dir():
        files += sorted(corpus.rglob("*.btf.tar.xz"))
    return files


def per_kernel(obj: Path, files: list[Path]) -> tuple[float, float, int]:
    """Median and total seconds per kernel (load + relocate) in this process."""
    import corebpf.btf as btf
    from corebpf.core import relocate
    from corebpf.obj import ObjectSpec

    spec = ObjectSpec.load(obj)
    times = []
    relos = 0
    for f in files:
        t = time.perf_counter()
        reports, _ = relocate(spec, btf.load(f, index_cache=False, index_names=True))
        times.append(time.perf_counter() - t)
        relos = len(reports)
    return statistics.median(times), sum(times), relos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--object", type=Path, default=DEFAULT_OBJECT)
    ap.add_argument("--btf", default=KERNEL_BTF)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--markdown")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with corebpf installed (a clean venv gives real figures)")
    args = ap.parse_args()
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    args.object = args.object.resolve()
    cmd = [args.python, "-m", "corebpf", "core", "relocate", str(args.object), "--target",
           args.btf, "--json"]
    ours = wall(cmd, args.runs, dict(os.environ, COREBPF_NO_CACHE="1"))
    wall(cmd, 1)  # make sure the persisted index exists
    ours_warm = wall(cmd, args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "min.btf"
        theirs = wall([bpftool, "gen", "min_core_btf", args.btf, str(out), str(args.object)],
                      args.runs)
    files = kernels()
    med, total, relos = per_kernel(args.object, files)
    rows = [
        (f"`corebpf core relocate` ({relos} relocations) vs `bpftool gen min_core_btf`, "
         "whole process, this machine's vmlinux, no persisted index",
         f"{ours:.0f} ms", f"{theirs:.0f} ms", f"{ours / theirs:.1f}x", "≤ 3x"),
        ("the same with the persisted BTF index (every run after the first)",
         f"{ours_warm:.0f} ms", f"{theirs:.0f} ms", f"{ours_warm / theirs:.1f}x", "≤ 3x"),
        (f"one object against {len(files)} kernels in one process (load + relocate)",
         f"{med * 1e3:.0f} ms per kernel (median), {total:.1f} s total", "", "", ""),
    ]
    table = markdown_table(rows)
    shown = args.object.relative_to(ROOT) if args.object.is_relative_to(ROOT) else args.object
    note = (f"Object: `{shown}`. "
            f"Medians of {args.runs} whole-process runs; Python {sys.version.split()[0]}; "
            f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}.\n")
    print(note)
    print(table)
    if args.markdown:
        _update_markdown(Path(args.markdown), "core", note + "\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
