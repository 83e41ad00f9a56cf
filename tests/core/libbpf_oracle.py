"""libbpf 1.1's CO-RE decisions, read from its debug log (tests/core/core_oracle.c)."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

_RELO = re.compile(r"libbpf: prog '([^']+)': relo #(\d+): (.*)")
_PATCH = re.compile(r"patched insn #(\d+) \(([^)]+)\) (imm64|imm|off|mem_sz) (\d+) -> (\d+)")


class OracleUnavailable(Exception):
    pass


@functools.cache
def harness() -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not Path("/usr/include/bpf/libbpf.h").exists():
        raise OracleUnavailable("needs a C compiler and libbpf-dev (apt-get install libbpf-dev)")
    out = Path(tempfile.mkdtemp(prefix="corebpf-oracle-")) / "core_oracle"
    subprocess.run([cc, "-O2", str(HERE / "core_oracle.c"), "-lbpf", "-o", str(out)],
                   check=True, capture_output=True)
    return out


def decisions(obj: Path, target_raw_btf: Path) -> dict[tuple[str, int], tuple[str, object]]:
    """(program, relo index) -> ("ok", target value) | ("poison", None) | ("error", text).

    libbpf stops at the first failing relocation: later ones are absent."""
    log = subprocess.run([str(harness()), str(obj), str(target_raw_btf)], capture_output=True,
                         text=True, check=False).stdout
    out: dict[tuple[str, int], tuple[str, object]] = {}
    for line in log.splitlines():
        m = _RELO.match(line)
        if not m:
            continue
        key, rest = (m.group(1), int(m.group(2))), m.group(3)
        p = _PATCH.match(rest)
        if p:
            if p.group(3) != "mem_sz":
                out[key] = ("ok", int(p.group(5)))
        elif "substituting insn" in rest:
            out[key] = ("poison", None)
        elif any(w in rest for w in ("ambiguity", "failed", "error", "unexpected",
                                     "doesn't support")):
            out.setdefault(key, ("error", rest))
    return out
