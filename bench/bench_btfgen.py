"""BTFGen benchmark, corebpf next to a btfgen.sh-style bpftool loop in one run (issue #5).

Minimized BTF for three objects over 30+ real kernels: ../shared/btf-corpus (BTFHub
.btf.tar.xz), the project's Debian kernels (tests/data/btf) and more Debian 12 kernels
fetched here once with scripts/fetch_debian_btf.py into ~/.cache/corebpf/bench-kernels
(never committed). Both sides get the compressed files and two workers:

- corebpf: `corebpf gen min-btf --jobs 2 -o OUT --object ... FILES...`, one process with 2
  worker processes (corebpf.archive.parallel); it decompresses the files itself.
- the loop: per kernel, `tar xJf` (or `xz -dc`) then `bpftool gen min_core_btf IN OUT
  OBJ...`, two kernels at a time, as Tracee's and Inspektor Gadget's btfgen.sh do one at a
  time.

Reported: wall time of each (median of --runs) and the ratio, over all kernels and again
over the kernels bpftool can minimize (it gives up on some, e.g. on an ambiguous
relocation, where corebpf writes the BTF libbpf would need to report the same); output
bytes on the kernels both minimize; the dedup ratio (distinct outputs by sha256 /
kernels). --profile times corebpf's phases
(decompress, parse/index, minimize, write) on one core and prints a cProfile summary.

Run: python bench/bench_btfgen.py [--runs N] [--markdown docs/benchmarks.md] [--profile]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.bench_btf import _update_markdown, markdown_table  # noqa: E402

PROGS = ROOT / "tests" / "progs"
OBJECTS = [PROGS / "core_kinds.bpf.o", PROGS / "core_arrays.bpf.o", PROGS / "execsnoop.bpf.o"]
CORPUS = ROOT.parent / "shared" / "btf-corpus"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "corebpf" / \
    "bench-kernels"
#: Debian 12 kernels beyond tests/data/btf: older ABIs of both series and other flavours
EXTRA_DEBIAN = [
    "6.1.0-47-amd64", "6.1.0-50-amd64", "6.1.0-53-amd64", "6.1.0-54-amd64", "6.1.0-55-amd64",
    "6.1.0-50-cloud-amd64", "6.1.0-55-cloud-amd64", "6.12.107+deb12-amd64",
    "6.12.111+deb12-amd64", "6.12.113+deb12-amd64", "6.12.115+deb12-amd64",
    "6.12.117+deb12-cloud-amd64",
]


def fetch_extra(cache: Path) -> list[Path]:
    """The extra Debian kernels' BTF, fetched (apt-get download) on the first run only."""
    cache.mkdir(parents=True, exist_ok=True)
    files = []
    for release in EXTRA_DEBIAN:
        out = cache / f"{release}.btf.xz"
        if not out.exists():
            try:
                subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_debian_btf.py"),
                                "--out", str(cache), "--modules", "", "--budget", str(1 << 40),
                                f"linux-image-{release}-unsigned"], check=True)
            except subprocess.CalledProcessError:
                print(f"note: could not fetch {release}; going on without it", file=sys.stderr)
        if out.exists():
            files.append(out)
    return files


def kernels(cache: Path, fetch: bool) -> list[Path]:
    files = sorted(CORPUS.rglob("*.btf.tar.xz")) if CORPUS.is_dir() else []
    files += sorted((ROOT / "tests" / "data" / "btf").glob("*.btf.xz"))
    if fetch:
        files += fetch_extra(cache)
    else:
        files += sorted(cache.glob("*.btf.xz"))
    return files


def out_name(path: Path) -> str:
    return path.name.removesuffix(".tar.xz").removesuffix(".xz").removesuffix(".btf") + ".btf"


def run_corebpf(files: list[Path], objects: list[Path], out_dir: Path, jobs: int) -> float:
    """The corebpf side: ``corebpf gen min-btf`` in a fresh process (start-up, imports and
    the worker pool counted), the kernels given as files so that outputs are named as the
    loop names them."""
    cmd = [sys.executable, "-m", "corebpf", "gen", "min-btf", "-q", "--no-progress",
           "--jobs", str(jobs), "-o", str(out_dir)]
    for o in objects:
        cmd += ["--object", str(o)]
    cmd += [str(f) for f in files]
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=tempfile.gettempdir(), capture_output=True, text=True,
                       check=False)
    elapsed = time.perf_counter() - t
    if r.returncode not in (0, 1):
        raise SystemExit(f"corebpf gen min-btf failed:\n{r.stderr}")
    for line in r.stderr.splitlines():
        print(f"corebpf: {line}", file=sys.stderr)
    return elapsed


