"""``corebpf check``: every CO-RE relocation of some objects against every kernel of an
archive, before shipping (nothing is loaded)."""

from __future__ import annotations

import argparse
import sys

from ._pool import add_pool_options, executor, progress, worker_path

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "check", help="relocate objects against every kernel of a BTF archive",
        description="A matrix of kernels x CO-RE relocations: each resolved, poisoned (the "
        "field or type the program reads is missing on that kernel) or failed (the object "
        "would not load, e.g. ambiguous candidates). Exit status 1 when a kernel failed "
        "(or its BTF could not be read); poisoned relocations alone exit 0 unless --strict.")
    p.add_argument("objects", nargs="*", metavar="OBJ", help="clang-built BPF object (.o)")
    p.add_argument("--object", dest="more_objects", nargs="+", action="extend", default=[],
                   metavar="OBJ", help="objects after a flag too, as gen min-btf and "
                   "archive bundle take them")
    p.add_argument("--archive", required=True, metavar="DIR",
                   help="BTFHub-layout tree, .deb/vmlinux/raw BTF files")
    p.add_argument("--json", action="store_true",
                   help='print {"kernels": [...]} instead of the table')
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 also when a relocation is poisoned on some kernel")
    add_pool_options(p)
    p.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    from ..archive.check import check_archive, format_table

    objects = [*args.objects, *args.more_objects]
    if not objects:
        print("corebpf check: no object (give OBJ or --object OBJ)", file=sys.stderr)
        return 2
    with executor(args) as pool:
        report = check_archive(objects, worker_path(args, args.archive),
                               executor=pool, jobs=args.jobs, progress=progress(args))
    for k in report.kernels:
        if k.error is not None:
            print(f"corebpf: skipped {k.path}: {k.error}", file=sys.stderr)
    if args.json:
        import json

        json.dump(report.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(report))
    if args.html:
        from ..archive.report_html import render_html

        with open(args.html, "w", encoding="utf-8") as f:
            f.write(render_html(report))
    return report.exit_code(strict=args.strict)
