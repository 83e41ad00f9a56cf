"""``corebpf gen min-btf``: minimized BTF (bpftool's ``gen min_core_btf``) for a set of
objects, for one or many kernels at once."""

from __future__ import annotations

import argparse
import sys

from ._pool import add_pool_options, executor, progress, worker_path

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
    p.add_argument("--btf", nargs="+", action="extend", default=[], metavar="INPUT",
                   help="kernel BTF to minimize (several after one flag, or repeated)")
    p.add_argument("--object", dest="objects", nargs="+", action="extend", required=True,
                   metavar="OBJ", help="clang-built BPF object (several after one flag, or "
                   "repeated)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="directory for the minimized .btf files (created)")
    p.add_argument("--base", metavar="VMLINUX",
                   help="the inputs are split (module) BTF on this vmlinux BTF")
    p.add_argument("--module", dest="modules", nargs="+", action="extend", default=[],
                   metavar="BTF",
                   help="module BTF split on the (single) input, searched after it as "
                   "libbpf searches kernel modules (repeatable)")
    p.add_argument("--decl-tags", action="store_true",
                   help="also keep DECL_TAGs on kept types and members")
    add_pool_options(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no line per output")
    p.set_defaults(func=run_min_btf)

    s = gsub.add_parser(
        "skeleton", help="a Python skeleton module for a BPF object",
        description="Write a Python module for a BPF object, as bpftool gen skeleton writes "
        "a C header: a Skeleton class (open, load, attach, close) with typed globals "
        "(.rodata, .bss, .data, custom sections), maps, programs and events, and ctypes "
        "classes for the object's structs, unions and enums. The object is embedded "
        "(compressed) unless --reference names it beside the module.")
    s.add_argument("object", metavar="OBJ", help="clang-built BPF object")
    s.add_argument("-o", "--output", metavar="MODULE.py",
                   help="where to write the module (default: standard output)")
    s.add_argument("--name", metavar="CLASS", help="the skeleton class's name (default: "
                   "from the object's file name, minimal.bpf.o -> Minimal)")
    s.add_argument("--variant", action="append", default=[], metavar="NAME=OBJ",
                   help="another build of the same source (bpfeb=x.bpfeb.o, "
                   "x86.bpfel=x.x86.bpfel.o); the skeleton picks the machine's at open")
    s.add_argument("--type", dest="types", action="append", default=[], metavar="NAME",
                   help="also generate this type (and what it uses) from the object's BTF")
    s.add_argument("--reference", action="store_true",
                   help="name the objects by path relative to the module instead of "
                   "embedding them")
    s.set_defaults(func=run_skeleton)


def run_skeleton(args: argparse.Namespace) -> int:
    from ..errors import Error
    from ..obj.object import ObjectSpec
    from ..skeleton.generate import generate

    obj = ObjectSpec.load(args.object)
    variants = {"bpfel" if obj.endian == "<" else "bpfeb": args.object}
    for item in args.variant:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            print(f"corebpf gen skeleton: --variant {item!r}: expected NAME=OBJ",
                  file=sys.stderr)
            return 2
        variants[name] = path
    out_dir = None
    if args.output:
        import os

        out_dir = os.path.dirname(os.path.abspath(args.output))
    elif args.reference:
        print("corebpf gen skeleton: --reference needs -o (paths are relative to the module)",
              file=sys.stderr)
        return 2
    try:
        text = generate(variants, class_name=args.name, embed=not args.reference,
                        module_dir=out_dir, extra_types=args.types)
    except Error:
        raise
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def run_min_btf(args: argparse.Namespace) -> int:
    from ..btfgen import minimize_files
    from ._args import split_objects

    objects, rest = split_objects(args.objects)  # `--object A.o B.o KERNEL_DIR`
    inputs = [*args.inputs, *rest, *args.btf]
    if not objects:
        print("corebpf gen min-btf: no BPF object among --object's values", file=sys.stderr)
        return 2
    if not inputs:
        print("corebpf gen min-btf: no input BTF (give INPUT or --btf)", file=sys.stderr)
        return 2
    if args.modules and len(inputs) != 1:
        print("corebpf gen min-btf: --module needs exactly one input (the modules' vmlinux)",
              file=sys.stderr)
        return 2
    inputs = [worker_path(args, p) for p in inputs]
    base = None if args.base is None else worker_path(args, args.base)
    modules = [worker_path(args, m) for m in args.modules]
    with executor(args) as pool:
        outcomes = minimize_files(objects, inputs, args.output, base=base,
                                  modules=modules, keep_decl_tags=args.decl_tags,
                                  jobs=args.jobs, executor=pool, progress=progress(args))
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
