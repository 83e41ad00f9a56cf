"""BTF benchmarks, corebpf next to its C peers in one run (issue #2).

1. Open and index a BTF file and find a type by name, in-process: corebpf cold (no
   persisted index) and warm (persisted index) next to libbpf's btf__parse +
   btf__find_by_name_kind (bench/btf_open.c, built here against Debian's libbpf-dev).
2. `corebpf btf dump FILE --format c|raw`, whole process, next to bpftool's same command.
3. Peak memory of an indexed vmlinux (tracemalloc peak and RSS growth in a fresh process).

Run: python bench/bench_btf.py [--runs N] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KERNEL_BTF = "/sys/kernel/btf/vmlinux"


def build_c_timer() -> Path:
    out = Path(tempfile.gettempdir()) / "corebpf-bench-btf_open"
    src = HERE / "btf_open.c"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["cc", "-O2", str(src), "-lbpf", "-o", str(out)], check=True)
    return out


def libbpf_open(path: str, name: str, runs: int) -> tuple[float, float]:
    out = subprocess.run([str(build_c_timer()), path, name, str(runs)], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[1]), float(out[2])


_INPROC = """
import os, sys, time, statistics
sys.path.insert(0, {root!r})
import corebpf.btf as btf
path, name, runs, cache = {path!r}, {name!r}, {runs}, {cache}
if cache:
    btf.load(path, index_cache=True)  # make sure the persisted index exists
times = []
for _ in range(runs):
    t = time.perf_counter()
    spec = btf.load(path, index_cache=cache)
    tid = spec.find(name, btf.Kind.STRUCT)
    times.append((time.perf_counter() - t) * 1e3)
print(statistics.median(times), min(times))
"""


def corebpf_open(path: str, name: str, runs: int, cache: bool) -> tuple[float, float]:
    code = _INPROC.format(root=str(ROOT), path=path, name=name, runs=runs, cache=cache)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    return float(out[0]), float(out[1])


def wall(cmd: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median wall ms; run from a neutral directory so that an installed corebpf (with its
    byte-compiled modules) is what runs, not this checkout's sources."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env,
                       cwd=tempfile.gettempdir())
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


_MEMORY = """
import resource, sys, tracemalloc
sys.path.insert(0, {root!r})
import corebpf.btf as btf
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
spec = btf.load({path!r}, index_cache=False)
spec.find("task_struct", btf.Kind.STRUCT)
cur, peak = tracemalloc.get_traced_memory()
tracemalloc.stop()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak, (rss - base) * 1024, cur)
"""


def memory(path: str) -> tuple[int, int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY.format(root=str(ROOT), path=path)],
        check=True, capture_output=True, text=True,
    ).stdout.split()
    return int(out[0]), int(out[1]), int(out[2])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--btf", default=KERNEL_BTF)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--dump-runs", type=int, default=5)
    ap.add_argument("--markdown", help="write the results table into this file")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with corebpf installed (a clean venv gives real figures)")
    args = ap.parse_args()
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    size = os.path.getsize(args.btf) if not args.btf.startswith("/sys/") else len(
        Path(args.btf).read_bytes())

    rows: list[tuple[str, str, str, str, str]] = []
    c_med, _c_min = libbpf_open(args.btf, "task_struct", args.runs)
    cold_med, _cold_min = corebpf_open(args.btf, "task_struct", args.runs, cache=False)
    warm_med, _warm_min = corebpf_open(args.btf, "task_struct", args.runs, cache=True)
    rows.append(("open + index + find `task_struct`, cold (no persisted index)",
                 f"{cold_med:.1f} ms", f"{c_med:.1f} ms", f"{cold_med / c_med:.1f}x", "≤ 10x"))
    rows.append(("open + find `task_struct`, warm (persisted index)",
                 f"{warm_med:.1f} ms", f"{c_med:.1f} ms", f"{warm_med / c_med:.1f}x", "≤ 3x"))

    env = dict(os.environ, COREBPF_NO_CACHE="")
    formats = ["raw"]
    if (ROOT / "corebpf" / "btf" / "format_c.py").exists():
        formats.insert(0, "c")
    for fmt in formats:
        ours = wall([args.python, "-m", "corebpf", "btf", "dump", args.btf, "--format", fmt],
                    args.dump_runs, env)
        peer_cmd = [bpftool, "btf", "dump", "file", args.btf] + (["format", "c"] if fmt == "c"
                                                                   else [])
        theirs = wall(peer_cmd, args.dump_runs)
        rows.append((f"`corebpf btf dump --format {fmt}` vs `bpftool btf dump file"
                     f"{' format c' if fmt == 'c' else ''}` (whole process)",
                     f"{ours:.0f} ms", f"{theirs:.0f} ms", f"{ours / theirs:.1f}x", "≤ 2x"))

    peak, rss, _kept = memory(args.btf)
    rows.append(("peak memory of an indexed vmlinux (tracemalloc peak)",
                 f"{peak / 2**20:.1f} MiB", f"file {size / 2**20:.1f} MiB",
                 f"{peak / size:.2f}x file", "≤ 3x file"))
    rows.append(("RSS growth of a fresh process opening it",
                 f"{rss / 2**20:.1f} MiB", f"file {size / 2**20:.1f} MiB",
                 f"{rss / size:.2f}x file", ""))

    table = markdown_table(rows)
    py = sys.version.split()[0]
    note = (f"BTF: `{args.btf}` ({size / 2**20:.1f} MiB). Medians of {args.runs} in-process "
            f"runs and {args.dump_runs} whole-process runs; Python {py}; "
            f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}.\n")
    print(note)
    print(table)
    if args.markdown:
        _update_markdown(Path(args.markdown), "btf", note + "\n" + table)
    return 0


def markdown_table(rows: list[tuple[str, str, str, str, str]]) -> str:
    """The side-by-side table every bench script prints and writes."""
    head = ("| benchmark | corebpf | C peer | ratio | target |\n"
            "| --- | --- | --- | --- | --- |\n")
    return head + "".join(f"| {' | '.join(r)} |\n" for r in rows)


def _update_markdown(path: Path, key: str, body: str) -> None:
    """Replace the block between this benchmark's markers, keeping the rest of the file."""
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{body}{end}"
    if start in text and end in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    raise SystemExit(main())
