"""Every shipped tool object, checked before shipping against every real kernel we have
(the BTFHub-layout corpus, Debian's kernels, this one): no relocation fails anywhere, so
each loads wherever a libbpf build would; the relocations that are poisoned on some
kernels are exactly the ones a bpf_core_field_exists / per-arch guard skips, listed here
and in docs/tools.md."""

from __future__ import annotations

from pathlib import Path

from corebpf.archive.check import check_archive
from corebpf.archive.sources import KernelEntry, discover, normalize_arch

from ..conftest import CORPUS, KERNEL_BTF, ROOT, debian_files

OBJECTS = ROOT / "corebpf" / "tools" / "objects"

#: (object, program, what is missing): each guarded in the BPF C by a CO-RE existence
#: check, so the poisoned instruction is never reached on that kernel
GUARDED = {
    # bashreadline's arch-less object reads the return value through whichever pt_regs
    # flavor the kernel has (bpf_core_type_exists on pt_regs___x86, ___arm64, ...)
    ("bashreadline.bpfel.o", "printret", "struct pt_regs___x86 has no field ax"),
    ("bashreadline.bpfel.o", "printret", "struct pt_regs___arm64 has no field regs[0]"),
    ("bashreadline.bpfel.o", "printret", "struct pt_regs___ppc has no field gpr[3]"),
    ("bashreadline.bpfel.o", "printret", "struct pt_regs___riscv has no field a0"),
    ("bashreadline.bpfel.o", "printret", "struct pt_regs___s390 has no field gprs[2]"),
    # the disk of a request: rq->q->disk from 5.16 (request_queue.disk), rq->rq_disk before
    *(("biolatency.bpfel.o", f"block_rq_{ev}_{variant}", missing)
      for ev in ("insert", "issue", "complete") for variant in ("btf", "raw")
      for missing in ("struct request_queue___x has no field disk",
                      "struct request___x has no field rq_disk")),
    # task_struct->__state replaced ->state in 5.14
    *(("runqlat.bpfel.o", f"sched_switch_{variant}", missing) for variant in ("btf", "raw")
      for missing in ("struct task_struct___x has no field __state",
                      "struct task_struct___o has no field state")),
}


def _kernels(tmp: Path) -> list[KernelEntry]:
    entries = list(discover(CORPUS)) if CORPUS.is_dir() else []
    for deb in debian_files():
        entries.append(KernelEntry(str(deb), "debian", "12", "x86_64", deb.name))
    if KERNEL_BTF.exists():
        import os

        entries.append(KernelEntry(str(KERNEL_BTF), "local", "", os.uname().machine,
                                   os.uname().release))
    return entries


def test_every_tool_object_resolves_on_every_kernel(tmp_path: Path) -> None:
    kernels = _kernels(tmp_path)
    assert kernels
    common = sorted(str(p) for p in OBJECTS.glob("*.bpfel.o") if p.name.count(".") == 2)
    groups: list[tuple[list[str], list[KernelEntry]]] = [(common, kernels)]
    for arch_tag, arch in (("x86", "x86_64"), ("arm64", "arm64")):
        objs = sorted(str(p) for p in OBJECTS.glob(f"*.{arch_tag}.bpfel.o"))
        mine = [k for k in kernels if normalize_arch(k.arch) == arch]
        if objs and mine:
            groups.append((objs, mine))
    poisoned: set[tuple[str, str, str]] = set()
    checked = 0
    for objs, ks in groups:
        report = check_archive(objs, ks, jobs=2, progress=False)
        for row in report.kernels:
            assert row.error is None, (row.kernel, row.error)
            for r in row.relocations:
                checked += 1
                assert r.result != "failed", (row.kernel, r.object, r.program, r.message)
                if r.result == "poisoned":
                    poisoned.add((Path(r.object).name, r.program, r.message))
    assert checked > 1000
    assert poisoned <= GUARDED, poisoned - GUARDED


def test_shipped_bundle_is_up_to_date(tmp_path: Path) -> None:
    """The bundle in the package is what scripts/build_tools_bundle.py makes from today's
    objects (deterministic: same inputs, same bytes), so no object ships without its BTF."""
    import subprocess
    import sys

    import pytest

    if not CORPUS.is_dir():
        pytest.skip("../shared/btf-corpus is absent: the shipped bundle was built with it")
    out = tmp_path / "bundle.tar.xz"
    r = subprocess.run([sys.executable, "scripts/build_tools_bundle.py", "-o", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == (OBJECTS / "btf-bundle.tar.xz").read_bytes(), \
        "rebuild it: python scripts/build_tools_bundle.py"
