"""`corebpf btf from-dwarf` next to `pahole --btf_encode_detached` on the same binaries (issue #11).

Whole processes, wall time (median of --runs) and peak RSS of each, and whether the two
agree on every named struct, union, enum and typedef (tests/dwarf/test_convert.py's
comparison). Give binaries built with -g, e.g. a single-file C library:

    gcc -g -O2 -fPIC -shared -o libminiaudio.so miniaudio.c -lm
    python bench/bench_dwarf.py libminiaudio.so [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def run(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{cmd[0]} failed: {err}")
    return wall, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("binaries", nargs="+", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    import corebpf.btf as btf
    from tests.dwarf.test_convert import named

    corebpf = str(Path(sys.executable).with_name("corebpf"))
    print("| binary | pahole | corebpf | ratio | peak RSS pahole / corebpf | named types agree |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for binary in args.binaries:
            p_out, c_out = Path(tmp, "p.btf"), Path(tmp, "c.btf")
            p = [run(["pahole", f"--btf_encode_detached={p_out}", str(binary)])
                 for _ in range(args.runs)]
            c = [run([corebpf, "btf", "from-dwarf", str(binary), "-o", str(c_out)])
                 for _ in range(args.runs)]
            pt, ct = statistics.median(w for w, _ in p), statistics.median(w for w, _ in c)
            theirs, ours = named(btf.load(p_out)), named(btf.load(c_out))
            agree = sum(1 for k in theirs if ours.get(k) == theirs[k])
            print(f"| {binary.name} | {pt:.3f} s | {ct:.3f} s | {ct / pt:.0f}x | "
                  f"{max(r for _, r in p) // 1024} / {max(r for _, r in c) // 1024} MiB | "
                  f"{agree} of {len(theirs)} |")


if __name__ == "__main__":
    main()
