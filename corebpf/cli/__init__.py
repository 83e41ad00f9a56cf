"""The ``corebpf`` command: argparse over the public API, no logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import Error
from . import archive as archive_cmd
from . import btf as btf_cmd
from . import check as check_cmd
from . import core as core_cmd
from . import gen as gen_cmd
from . import run as run_cmd


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corebpf", description="Portable eBPF in pure Python: BTF, CO-RE, loading."
    )
    parser.add_argument("--version", action="version", version=f"corebpf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    btf_cmd.register(sub)
    core_cmd.register(sub)
    core_cmd.register_obj(sub)
    check_cmd.register(sub)
    gen_cmd.register(sub)
    archive_cmd.register(sub)
    run_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except Error as e:
        print(f"corebpf: error: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error; keep Python quiet at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


__all__ = ["build_parser", "main"]
