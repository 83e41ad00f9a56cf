"""``corebpf run``: load an object, attach its programs, print its events as JSON lines,
then its globals and maps (the logic is :func:`corebpf.run.run`)."""

from __future__ import annotations

import argparse

from . import seconds_arg

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def _assignment(text: str) -> str:
    """argparse type: ``NAME=VALUE`` (usage error otherwise), kept as text."""
    from ..run import RunError, parse_assignments

    try:
        parse_assignments([text])
    except RunError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE") from None
    return text


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="load an object, attach its programs, print its events as JSON",
        description="Load OBJ (CO-RE against --btf or the running kernel), attach every "
        "program by its section, and print each ring buffer / perf event array record as a "
        "JSON line {\"map\", \"cpu\"?, \"event\" | \"data\" | \"lost\"}. On --duration "
        "expiry or Ctrl-C, print one JSON object with the globals (.bss/.data/.rodata) "
        "and the hash/array maps, then exit 0 (--format text: a table and a text dump, "
        "for people). XDP and tc programs attach to --iface. A program the verifier "
        "refuses is reported with the end of the verifier log (-v: all of it).")
    p.add_argument("object", metavar="OBJ", help="clang-built BPF object")
    p.add_argument("--duration", type=seconds_arg, metavar="SECONDS",
                   help="stop after this long (default: run until Ctrl-C)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   type=_assignment,
                   help="set a read-only global (const volatile) before load; the value is "
                   "read as the variable's type: 0x10, -1, true, a string for char arrays "
                   "(repeatable)")
    p.add_argument("--event-type", metavar="TYPE",
                   help="struct (in the object's BTF) to decode records as (default: the "
                   "map's value type, else struct event, else hex)")
    p.add_argument("--btf", metavar="PATH", action="append",
                   help="BTF to relocate against (raw, vmlinux ELF, .xz, .btf.tar.xz); "
                   "default: the running kernel's. Repeatable: searched in order, the first "
                   "with a type of the name decides (list the kernel's, "
                   "/sys/kernel/btf/vmlinux, to search it too)")
    p.add_argument("--bundle", metavar="BUNDLE",
                   help="BTF bundle (corebpf archive bundle) for a kernel without BTF of "
                   "its own; the kernel's BTF is used when it has one")
    p.add_argument("--btf-service", metavar="URL",
                   help="BTF service (corebpf serve) asked last, on a kernel without BTF "
                   "that the bundle (if any) does not know: this kernel's BTF minimized for "
                   "the object (cached under ~/.cache/corebpf/service)")
    p.add_argument("--uprobe", dest="targets", action="append", default=[],
                   type=_target, metavar="PROG=BINARY:FUNC[+OFF]",
                   help="attach program PROG (a bare SEC(\"uprobe\") or uretprobe) there; "
                   "BINARY may be a library name (libc.so.6) (repeatable)")
    p.add_argument("--usdt", dest="targets", action="append", type=_target,
                   metavar="PROG=BINARY:PROVIDER:NAME",
                   help="attach program PROG (a bare SEC(\"usdt\")) to that USDT probe "
                   "(repeatable)")
    p.add_argument("--pid", type=int, default=-1, metavar="PID",
                   help="uprobes and USDT probes fire for this process only")
    p.add_argument("--iface", metavar="IF",
                   help="network interface (name or index) to attach XDP and tc programs "
                   "to: SEC(\"xdp\") through an XDP link, SEC(\"tcx/ingress\"), "
                   "SEC(\"tc/egress\")... and classic SEC(\"tc\")/SEC(\"classifier\") "
                   "through tcx links (Linux 6.6+); detached on exit")
    p.add_argument("--xdp-mode", choices=("skb", "native", "hw"),
                   help="XDP mode (default: native where the driver has it, else skb)")
    p.add_argument("--tc", dest="targets", action="append", type=_direction,
                   metavar="PROG=ingress|egress",
                   help="direction of a classic SEC(\"tc\") program PROG (default: "
                   "ingress) (repeatable)")
    p.add_argument("--format", choices=("json", "text"), default="json",
                   help="json (default): one JSON object per record, then one with the "
                   "globals and maps; text: records as an aligned table with a header, "
                   "the globals and maps as text, for people")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="on a verifier refusal, print the whole verifier log (default: its "
                   "last 20 lines)")
    p.set_defaults(func=run_run)


def _direction(text: str) -> tuple[str, str]:
    prog, where = _target(text)
    if where not in ("ingress", "egress"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected PROG=ingress or PROG=egress")
    return prog, where


def _target(text: str) -> tuple[str, str]:
    prog, sep, where = text.partition("=")
    if not sep or not prog.strip() or not where.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected PROG=WHERE")
    return prog.strip(), where.strip()


def run_run(args: argparse.Namespace) -> int:
    from ..run import parse_assignments, run

    return run(args.object, duration=args.duration, rodata=parse_assignments(args.sets),
               event_type=args.event_type, btf=args.btf, bundle=args.bundle,
               verbose=args.verbose, targets=dict(args.targets), pid=args.pid,
               service=args.btf_service, iface=args.iface, xdp_mode=args.xdp_mode,
               format=args.format)