def loop_command(bpftool: str, btf: Path, objects: list[Path], work: Path, out: Path) -> str:
    """btfgen.sh's body for one kernel: unpack, then bpftool gen min_core_btf."""
    objs = " ".join(shlex.quote(str(o)) for o in objects)
    if btf.name.endswith(".tar.xz"):
        unpack = f"tar xJf {shlex.quote(str(btf))} -C {shlex.quote(str(work))}"
        raw = f"{shlex.quote(str(work))}/*.btf"
    else:
        raw = shlex.quote(str(work / out_name(btf)))
        unpack = f"xz -dc {shlex.quote(str(btf))} > {raw}"
    return (f"mkdir -p {shlex.quote(str(work))} && {unpack} && "
            f"{shlex.quote(bpftool)} gen min_core_btf {raw} {shlex.quote(str(out))} {objs} "
            f"&& rm -rf {shlex.quote(str(work))}")


def run_loop(bpftool: str, files: list[Path], objects: list[Path], out_dir: Path,
             scratch: Path, jobs: int) -> tuple[float, dict[Path, str]]:
    """Wall time, and each kernel bpftool failed on with its last line of stderr."""
    cmds = [loop_command(bpftool, f, objects, scratch / str(i), out_dir / out_name(f))
            for i, f in enumerate(files)]

    def one(cmd: str) -> str | None:
        r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=False)
        if r.returncode == 0:
            return None
        lines = r.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit {r.returncode}"

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, cmds))
    return time.perf_counter() - t, {f: e for f, e in zip(files, results, strict=True) if e}


def outputs(out_dir: Path, only: set[str] | None = None) -> tuple[int, int, int]:
    """Files (those named in ``only``), total bytes, distinct contents."""
    files = sorted(p for p in out_dir.iterdir() if p.is_file()
                   and (only is None or p.name in only))
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    return len(files), sum(p.stat().st_size for p in files), len(digests)


