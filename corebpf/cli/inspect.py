"""``corebpf prog|map|link ...`` and ``corebpf btf list|show``, ``btf dump id ID``:
bpftool's inspection verbs over :mod:`corebpf.inspect`."""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_HANDLE = {
    "prog": "id ID | name NAME | tag TAG | pinned PATH",
    "map": "id ID | name NAME | pinned PATH",
    "link": "id ID | pinned PATH",
    "btf": "id ID",
}
_JSON_HELP = "print JSON as bpftool -j does"


class _Pretty(argparse.Action):
    """bpftool's -p: pretty-printed JSON, which implies JSON."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        namespace.json = namespace.pretty = True


def _json_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--json", action="store_true", help=_JSON_HELP)
    p.add_argument("-p", "--pretty", action=_Pretty, nargs=0, default=False,
                   help="the same JSON, pretty-printed (as bpftool -p)")


def _show_parsers(sub: Any, obj: str, what: str, func: Any, *, bpffs: bool = True) -> None:
    for verb in ("show", "list"):
        p = sub.add_parser(verb, help=f"show every loaded {what}, or the one HANDLE selects"
                           if verb == "show" else "same as show",
                           description=f"HANDLE: {_HANDLE[obj]}. Without one, every "
                           f"loaded {what} is shown.")
        p.add_argument("handle", nargs="*", metavar="HANDLE", help=_HANDLE[obj])
        _json_opt(p)
        if bpffs:
            p.add_argument("-f", "--bpffs", action="store_true",
                           help="also show where each is pinned in bpffs")
        p.set_defaults(func=func, obj=obj, parser_error=p.error)


def register(sub: Any) -> None:
    """``prog``, ``map`` and ``link``, and ``list``/``show``/``dump id`` under ``btf``."""
    prog = sub.add_parser("prog", help="inspect loaded programs (bpftool prog)")
    psub = prog.add_subparsers(dest="prog_command", required=True, metavar="SUBCOMMAND",
                               prog="corebpf prog")
    _show_parsers(psub, "prog", "program", run_show)
    dump = psub.add_parser(
        "dump", help="a program's instructions as the kernel translated them",
        usage="corebpf prog dump [-j] xlated HANDLE [opcodes | linum | file FILE]",
        description="The instructions after verification, in the kernel's disassembly "
        "syntax, under each function's prototype and source line. HANDLE: "
        + _HANDLE["prog"] + ".")
    dump.add_argument("mode", choices=("xlated", "jited"),
                      help="xlated (jited code is not disassembled by corebpf)")
    dump.add_argument("words", nargs="+", metavar="WORD",
                      help="the program's HANDLE, then opcodes, linum or file FILE")
    _json_opt(dump)
    dump.set_defaults(func=run_prog_dump, parser_error=dump.error)

    mp = sub.add_parser("map", help="inspect and edit loaded maps (bpftool map)")
    msub = mp.add_subparsers(dest="map_command", required=True, metavar="SUBCOMMAND",
                             prog="corebpf map")
    _show_parsers(msub, "map", "map", run_show)
    elem = ("KEY: key [hex] BYTE... | key json JSON (typed, through the map's BTF, in the "
            "shape dump prints). VALUE: value [hex] BYTE... | value json JSON; for a map "
            "of maps a map HANDLE, for a program array a program HANDLE. Bytes are "
            "decimal, 0x hex or 0 octal, or all hex after 'hex'. Per-CPU maps get the value "
            "on every CPU.")
    for verb, hlp, words in (
            ("dump", "every element, through the map's BTF where it has one", "HANDLE"),
            ("lookup", "the element under a key", "HANDLE KEY"),
            ("update", "store an element", "HANDLE KEY VALUE [any | noexist | exist]"),
            ("delete", "delete the element under a key", "HANDLE KEY")):
        p = msub.add_parser(verb, help=hlp, usage=f"corebpf map {verb} [-j] {words}",
                            description=f"HANDLE: {_HANDLE['map']}. "
                            + (elem if verb != "dump" else ""))
        p.add_argument("words", nargs="+", metavar="WORD", help=words)
        _json_opt(p)
        p.set_defaults(func=run_map_elem, verb=verb, parser_error=p.error)

    link = sub.add_parser("link", help="inspect BPF links and what they attach "
                          "(bpftool link)")
    lsub = link.add_subparsers(dest="link_command", required=True, metavar="SUBCOMMAND",
                               prog="corebpf link")
    _show_parsers(lsub, "link", "link", run_show)
    register_btf(sub)


def _subparsers(parser: argparse.ArgumentParser) -> Any:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise LookupError("no subcommands")  # pragma: no cover


def register_btf(sub: Any) -> None:
    """``btf list|show [id ID]`` and ``btf dump id ID`` beside ``btf dump FILE``."""
    btf = sub.choices.get("btf")
    if btf is None:  # pragma: no cover - registered after `corebpf btf`
        return
    bsub = _subparsers(btf)
    _show_parsers(bsub, "btf", "BTF object", run_show, bpffs=False)
    dump = bsub.choices.get("dump")
    if dump is None:  # pragma: no cover
        return
    dump.add_argument("btf_id", nargs="?", metavar="ID",
                      help="with FILE 'id': the loaded BTF object of this id "
                      "(corebpf btf list)")
    dump.add_argument("-j", "--json", action="store_true",
                      help="print bpftool -j's {\"types\": [...]}")
    dump.set_defaults(file_dump=dump.get_default("func"), func=run_btf_dump,
                      parser_error=dump.error)


def _selector(args: argparse.Namespace, words: list[str], obj: str) -> Any:
    from ..inspect import InspectError, parse_selector

    try:
        return parse_selector(words, obj)
    except InspectError as e:
        args.parser_error(str(e))


def _print_json(args: argparse.Namespace, value: Any) -> None:
    from ..inspect import render

    sys.stdout.write(render(value, pretty=getattr(args, "pretty", False)) + "\n")


def _verbs(obj: str) -> tuple[Callable[..., Any], ...]:
    """(select, iterate, one as JSON, one as text, a selection as JSON) for an object."""
    from ..inspect import btf as ib
    from ..inspect import links as il
    from ..inspect import maps as im
    from ..inspect import programs as ip

    table: dict[str, tuple[Callable[..., Any], ...]] = {
        "prog": (ip.select_programs, ip.iter_programs, ip.program_json, ip.program_text,
                 ip.programs_json),
        "map": (im.select_maps, im.iter_maps, im.map_json, im.map_text, im.maps_json),
        "link": (il.select_links, il.iter_links, il.link_json, il.link_text, il.links_json),
        "btf": (ib.select_btf, ib.iter_btf, ib.btf_json, ib.btf_text, ib.btfs_json),
    }
    return table[obj]


def run_show(args: argparse.Namespace) -> int:
    obj = args.obj
    select, iterate, as_json, as_text, many = _verbs(obj)
    opts = {"pinned": True} if getattr(args, "bpffs", False) else {}
    if args.handle:
        sel, rest = _selector(args, args.handle, obj)
        if rest:
            args.parser_error(f"unexpected {' '.join(rest)!r} after the handle")
        items = select(sel, **opts)
        if args.json:
            _print_json(args, many(items))
    else:
        items = list(iterate(**opts))
        if args.json:
            _print_json(args, [as_json(x) for x in items])
    if not args.json:
        sys.stdout.write("".join(as_text(x) for x in items))
    return 0


def run_prog_dump(args: argparse.Namespace) -> int:
    from .. import inspect as ins

    if args.mode == "jited":
        args.parser_error("jited: corebpf does not disassemble native code (it has no "
                          "x86-64 or arm64 disassembler); 'prog dump xlated' prints the "
                          "verified instructions, 'bpftool prog dump jited' the native ones")
    sel, rest = _selector(args, args.words, "prog")
    opcodes = linum = False
    out_file = None
    if rest:
        word = rest[0]
        if word and "file".startswith(word):
            if len(rest) != 2:
                args.parser_error("file: expected one path")
            out_file = rest[1]
        elif word and "opcodes".startswith(word) and len(rest) == 1:
            opcodes = True
        elif word and "linum".startswith(word) and len(rest) == 1:
            linum = True
        else:
            args.parser_error(f"unexpected {' '.join(rest)!r}: expected opcodes, linum or "
                              "file FILE")
    progs = ins.dump_xlated(sel)
    if out_file is not None:
        if len(progs) > 1:
            args.parser_error(f"{sel} matches several programs: select one for file")
        _write_raw(out_file, b"".join(i.raw for i in progs[0].insns))
        if args.json:
            _print_json(args, None)
        return 0
    if args.json:
        _print_json(args, ins.xlated_json(progs, opcodes=opcodes, linum=linum))
    else:
        sys.stdout.write(ins.xlated_text(progs, opcodes=opcodes, linum=linum))
    return 0


def _write_raw(path: str, data: bytes) -> None:
    from ..inspect import InspectError

    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise InspectError(f"{path}: cannot write: {e.strerror or e}") from None


def run_map_elem(args: argparse.Namespace) -> int:
    from ..inspect import maps as im

    sel, rest = _selector(args, args.words, "map")
    if args.verb == "dump":
        if rest:
            args.parser_error(f"unexpected {' '.join(rest)!r} after the handle")
        dumps = im.dump_maps(sel)
        for d in dumps:
            if d.note:
                print(f"corebpf: {d.note}", file=sys.stderr)
        if args.json:
            _print_json(args, im.dump_json(dumps))
        else:
            sys.stdout.write(im.dump_text(dumps))
        return 0
    if args.verb == "lookup":
        m, spec, key, entry = im.lookup_elem(sel, rest)
        if args.json:
            _print_json(args, im.lookup_json(m, spec, entry))
        else:
            sys.stdout.write(im.lookup_text(m, spec, key, entry))
        return 0 if entry is not None else 1
    if args.verb == "update":
        im.update_elem(sel, rest)
    else:
        im.delete_elem(sel, rest)
    if args.json:
        _print_json(args, None)
    return 0


def run_btf_dump(args: argparse.Namespace) -> int:
    from ..btf.format_raw import dump_raw, type_to_json
    from ..inspect import InspectError, load_btf

    if args.file != "id":
        if args.btf_id is not None:
            args.parser_error(f"unexpected {args.btf_id!r}: to dump a loaded BTF object, "
                              "give 'id ID'")
        if not args.json:
            return int(args.file_dump(args))
        from ..btf import load

        base = load(args.base) if args.base else None
        spec = load(args.file, base=base)
    else:
        if args.btf_id is None:
            args.parser_error("id: missing the BTF object's id (corebpf btf list)")
        try:
            btf_id = int(args.btf_id, 0)
        except ValueError:
            args.parser_error(f"can't parse {args.btf_id!r} as an id")
        if args.base:
            raise InspectError("--base is for files: a loaded module's BTF is read on the "
                               "kernel's")
        spec = load_btf(btf_id)
    if args.json:
        from ..inspect.values import Obj

        ids = args.types if args.types else list(spec.ids())
        _print_json(args, Obj([("types", [type_to_json(spec, t) for t in ids])]))
        return 0
    if args.format == "raw":
        dump_raw(spec, sys.stdout.write, args.types)
    elif args.format == "json":
        from ..btf.format_raw import dump_json

        dump_json(spec, sys.stdout.write, args.types)
    else:
        from ..btf.format_c import dump_c

        dump_c(spec, sys.stdout.write, args.types, enum_modes=not args.bpftool_compat)
    sys.stdout.flush()
    return 0
