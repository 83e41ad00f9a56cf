"""Scaling of archive jobs (issue #12): `corebpf check` over the archive on 1 and 2 Dask
workers against `--jobs 1` and `--jobs 2`, in one run.

The archive: ../shared/btf-corpus (BTFHub .btf.tar.xz) and the project's Debian kernels
(tests/data/btf), copied into a temporary BTFHub-layout tree. Each configuration runs the
whole command as a user does, in a fresh process, with the same objects:

- `--jobs 1`: one process; `--jobs 2`: a pool of 2 worker processes started by the run;
- `--scheduler`: a dask.distributed LocalCluster of 1 or 2 worker processes of one thread
  each (as `dask worker --nthreads 1` runs them), started once before the runs and kept
  (a cluster's workers outlive one job): its start-up is reported apart, and the first
  round (the workers import corebpf) apart from the median. The configurations
  alternate within each round, so that the shared machine's other load falls on all.

Every configuration must print the same JSON (checked). Reported: median wall time of
--runs, speed-up against --jobs 1, median CPU time (the command and its pool, plus the
Dask workers' own: what the job costs whatever else the machine runs), and the peak RSS
of a Dask worker.

Run: python bench/bench_scaling.py [--runs N] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.bench_btf import _update_markdown  # noqa: E402

PROGS = ROOT / "tests" / "progs"
TOOLS = ROOT / "corebpf" / "tools" / "objects"
#: the ready tools' objects (the generic little-endian builds) and two CO-RE test programs
OBJECTS = [*sorted(p for p in TOOLS.glob("*.bpfel.o") if p.name.count(".") == 2),
           PROGS / "core_kinds.bpf.o", PROGS / "core_arrays.bpf.o"]
CORPUS = ROOT.parent / "shared" / "btf-corpus"
DEBIAN = ROOT / "tests" / "data" / "btf"


def build_archive(root: Path) -> int:
    """The corpus and the Debian kernels in one BTFHub-layout tree; the kernel count."""
    if CORPUS.is_dir():
        shutil.copytree(CORPUS, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md"))
    for deb in sorted(DEBIAN.glob("*.btf.xz")):
        dest = root / "debian" / "12" / "x86_64" / deb.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(deb, dest)
    return sum(1 for p in root.rglob("*") if p.is_file())


def _cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    """User + system CPU time of this process (on a worker: the worker's) or, with
    RUSAGE_CHILDREN, of the children waited for (a command and its process pool)."""
    u = resource.getrusage(who)
    return u.ru_utime + u.ru_stime


def check(python: str, archive: Path, where: list[str], client: Any = None
          ) -> tuple[float, float, str]:
    """One whole `corebpf check --json` run: (seconds, CPU seconds of the command, its
    pool and the cluster's workers, sha256 of its output)."""
    cmd = [python, "-m", "corebpf", "check", *map(str, OBJECTS), "--archive", str(archive),
           "--json", "--no-progress", *where]
    cpu = _cpu_seconds(resource.RUSAGE_CHILDREN)
    if client is not None:
        cpu += sum(client.run(_cpu_seconds).values())
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, check=False)
    took = time.perf_counter() - start
    used = _cpu_seconds(resource.RUSAGE_CHILDREN)
    if client is not None:
        used += sum(client.run(_cpu_seconds).values())
    if r.returncode not in (0, 1) or not r.stdout:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}\n{r.stderr.decode()}")
    return took, used - cpu, hashlib.sha256(r.stdout).hexdigest()


def _peak_rss_kib() -> int:
    """On a worker: its peak resident set (the largest kernel it parsed sets it)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter that runs corebpf (default: this one)")
    ap.add_argument("--markdown", type=Path, help="update this file's scaling section")
    args = ap.parse_args()
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("bench_scaling needs the dask extra: pip install 'corebpf[dask]'",
              file=sys.stderr)
        return 2

    # name, options, cluster start, client
    configs: list[tuple[str, list[str], float | None, Any]] = [
        ("`--jobs 1`", ["--jobs", "1"], None, None), ("`--jobs 2`", ["--jobs", "2"], None, None)]
    load_before = os.getloadavg()[0]
    digests: dict[str, set[str]] = {}
    times: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    first: dict[str, float] = {}
    rss = 0
    with tempfile.TemporaryDirectory(prefix="corebpf-scaling-") as tmp, \
            contextlib.ExitStack() as stack:
        archive = Path(tmp) / "archive"
        kernels = build_archive(archive)
        clients = []
        for workers in (1, 2):
            start = time.perf_counter()
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, processes=True, threads_per_worker=1,
                dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"}))
            client = stack.enter_context(Client(cluster.scheduler_address,
                                                set_as_default=False))
            client.wait_for_workers(workers)
            clients.append(client)
            configs.append((f"`--scheduler`, {workers} Dask worker{'s' * (workers > 1)}",
                            ["--scheduler", cluster.scheduler_address],
                            time.perf_counter() - start, client))
        # a first round apart (the clusters' workers import corebpf), then the runs,
        # the configurations alternating so that the machine's other load falls on all
        for round_ in range(args.runs + 1):
            for name, where, _, client in configs:
                took, cpu, digest = check(args.python, archive, where, client)
                digests.setdefault(digest, set()).add(name)
                if round_ == 0:
                    first[name] = took
                else:
                    times.setdefault(name, []).append(took)
                    cpus.setdefault(name, []).append(cpu)
            print(f"round {round_}: " + ", ".join(
                f"{n} {(first[n] if round_ == 0 else times[n][-1]):.2f} s"
                for n, _, _, _ in configs), flush=True)
        rss = max(v for c in clients for v in c.run(_peak_rss_kib).values())
    if len(digests) != 1:
        raise SystemExit(f"the configurations disagree: {sorted(digests.values())}")
    results = [(name, statistics.median(times[name]), statistics.median(cpus[name]),
                first[name] if start else None, start) for name, _, start, _ in configs]

    base = results[0][1]
    rows = ["| configuration | median wall time | speed-up vs `--jobs 1` | CPU time (command, "
            "pool, workers) | first run | cluster start |",
            "| --- | --- | --- | --- | --- | --- |"]
    for name, median, cpu, first_run, started in results:
        rows.append(f"| {name} | {median:.2f} s | {base / median:.2f}x | {cpu:.2f} s | "
                    f"{'-' if first_run is None else f'{first_run:.2f} s'} | "
                    f"{'-' if started is None else f'{started:.2f} s'} |")
    table = "\n".join(rows) + "\n"
    load = os.getloadavg()[0]
    body = (f"`corebpf check --json` of {len(OBJECTS)} objects (the tools' "
            f"{', '.join(o.name.split('.')[0] for o in OBJECTS[:-2])}; core_kinds, "
            f"core_arrays) over {kernels} "
            f"kernels (../shared/btf-corpus and tests/data/btf), whole process each run; "
            f"Dask: a LocalCluster of worker processes with one thread each, kept across "
            f"runs. Medians of {args.runs} runs; every run printed the same JSON. Peak RSS "
            f"of a Dask worker: {rss // 1024} MiB. Python "
            f"{platform.python_version()}; {os.cpu_count()} CPUs (shared with other work: "
            f"load average {load_before:.1f} at the start, {load:.1f} at the end); "
            f"{date.today().isoformat()}.\n\n" + table)
    print()
    print(body)
    if args.markdown:
        _update_markdown(args.markdown, "scaling", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