def profile(files: list[Path], objects: list[Path]) -> None:
    """corebpf's time per phase on one core, then where it goes by function."""
    import cProfile
    import pstats

    from corebpf.btf import Spec
    from corebpf.btf.files import unwrap
    from corebpf.core import relocate
    from corebpf.obj import ObjectSpec

    btfgen = importlib.import_module("corebpf.btfgen") \
        if importlib.util.find_spec("corebpf.btfgen") else None
    objs = [ObjectSpec.load(o) for o in objects]
    phases = dict.fromkeys(("read+decompress", "parse/index", "relocate (CO-RE engine)",
                            "minimize (btfgen, own relocation included)", "write"), 0.0)
    def one(f: Path, tmp: str) -> tuple[float, ...]:
        t0 = time.perf_counter()
        raw, source = unwrap(f.read_bytes(), str(f))
        t1 = time.perf_counter()
        spec = Spec(raw, source=source)
        spec.find_by_name("task_struct")
        t2 = time.perf_counter()
        for o in objs:
            relocate(o, spec)
        t3 = t4 = time.perf_counter()
        if btfgen is not None:
            fresh = Spec(raw, source=source)  # the minimizer's searches start cold
            t3 = time.perf_counter()
            data = btfgen.minimize(objs, fresh)
            t4 = time.perf_counter()
            Path(tmp, out_name(f)).write_bytes(data)
        t5 = time.perf_counter()
        return t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4

    prof = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:  # timed without the profiler, whose overhead falls on Python code
            for k, dt in zip(phases, one(f, tmp), strict=True):
                phases[k] += dt
        prof.enable()
        for f in files:
            one(f, tmp)
        prof.disable()
    print(f"\ncorebpf phases over {len(files)} kernels, one core, in-process:")
    for k, v in phases.items():
        print(f"  {k:<44} {v:7.2f} s  {1e3 * v / len(files):6.1f} ms/kernel")
    print()
    pstats.Stats(prof).sort_stats("tottime").print_stats(20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2, help="workers on each side")
    ap.add_argument("--cache", type=Path, default=CACHE, help="extra Debian kernels' BTF")
    ap.add_argument("--no-fetch", action="store_true", help="use only what the cache has")
    ap.add_argument("--object", dest="objects", type=Path, action="append",
                    help="BPF object (repeatable; default: core_kinds, core_arrays, execsnoop)")
    ap.add_argument("--markdown")
    ap.add_argument("--profile", action="store_true", help="corebpf's phases, then exit")
    args = ap.parse_args()
    objects = [o.resolve() for o in (args.objects or OBJECTS)]
    files = kernels(args.cache, not args.no_fetch)
    if args.profile:
        profile(files, objects)
        return 0
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    ours_t: list[float] = []
    theirs_t: list[float] = []
    both_t: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="corebpf-btfgen-") as tmp:
        ours_dir, theirs_dir, scratch = Path(tmp, "corebpf"), Path(tmp, "bpftool"), \
            Path(tmp, "scratch")
        failed: dict[Path, str] = {}
        for _ in range(args.runs):  # alternate, so that a busy moment hurts every side
            for d in (ours_dir, theirs_dir):
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir()
            ours_t.append(run_corebpf(files, objects, ours_dir, args.jobs))
            took, failed = run_loop(bpftool, files, objects, theirs_dir, scratch, args.jobs)
            theirs_t.append(took)
        ours_n, ours_bytes, ours_uniq = outputs(ours_dir)
        theirs_n, theirs_bytes, theirs_uniq = outputs(theirs_dir)
        common = {out_name(f) for f in files if f not in failed}
        _, ours_common_bytes, _ = outputs(ours_dir, common)
        handled = [f for f in files if f not in failed]
        if failed:  # the same race on the kernels bpftool can minimize
            for _ in range(args.runs):
                for d in (ours_dir, theirs_dir):
                    shutil.rmtree(d, ignore_errors=True)
                    d.mkdir()
                mine = run_corebpf(handled, objects, ours_dir, args.jobs)
                both_t.append((mine, run_loop(bpftool, handled, objects, theirs_dir,
                                              scratch, args.jobs)[0]))
    theirs, ours = statistics.median(theirs_t), statistics.median(ours_t)
    objs = ", ".join(o.name for o in objects)
    rows = [
        (f"minimized BTF for {len(objects)} objects over {len(files)} kernels "
         f"({args.jobs} workers each), wall time",
         f"{ours:.2f} s", f"{theirs:.2f} s", f"{ours / theirs:.2f}x", "< 1x"),
    ]
    if both_t:
        mine = statistics.median(t[0] for t in both_t)
        loop = statistics.median(t[1] for t in both_t)
        rows.append((f"the same over the {len(handled)} kernels bpftool minimizes "
                     f"(it fails on {len(failed)})", f"{mine:.2f} s", f"{loop:.2f} s",
                     f"{mine / loop:.2f}x", "< 1x"))
    rows += [
        ("outputs: files; total bytes on the kernels both minimize",
         f"{ours_n}; {ours_common_bytes} B", f"{theirs_n}; {theirs_bytes} B",
         f"{ours_common_bytes / theirs_bytes:.2f}x" if theirs_bytes else "", "≤ 1.1x"),
        ("dedup: distinct outputs (sha256) / kernels",
         f"{ours_uniq}/{ours_n} = {ours_uniq / max(ours_n, 1):.2f}",
         f"{theirs_uniq}/{theirs_n} = {theirs_uniq / max(theirs_n, 1):.2f}", "", ""),
    ]
    del ours_bytes
    from corebpf.archive.bundle import build_bundle
    from corebpf.archive.sources import entry_for

    with tempfile.TemporaryDirectory(prefix="corebpf-bundle-") as tmp:
        entries = [e for e in (entry_for(f, f.parents[3] if "btf-corpus" in str(f) else None)
                               for f in files) if e is not None]
        t = time.perf_counter()
        b = build_bundle(objects, entries, Path(tmp, "bundle.tar.xz"), jobs=args.jobs,
                         progress=False)
        took = time.perf_counter() - t
    rows.append(("`corebpf archive bundle` of the same (one file, content-addressed), "
                 "in-process", f"{took:.2f} s; {b.kernels} kernels -> {b.blobs} blobs "
                 f"(dedup {b.dedup_ratio:.2f}x); {b.raw_bytes} -> {b.stored_bytes} B "
                 f"-> {b.file_size} B xz", "", "", ""))
    table = markdown_table(rows)
    note = (f"Objects: {objs}. Kernels: {len(files)} (the BTF corpus, tests/data/btf, "
            f"Debian 12 kernels fetched into the cache). C peer: `tar xJf`/`xz -dc` then "
            f"`bpftool gen min_core_btf` per kernel, {args.jobs} at a time. corebpf: `corebpf gen "
            f"min-btf --jobs {args.jobs} FILES...`, one process with {args.jobs} workers, each "
            f"kernel read and parsed once for all objects. Medians of {args.runs} "
            f"alternating runs (corebpf {', '.join(f'{t:.2f}' for t in ours_t)} s; loop "
            f"{', '.join(f'{t:.2f}' for t in theirs_t)} s); Python "
            f"{sys.version.split()[0]}; {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}.\n")
    for f, e in failed.items():
        note += f"bpftool failed on {f.name}: {e}\n"
    print(note)
    print(table)
    if args.markdown:
        _update_markdown(Path(args.markdown), "btfgen", note + "\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
