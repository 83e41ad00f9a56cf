"""``corebpf btf ...``"""

from __future__ import annotations

import argparse
import sys

from ..btf.files import KERNEL_BTF

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("btf", help="BTF: dump, merge, from-dwarf, install; loaded BTF "
                       "objects (bpftool btf)")
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
    merge = bsub.add_parser(
        "merge", help="one BTF holding BASE's types, then each EXTRA's (ids shifted)",
        description="Write raw BTF with BASE's types at their ids, then each EXTRA's with "
        "ids shifted past them, strings stored once (libbpf's btf__add_btf), for tools "
        "that take one BTF file (libbpf's btf_custom_path). Files may be in any container. "
        "An EXTRA that is split BTF on BASE (from-dwarf --base, pahole --btf_base) adds its "
        "own types only, still pointing at BASE's.")
    merge.add_argument("base", metavar="BASE", help="BTF whose types keep their ids")
    merge.add_argument("extra", metavar="EXTRA", nargs="+", help="BTF appended after it")
    merge.add_argument("-o", "--output", required=True, metavar="OUT", help="raw BTF out")
    merge.add_argument("--dedup", action="store_true",
                       help="drop EXTRA types identical to an earlier type (same-named "
                       "types with different layouts all stay)")
    merge.set_defaults(func=run_merge)
    inst = bsub.add_parser(
        "install", help="write this machine's BTF where unmodified libbpf tools find it",
        description="Write this machine's BTF as an ELF file with a .BTF section to "
        "/boot/vmlinux-$(uname -r) (libbpf's first vmlinux path, as Inspektor Gadget does) "
        "or --path, atomically, marked as corebpf's. The BTF comes from --from (a BTF file "
        "in any container corebpf reads, or a corebpf bundle: its entry for this machine), "
        "--service (the kernel's BTF from a BTF service), else the kernel's own, a vmlinux "
        "on disk, or the tools' bundle. A file there that corebpf did not write is not "
        "replaced without --force.")
    src = inst.add_mutually_exclusive_group()
    src.add_argument("--from", dest="source", metavar="FILE|BUNDLE",
                     help="BTF file (raw, ELF, .btf.tar.xz, .xz, .gz, kernel .deb) or bundle")
    src.add_argument("--service", metavar="URL", help="BTF service (corebpf serve)")
    inst.add_argument("--path", metavar="P",
                      help="where to write (default: /boot/vmlinux-RELEASE)")
    inst.add_argument("--force", action="store_true",
                      help="replace a file corebpf did not write; install BTF that differs "
                      "from the kernel's own")
    _key_options(inst)
    inst.set_defaults(func=run_install)
    uninst = bsub.add_parser(
        "uninstall", help="remove what `corebpf btf install` wrote",
        description="Remove the file `corebpf btf install` wrote (only corebpf's own, "
        "unless --force).")
    uninst.add_argument("--path", metavar="P",
                        help="file to remove (default: /boot/vmlinux-RELEASE)")
    uninst.add_argument("--release", help="kernel release (default: uname -r)")
    uninst.add_argument("--force", action="store_true",
                        help="remove the file even if corebpf did not write it")
    uninst.set_defaults(func=run_uninstall)


def _key_options(p: argparse.ArgumentParser) -> None:
    """The machine looked up in a bundle or the service (each part defaults to this
    machine's)."""
    p.add_argument("--distro", help="os-release ID (default: this machine's)")
    p.add_argument("--distro-version", dest="version",
                   help="os-release VERSION_ID (default: this machine's)")
    p.add_argument("--arch", help="architecture (default: uname -m)")
    p.add_argument("--release", help="kernel release (default: uname -r)")


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


def run_merge(args: argparse.Namespace) -> int:
    from ..btf import load
    from ..btf.merge import merge
    from ..errors import BTFError

    base = load(args.base)
    specs = [base]
    for path in args.extra:
        try:
            specs.append(load(path))
        except BTFError as e:  # not standalone BTF: split BTF on BASE, or an error
            try:
                specs.append(load(path, base=base))
            except BTFError:
                raise e from None
    raw = merge(specs, dedup=args.dedup)
    try:
        with open(args.output, "wb") as f:
            f.write(raw)
    except OSError as e:
        raise BTFError(f"{args.output}: cannot write: {e.strerror or e}") from None
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


def run_install(args: argparse.Namespace) -> int:
    from ..archive.install import install_btf

    r = install_btf(args.source, service=args.service, path=args.path, force=args.force,
                    distro=args.distro, version=args.version, arch=args.arch,
                    release=args.release)
    for w in r.warnings:
        print(f"corebpf: warning: {w}", file=sys.stderr)
    before = {None: "", "corebpf": ", replacing corebpf's earlier file"}.get(
        r.replaced, f", replacing {r.replaced}")
    print(f"{r.path}: BTF of {'/'.join(r.key)} from {r.source} ({r.btf_size} bytes, "
          f"sha256 {r.btf_sha256[:16]}){before}")
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    from ..archive.install import uninstall_btf

    path, note = uninstall_btf(args.path, force=args.force, release=args.release)
    print(f"removed {path}" + (f" (BTF from {note.get('source')})" if note else ""))
    return 0
