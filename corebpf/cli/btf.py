"""``corebpf btf ...``"""

from __future__ import annotations

import argparse
import sys

from ..btf.files import KERNEL_BTF

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("btf", help="inspect BTF")
    bsub = p.add_subparsers(dest="btf_command", required=True, metavar="SUBCOMMAND",
                            prog="corebpf btf")
    dump = bsub.add_parser(
        "dump",
        help="print BTF as bpftool's raw text, a C header (vmlinux.h) or JSON lines",
        description="FILE may be raw BTF, an ELF file with .BTF (vmlinux, module, BPF "
        "object) or a compressed form (.btf.tar.xz, .xz, .gz).",
    )
    dump.add_argument("file", nargs="?", default=KERNEL_BTF,
                      help=f"BTF to dump (default: {KERNEL_BTF})")
    dump.add_argument("--base", metavar="BASE", help="base BTF of a split (module) BTF")
    dump.add_argument("--format", choices=("raw", "c", "json"), default="raw")
    dump.add_argument("--type", dest="types", action="append", type=int, metavar="ID",
                      help="dump only these type ids (repeatable)")
    dump.add_argument("--bpftool-compat", action="store_true",
                      help="C: print exactly what bpftool 7.1 prints (no mode(byte)/mode(word) "
                      "on odd-sized enums, which clang then sizes wrongly)")
    dump.set_defaults(func=run_dump)
    fd = bsub.add_parser(
        "from-dwarf",
        help="write raw BTF for the types, functions and globals in a binary's DWARF",
        description="BINARY is an executable, shared library or object file built with -g "
        "(DWARF 4 or 5, C or C++). Needs pyelftools: pip install 'corebpf[dwarf]'.",
    )
    fd.add_argument("binary", metavar="BINARY")
    fd.add_argument("-o", "--output", metavar="OUT",
                    help="where to write the BTF (default: BINARY.btf; '-' for stdout)")
    fd.add_argument("--base", metavar="BTF",
                    help="write split BTF on this base (e.g. /sys/kernel/btf/vmlinux)")
    fd.set_defaults(func=run_from_dwarf)


def run_dump(args: argparse.Namespace) -> int:
    from ..btf import load

    base = load(args.base) if args.base else None
    spec = load(args.file, base=base)
    write = sys.stdout.write
    if args.format == "raw":
        from ..btf.format_raw import dump_raw

        dump_raw(spec, write, args.types)
    elif args.format == "json":
        from ..btf.format_raw import dump_json

        dump_json(spec, write, args.types)
    else:
        from ..btf.format_c import dump_c

        dump_c(spec, write, args.types, enum_modes=not args.bpftool_compat)
    sys.stdout.flush()
    return 0


def run_from_dwarf(args: argparse.Namespace) -> int:
    from ..btf import load
    from ..dwarf import btf_from_dwarf

    base = load(args.base) if args.base else None
    data = btf_from_dwarf(args.binary, base=base)
    out = args.output or args.binary + ".btf"
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    try:
        with open(out, "wb") as f:
            f.write(data)
    except OSError as e:
        from ..errors import DWARFError

        raise DWARFError(f"{out}: cannot write: {e.strerror or e}") from None
    return 0
