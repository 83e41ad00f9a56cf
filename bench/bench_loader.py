"""Loader benchmark (issues #4, #13): a fresh process that opens, relocates, loads,
attaches and closes an execsnoop-sized object, corebpf (a script calling load and attach,
and `corebpf run OBJ --duration 0`) next to the same object driven by a libbpf C skeleton
(bpftool gen skeleton + Debian's libbpf), run alternately. Wall time and peak RSS.

Both sides' close waits for the kernel: detaching a perf-event link waits out an RCU
tasks-trace grace period (60-120 ms here, synchronize_rcu_tasks_trace in
perf_event_detach_bpf_prog), the larger part of either side's time.

Run: python bench/bench_loader.py [--runs N] [--markdown docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench._timing import (  # noqa: E402
    cell,
    corebpf_command,
    load_note,
    python_version,
    ratio,
)
from bench.bench_btf import _update_markdown, markdown_table  # noqa: E402

OBJECT = ROOT / "tests" / "progs" / "execsnoop.bpf.o"
PY = """
import sys, time
from corebpf.loader import load
from corebpf.links import attach
coll = load({obj!r})
links = [attach(p) for p in coll.programs.values()]
sys.stderr.write("attached " + repr(time.monotonic()) + "\\n")
for link in links:
    link.close()
coll.close()
sys.stderr.write("closed " + repr(time.monotonic()) + "\\n")
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


def phases(cmds: dict[str, list[str]], runs: int, env: dict[str, str]
           ) -> dict[str, dict[str, list[float]]]:
    """Alternating runs of each command, split at the stamps it writes on stderr: from
    spawn until attached, attached until closed (both sides' close waits out the
    kernel's grace period), closed until the process is reaped; and the whole."""
    out: dict[str, dict[str, list[float]]] = {
        k: {"whole": [], "attached": [], "close": [], "exit": []} for k in cmds}
    for n in range(runs + 1):  # one warm-up round (page cache, persisted BTF index)
        for key, cmd in cmds.items():
            t0 = time.monotonic()
            err = subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, env=env,
                                 cwd=tempfile.gettempdir()).stderr
            t3 = time.monotonic()
            if not n:
                continue
            stamps = dict(line.split() for line in err.splitlines()
                          if line.startswith(("attached ", "closed ")))
            t1, t2 = float(stamps.get("attached", "nan")), float(stamps.get("closed", "nan"))
            for what, ms in (("whole", t3 - t0), ("attached", t1 - t0), ("close", t2 - t1),
                             ("exit", t3 - t2)):
                out[key][what].append(ms * 1e3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=31)
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with corebpf installed (a clean venv gives real figures)")
    ap.add_argument("--markdown")
    args = ap.parse_args()
    load_before = os.getloadavg()
    code = PY.format(obj=str(OBJECT))
    corebpf = corebpf_command(args.python)
    run_cmd = [*corebpf, "run", str(OBJECT), "--duration", "0"]
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_skeleton(Path(tmp))
        # corebpf's cache of its own (others' test runs may clear ~/.cache meanwhile)
        env = dict(os.environ, COREBPF_CACHE_DIR=str(Path(tmp) / "cache"))
        got = phases({"C": [str(exe)], "py": [args.python, "-c", code], "run": run_cmd},
                     args.runs, env)
        # peak RSS: each in a process of its own, so that neither hides the other
        c_rss = _peak_rss([str(exe)], env)
        py_rss = _peak_rss([args.python, "-c", code], env)
        run_rss = _peak_rss(run_cmd, env)
    load = load_note(load_before)
    c, py = got["C"], got["py"]
    rows = [
        ("open + relocate + load + attach + close, execsnoop-sized object, fresh process "
         "(a Python script calling load and attach)", cell(py["whole"]), cell(c["whole"]),
         ratio(py["whole"], c["whole"]), "≤ 1.3x"),
        ("of which: from spawn until attached", cell(py["attached"]), cell(c["attached"]),
         ratio(py["attached"], c["attached"]), ""),
        ("of which: close (links, programs, maps; the kernel's grace period)",
         cell(py["close"]), cell(c["close"]), ratio(py["close"], c["close"]), ""),
        ("of which: after close until the process is reaped", cell(py["exit"]),
         cell(c["exit"]), "", ""),
        ("`corebpf run OBJ --duration 0` (the same, with the command line), fresh process",
         cell(got["run"]["whole"]), cell(c["whole"]), ratio(got["run"]["whole"], c["whole"]),
         ""),
        ("peak RSS of those processes (script; corebpf run)",
         f"{py_rss:.1f} MiB; {run_rss:.1f} MiB", f"{c_rss:.1f} MiB", "", "≤ 40 MB"),
    ]
    table = markdown_table(rows)
    note = (f"Object: `tests/progs/execsnoop.bpf.o`; C peer: bpftool gen skeleton + libbpf "
            f"1.1 (open, load, attach, destroy). {args.runs} alternating runs per command, "
            f"median (min); each process's wall time split where it wrote CLOCK_MONOTONIC "
            f"(attached, closed); Python {python_version(args.python)} (`{args.python}`); "
            f"{load}; {time.strftime('%Y-%m-%d')}.\n")
    print(note)
    print(table)
    if args.markdown:
        _update_markdown(Path(args.markdown), "loader", note + "\n" + table)
    return 0


def _peak_rss(cmd: list[str], env: dict[str, str]) -> float:
    """Peak RSS (MiB) of one run of ``cmd``, read by a wrapper that waits for it alone."""
    probe = ("import resource, subprocess, sys\n"
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True,
                         text=True, env=env, cwd=tempfile.gettempdir()).stdout
    return int(out.split()[-1]) / 1024


if __name__ == "__main__":
    raise SystemExit(main())
