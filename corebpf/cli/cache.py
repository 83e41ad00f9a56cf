"""``corebpf cache info|clear``: what corebpf keeps under ~/.cache/corebpf (corebpf.cache)."""

from __future__ import annotations

import argparse
import sys

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

def register(sub: Any) -> None:
    from ..cache import KINDS

    p = sub.add_parser(
        "cache", help="show or clear corebpf's cache (BTF indexes, kernel BTF copies, "
        "BTF service answers)",
        description="corebpf keeps BTF type indexes, a copy of the kernel's sysfs BTF per "
        "boot and BTF service answers under $COREBPF_CACHE_DIR, else "
        "$XDG_CACHE_HOME/corebpf (~/.cache/corebpf). Entries of files that changed or "
        "vanished and earlier boots' copies are pruned, and the whole is capped "
        "(COREBPF_CACHE_SIZE, default 256M; least recently used first). COREBPF_NO_CACHE=1 "
        "turns it off.")
    csub = p.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    info = csub.add_parser("info", help="location, cap, entries and bytes per kind, stale "
                           "entries")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)
    clear = csub.add_parser("clear", help="remove cached entries (all kinds, or --kind)",
                            description="Remove the cache's entries: every kind, or those "
                            "of --kind; with --stale only stale ones. corebpf serve's own "
                            "store is never touched.")
    clear.add_argument("--kind", action="append", choices=list(KINDS), metavar="KIND",
                       help=f"only this kind (repeatable): {', '.join(KINDS)}")
    clear.add_argument("--stale", action="store_true", help="only stale entries (their "
                       "file changed or vanished, an earlier boot's, an older format)")
    clear.add_argument("--json", action="store_true", help="print JSON")
    clear.set_defaults(func=run_clear)


def _entries(n: int, what: str = "") -> str:
    return f"{n} {what}{'entry' if n == 1 else 'entries'}"


def run_info(args: argparse.Namespace) -> int:
    from ..cache import format_size, info

    got = info()
    if args.json:
        import json

        json.dump(got.to_json(), sys.stdout, indent=1)
        print()
        return 0
    cap = format_size(got.cap) if got.cap else "none"
    print(f"cache: {got.root}" + ("" if got.enabled else " (off: COREBPF_NO_CACHE is set)"))
    print(f"size: {format_size(got.bytes)} in {_entries(got.entries)}; cap {cap}; stale: "
          f"{_entries(got.stale_entries)}, {format_size(got.stale_bytes)}")
    rows = [("KIND", "ENTRIES", "BYTES", "STALE", "STALE BYTES", "WHAT")]
    for k in got.kinds:
        what = k.description if k.managed else f"{k.description}; not managed here"
        rows.append((k.kind, str(k.entries), format_size(k.bytes), str(k.stale_entries),
                     format_size(k.stale_bytes), what))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        cells = [r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, 5)]
        print("  ".join([*cells, r[5]]))
    return 0


def run_clear(args: argparse.Namespace) -> int:
    from ..cache import clear, format_size

    done = clear(args.kind, stale_only=args.stale)
    if args.json:
        import json

        json.dump(done.to_json(), sys.stdout, indent=1)
        print()
        return 0
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(done.entries.items()))
    print(f"removed {_entries(done.total_entries, 'stale ' if args.stale else '')} "
          f"({format_size(done.total_bytes)})" + (f": {kinds}" if kinds else "")
          + f"; {format_size(done.remaining)} left")
    return 0
