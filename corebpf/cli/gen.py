"""``corebpf gen min-btf``: minimized BTF (bpftool's ``gen min_core_btf``) for a set of
objects, for one or many kernels at once."""

from __future__ import annotations

import argparse
import sys

from ._pool import add_pool_options, progress

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    gen = sub.add_parser("gen", help="generate files from BPF objects",
                         description="Generate files from BPF objects.")
    gsub = gen.add_subparsers(dest="gen_command", required=True, metavar="WHAT",
                              prog="corebpf gen")
    p = gsub.add_parser(
        "min-btf", aliases=["min_core_btf"],
        help="minimized kernel BTF holding what the objects' CO-RE relocations need",
        description="For each input BTF (raw, vmlinux ELF, .xz, BTFHub .btf.tar.xz, "
        "kernel .deb), write OUTDIR/<name>.btf: only the types, members and enums the "
        "objects' CO-RE relocations use on that kernel, to ship for kernels without "
        "built-in BTF. A directory input is an archive (e.g. a BTFHub tree): every kernel "
        "under it goes to the same relative directory under OUTDIR, as btfgen.sh does. "
        "Each input is read once for all objects, kernels are minimized in parallel; an "
        "unreadable input is reported and the others go on (exit status 1).")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="kernel BTF or archive directory (same as --btf)")
    p.add_argument("--btf", action="append", default=[], metavar="INPUT",
                   help="kernel BTF to minimize (repeatable)")
    p.add_argument("--object", dest="objects", action="append", required=True,
                   metavar="OBJ", help="clang-built BPF object (repeatable)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="directory for the minimized .btf files (created)")
    p.add_argument("--base", metavar="VMLINUX",
                   help="the inputs are split (module) BTF on this vmlinux BTF")
    p.add_argument("--module", dest="modules", action="append", default=[], metavar="BTF",
                   help="module BTF split on the (single) input, searched after it as "
                   "libbpf searches kernel modules (repeatable)")
    p.add_argument("--decl-tags", action="store_true",
                   help="also keep DECL_TAGs on kept types and members")
    add_pool_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no line per output")
    p.set_defaults(func=run_min_btf)


def run_min_btf(args: argparse.Namespace) -> int:
    from ..btfgen import minimize_files

    inputs = [*args.inputs, *args.btf]
    if not inputs:
        print("corebpf gen min-btf: no input BTF (give INPUT or --btf)", file=sys.stderr)
        return 2
    if args.modules and len(inputs) != 1:
        print("corebpf gen min-btf: --module needs exactly one input (the modules' vmlinux)",
              file=sys.stderr)
        return 2
    outcomes = minimize_files(args.objects, inputs, args.output, base=args.base,
                              modules=args.modules, keep_decl_tags=args.decl_tags,
                              jobs=args.jobs, progress=progress(args))
    failed = 0
    for o in outcomes:
        if o.error is not None:
            failed += 1
            print(f"corebpf: skipped {o.error}", file=sys.stderr)
        elif o.result is not None and not args.quiet:
            r = o.result
            print(f"{r.out_path}: {r.size} bytes, {r.types} types "
                  f"({r.relocations} relocations)")
    return 1 if failed else 0
