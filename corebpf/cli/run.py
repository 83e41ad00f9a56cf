"""``corebpf run``: load an object, attach its programs, print its events as JSON lines,
then its globals and maps (the logic is :func:`corebpf.run.run`)."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run", help="load an object, attach its programs, print its events as JSON",
        description="Load OBJ (CO-RE against --btf or the running kernel), attach every "
        "program by its section, and print each ring buffer / perf event array record as a "
        "JSON line {\"map\", \"cpu\"?, \"event\" | \"data\" | \"lost\"}. On --duration "
        "expiry or Ctrl-C, print one JSON object with the globals (.bss/.data/.rodata) "
        "and the hash/array maps, then exit 0.")
    p.add_argument("object", metavar="OBJ", help="clang-built BPF object")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="stop after this long (default: run until Ctrl-C)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="NAME=VALUE",
                   help="set a read-only global (const volatile) before load; the value is "
                   "read as the variable's type: 0x10, -1, true, a string for char arrays "
                   "(repeatable)")
    p.add_argument("--event-type", metavar="TYPE",
                   help="struct (in the object's BTF) to decode records as (default: the "
                   "map's value type, else struct event, else hex)")
    p.add_argument("--btf", metavar="PATH",
                   help="BTF to relocate against (raw, vmlinux ELF, .xz, .btf.tar.xz); "
                   "default: the running kernel's")
    p.add_argument("--bundle", metavar="BUNDLE",
                   help="BTF bundle (corebpf archive bundle) for a kernel without BTF of "
                   "its own; the kernel's BTF is used when it has one")
    p.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> int:
    from ..run import parse_assignments, run

    return run(args.object, duration=args.duration, rodata=parse_assignments(args.sets),
               event_type=args.event_type, btf=args.btf, bundle=args.bundle)
