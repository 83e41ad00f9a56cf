"""``corebpf core relocate``: what libbpf would decide for each CO-RE relocation."""

from __future__ import annotations

import argparse
import sys

from ..btf.files import KERNEL_BTF

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("core", help="CO-RE relocation")
    csub = p.add_subparsers(dest="core_command", required=True, metavar="SUBCOMMAND",
                            prog="corebpf core")
    r = csub.add_parser("relocate", help="relocate an object's CO-RE records against a BTF")
    r.add_argument("object", help="clang-built BPF object (.o)")
    r.add_argument("--target", action="append", metavar="BTF",
                   help=f"target BTF, any container (default: {KERNEL_BTF}); repeatable: "
                   "searched in order, the first with a candidate for a type decides")
    r.add_argument("--module", action="append", default=[], metavar="BTF",
                   help="split module BTF of the first target, searched after it "
                   "(repeatable)")
    r.add_argument("--json", action="store_true", help="one JSON object per relocation")
    r.set_defaults(func=run_relocate)


def register_obj(sub: Any) -> None:
    p = sub.add_parser("obj", help="BPF objects")
    osub = p.add_subparsers(dest="obj_command", required=True, metavar="SUBCOMMAND",
                            prog="corebpf obj")
    d = osub.add_parser("dump", help="disassemble an object, annotating its relocations")
    d.add_argument("object", help="clang-built BPF object (.o)")
    d.set_defaults(func=run_obj_dump)


def run_obj_dump(args: argparse.Namespace) -> int:
    from ..obj import ObjectSpec
    from ..objdump import dump_object

    dump_object(ObjectSpec.load(args.object), sys.stdout.write)
    return 0


def run_relocate(args: argparse.Namespace) -> int:
    from ..btf import load
    from ..core import Target, relocate
    from ..core.engine import FLAVOR_SEP, objects_root_names
    from ..obj import ObjectSpec

    obj = ObjectSpec.load(args.object)
    names = objects_root_names([obj])
    first, *more = [load(t, find_names=names, prefix_sep=FLAVOR_SEP)
                    for t in args.target or [KERNEL_BTF]]
    target = Target(first, [load(m, base=first, index_names=True) for m in args.module],
                    then=more)
    reports, _ = relocate(obj, target)
    out = sys.stdout
    if args.json:
        import json

        for r in reports:
            out.write(json.dumps(r.to_json()) + "\n")
    else:
        out.write(f"{'prog':<20} {'relo':>4} {'insn':>5} {'kind':<14} {'local':>8} "
                  f"{'target':>8}  access\n")
        for r in reports:
            if r.error is not None:
                out.write(f"{r.program:<20} {r.index:>4} {'':>5} {'ERROR':<14} {'':>8} {'':>8}  "
                          f"{r.error}\n")
                continue
            tgt = "poison" if r.poisoned else str(r.target)
            access = r.local_spec.split("] ", 1)[-1] if r.local_spec else ""
            became = r.target_spec.split(" (", 1)[-1].rstrip(")") if r.target_spec else (
                "missing" if r.poisoned or r.target == 0 else "")
            out.write(f"{r.program:<20} {r.index:>4} {r.insn:>5} {r.kind.libbpf_name:<14} "
                      f"{r.local!s:>8} {tgt:>8}  {access}  =>  {became}\n")
    failed = any(r.error for r in reports)
    return 1 if failed else 0
