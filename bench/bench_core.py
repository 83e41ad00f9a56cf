"""CO-RE benchmarks, corebpf next to its C peer in one run (issue #3).

1. Whole process: `corebpf core relocate OBJ --target BTF --json` of a libbpf-tools-sized
   object (about 20 relocations) against this machine's vmlinux BTF, next to
   `bpftool gen min_core_btf BTF OUT OBJ` on the same object and BTF (bpftool resolves
   every CO-RE relocation of the object against the BTF to decide what to keep), run
   alternately; with and without corebpf's persisted BTF index; what `import corebpf.cli`
   costs over a bare interpreter, and where the relocate process's imports go.
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

from bench._timing import (  # noqa: E402
    alternate,
    cell,
    corebpf_command,
    import_summary,
    import_times,
    load_note,
    python_version,
    ratio,
)
from bench.bench_btf import _update_markdown, markdown_table  # noqa: E402

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
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--markdown")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with corebpf installed (a clean venv gives real figures)")
    args = ap.parse_args()
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    args.object = args.object.resolve()
    corebpf = corebpf_command(args.python)
    relocate = ["core", "relocate", str(args.object), "--target", args.btf, "--json"]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "min.btf"
        # corebpf's cache of its own (others' test runs may clear ~/.cache meanwhile)
        warm = dict(os.environ, COREBPF_CACHE_DIR=str(Path(tmp) / "cache"))
        cold = dict(os.environ, COREBPF_NO_CACHE="1")
        times = alternate(
            {"bpftool": [bpftool, "gen", "min_core_btf", args.btf, str(out), str(args.object)],
             "warm": [*corebpf, *relocate], "cold": [*corebpf, *relocate],
             "bare": [args.python, "-c", "pass"],
             "cli": [args.python, "-c", "import corebpf.cli"]},
            args.runs, {"warm": warm, "cold": cold})
        script = corebpf[1:] if corebpf[0] == args.python else corebpf
        imports = import_summary(import_times([args.python, *script, *relocate], 7, warm))
    load = load_note(load_before)
    files = kernels()
    med, total, relos = per_kernel(args.object, files)
    theirs = times["bpftool"]
    cli, bare = times["cli"], times["bare"]
    cli_cost = (f"{statistics.median(cli) - statistics.median(bare):.0f} ms "
                f"(min {min(cli) - min(bare):.0f})")
    rows = [
        (f"`corebpf core relocate` ({relos} relocations) vs `bpftool gen min_core_btf`, "
         "whole process, this machine's vmlinux, with the persisted BTF index (every run "
         "after the first)", cell(times["warm"]), cell(theirs),
         ratio(times["warm"], theirs), "≤ 3x"),
        ("the same without a persisted index (`COREBPF_NO_CACHE=1`)", cell(times["cold"]),
         cell(theirs), ratio(times["cold"], theirs), "≤ 3x"),
        ("`import corebpf.cli` over a bare interpreter (`python -c pass`: "
         f"{cell(bare)})", cli_cost, "", "", ""),
        (f"one object against {len(files)} kernels in one process (load + relocate)",
         f"{med * 1e3:.0f} ms per kernel (median), {total:.1f} s total", "", "", ""),
    ]
    table = markdown_table(rows)
    shown = args.object.relative_to(ROOT) if args.object.is_relative_to(ROOT) else args.object
    note = (f"Object: `{shown}`; corebpf run as `{' '.join(Path(c).name for c in corebpf)}`. "
            f"{args.runs} alternating whole-process runs per command, median (min); "
            f"Python {python_version(args.python)}; {load}; {time.strftime('%Y-%m-%d')}.\n"
            f"Imports of the relocate process (min of 7 `-X importtime` runs): {imports}.\n")
    print(note)
    print(table)
    if args.markdown:
        _update_markdown(Path(args.markdown), "core", note + "\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
