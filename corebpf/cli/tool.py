"""``corebpf tool NAME [OPTIONS]``: the ready tools (execsnoop, opensnoop, ...).

Dispatched before the rest of the CLI is built: a tool's start-up is what its users time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

USAGE = "usage: corebpf tool [-h] [--list] NAME [OPTIONS...]"


def register(sub: Any) -> None:
    """For ``corebpf --help`` only: ``main`` runs ``corebpf tool`` before argparse."""
    p = sub.add_parser("tool", help="run a ready tool (execsnoop, opensnoop, runqlat, ...)",
                       description="Run a ready tool: the options, header and columns of "
                       "the libbpf-tools tool of the same name, on any kernel, with no "
                       "compiler. `corebpf tool --list` lists them; `corebpf tool NAME -h` "
                       "shows a tool's options.")
    p.add_argument("--list", action="store_true", help="list the tools")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.add_argument("options", nargs="...", metavar="OPTIONS")


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    if not args or args[0] in ("-h", "--help"):
        from ..tools import TOOLS

        print(USAGE)
        print("\nRun a ready tool on any kernel, with no compiler. Tools:")
        for name, what in sorted(TOOLS.items()):
            print(f"  {name:<14} {what}")
        print("\n`corebpf tool NAME -h` shows a tool's options.")
        return 0 if args else 2
    if args[0] == "--list":
        from ..tools import TOOLS

        for name, what in sorted(TOOLS.items()):
            print(f"{name:<14} {what}")
        return 0
    from ..errors import Error

    try:
        from ..tools.base import main as run_tool

        return run_tool(args[0], args[1:])
    except Error as e:
        print(f"corebpf tool: error: {e}", file=sys.stderr)
        return 2 if "no tool" in str(e) else 1
    except KeyboardInterrupt:
        return 130
