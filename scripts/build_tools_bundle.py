"""Build corebpf/tools/objects/btf-bundle.tar.xz: the minimized BTF the ready tools relocate
against on kernels without /sys/kernel/btf/vmlinux, for every kernel of the shared BTFHub
corpus (../shared/btf-corpus, skipped when absent) and the project's Debian 12 kernels
(tests/data/btf).

Every ``<tool>.bpfel.o`` counts for every kernel; ``<tool>.x86.bpfel.o`` and
``<tool>.arm64.bpfel.o`` (pt_regs readers built per architecture) only for kernels of that
architecture, whose pt_regs they were compiled for. Big-endian objects are left out: no
kernel of the archive is big-endian.

    python scripts/build_tools_bundle.py                 # write the bundle, print figures
    python scripts/build_tools_bundle.py -o /tmp/b.tar.xz --jobs 2

Paths go into the bundle relative to the checkout (object names, skipped kernels), and
build_bundle writes fixed tar metadata and sorted blobs: the same objects and kernels give
the same bytes, wherever the checkout lives.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from corebpf.archive.bundle import build_bundle  # noqa: E402
from corebpf.archive.sources import KernelEntry, discover  # noqa: E402
from corebpf.errors import Error  # noqa: E402

OBJECTS = Path("corebpf/tools/objects")
OUTPUT = OBJECTS / "btf-bundle.tar.xz"
CORPUS = Path("../shared/btf-corpus")
DEBIAN = Path("tests/data/btf")
#: file name tag of per-architecture objects -> the architecture as bundles name it
ARCH_TAGS = {"x86": "x86_64", "arm64": "arm64"}


def tool_objects(directory: Path) -> tuple[list[str], dict[str, list[str]]]:
    """(objects for every kernel, {arch: objects for that arch's kernels only})."""
    common: list[str] = []
    per_arch: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.bpfel.o")):
        parts = path.name.split(".")  # tool[.arch].bpfel.o
        arch = ARCH_TAGS.get(parts[-3]) if len(parts) >= 4 else None
        if arch is None and len(parts) >= 4:
            raise SystemExit(f"{path}: unknown architecture tag {parts[-3]!r} "
                             f"(known: {', '.join(ARCH_TAGS)})")
        (per_arch.setdefault(arch, []) if arch else common).append(str(path))
    return common, per_arch


def kernels(corpus: Path | None) -> list[KernelEntry]:
    entries = []
    if corpus is not None and corpus.is_dir():
        entries += discover(corpus)
    elif corpus is not None:
        print(f"note: {corpus} is absent: bundling the Debian kernels only", file=sys.stderr)
    for e in discover(DEBIAN):
        # tests/data/btf is flat: its kernels are Debian 12's (see SOURCES.md there)
        e.distro, e.version = e.distro or "debian", e.version or "12"
        entries.append(e)
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--output", type=Path, default=OUTPUT)
    ap.add_argument("--objects", type=Path, default=OBJECTS,
                    help=f"directory of the tools' objects (default: {OBJECTS})")
    ap.add_argument("--corpus", type=Path, default=CORPUS,
                    help=f"BTFHub-layout tree (default: {CORPUS})")
    ap.add_argument("--jobs", type=int, default=None)
    args = ap.parse_args(argv)
    os.chdir(ROOT)  # relative paths in the bundle: the same bytes from any checkout
    common, per_arch = tool_objects(args.objects)
    if not common:
        print(f"error: no *.bpfel.o in {args.objects}", file=sys.stderr)
        return 1
    entries = kernels(args.corpus)
    try:
        r = build_bundle(common, entries, args.output, jobs=args.jobs, progress=None,
                         arch_objects=per_arch)
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path, error in r.skipped:
        print(f"skipped {path}: {error}", file=sys.stderr)
    arch_text = "".join(f", {len(v)} for {a} only" for a, v in sorted(per_arch.items()))
    print(f"{len(common)} objects for every kernel{arch_text}")
    print(f"{r.path}: {r.kernels} kernels, {r.blobs} distinct BTF (dedup ratio "
          f"{r.dedup_ratio:.2f}); minimized {r.raw_bytes} bytes -> {r.stored_bytes} "
          f"stored -> {r.file_size} bytes xz")
    return 1 if r.skipped else 0


if __name__ == "__main__":
    sys.exit(main())
