"""``corebpf build``: BPF C sources to CO-RE objects and skeleton modules (bpf2go)."""

from __future__ import annotations

import argparse
import shlex
import sys

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "build", help="compile BPF C into CO-RE objects and Python skeletons (needs clang)",
        description="On the build machine: write vmlinux.h (from the running kernel's BTF or "
        "--btf) into OUTDIR/include, compile each SRC.bpf.c with clang -O2 -g for each "
        "target, strip DWARF (keeping .BTF and .BTF.ext), and write OUTDIR/<name>_skel.py "
        "with every object variant. Sources #include \"vmlinux.h\" and libbpf's "
        "<bpf/bpf_helpers.h>. Only this command needs clang: the skeletons run anywhere.")
    p.add_argument("sources", nargs="+", metavar="SRC.bpf.c")
    p.add_argument("-o", "--output", default=".", metavar="OUTDIR",
                   help="where objects, include/vmlinux.h and skeletons go (default: .)")
    p.add_argument("--btf", metavar="BTF", help="vmlinux.h from this BTF (any container "
                   "btf dump reads) instead of the running kernel's")
    p.add_argument("--target", default="bpfel,bpfeb", metavar="LIST",
                   help="comma-separated: bpfel, bpfeb, bpf (both), or architectures "
                   "(amd64, arm64, ...: per-arch objects with -D__TARGET_ARCH_<arch>, for "
                   "programs that read pt_regs); default bpfel,bpfeb")
    p.add_argument("--cflags", default="", metavar="FLAGS",
                   help="more clang flags (one shell-quoted string)")
    p.add_argument("-I", dest="include", action="append", default=[], metavar="DIR",
                   help="more include directories")
    p.add_argument("--no-vmlinux-h", action="store_true",
                   help="do not write include/vmlinux.h (sources declare kernel types "
                   "themselves)")
    p.add_argument("--no-skeleton", action="store_true", help="objects only")
    p.add_argument("--reference", action="store_true",
                   help="skeletons name the objects beside them instead of embedding them")
    p.add_argument("--type", dest="types", action="append", default=[], metavar="NAME",
                   help="also generate this type in the skeletons")
    p.add_argument("-v", "--verbose", action="store_true", help="print each command")
    p.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    from ..build import build, parse_targets

    results = build(args.sources, args.output, btf=args.btf,
                    targets=parse_targets(args.target), cflags=shlex.split(args.cflags),
                    include_dirs=args.include, skeleton=not args.no_skeleton,
                    embed=not args.reference, extra_types=args.types,
                    vmlinux_h=not args.no_vmlinux_h,
                    log=sys.stderr if args.verbose else None)
    for r in results:
        objs = ", ".join(r.objects.values())
        print(f"{r.source}: {objs}" + (f"; {r.skeleton}" if r.skeleton else ""))
    return 0
