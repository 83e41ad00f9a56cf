"""The ``corebpf`` command: argparse over the public API, no logic of its own."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import Error

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, with the terminal width read the way shutil reads it but
    without importing shutil (and bz2, lzma, fnmatch with it) on every start-up:
    argparse builds a formatter for each add_argument."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None):
        if width is None:
            try:
                width = int(os.environ["COLUMNS"])
            except (KeyError, ValueError):
                try:
                    out = sys.__stdout__
                    width = os.get_terminal_size(out.fileno() if out else 1).columns
                except (AttributeError, ValueError, OSError):
                    width = 80
            width -= 2
        super().__init__(prog, indent_increment, max_help_position, width)


def seconds_arg(text: str) -> float:
    """argparse type for durations: a finite, non-negative number of seconds (a usage
    error otherwise: -1 would end at once, nan never)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a finite number of seconds "
                                         ">= 0")
    return value


class _Parser(argparse.ArgumentParser):
    """Every (sub)parser formats with :class:`_Formatter` (subparsers take the parent's
    class)."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


#: Every command, in ``corebpf --help``'s order: (the command words it adds, its module
#: under corebpf.cli, the function of that module that adds them). Only the entries that
#: name the command word typed are imported and built (a start-up costs one command's
#: modules, not every command's); ``--help``, no word or an unknown one build them all.
#: A new command is one line here.
COMMANDS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("btf",), "btf", "register"),
    (("core",), "core", "register"),
    (("obj",), "core", "register_obj"),
    (("check",), "check", "register"),
    (("gen",), "gen", "register"),
    (("archive",), "archive", "register"),
    (("run",), "run", "register"),
    (("build",), "build", "register"),
    (("tool",), "tool", "register"),
    (("serve",), "serve", "register"),
    # prog, map, link, and btf's list/show/dump id (added to `btf` when it is built)
    (("prog", "map", "link", "btf"), "inspect", "register"),
    (("cache",), "cache", "register"),
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``command`` (a known command word) only that command's
    subparser beside the top-level options."""
    parser = _Parser(
        prog="corebpf", description="Portable eBPF in pure Python: BTF, CO-RE, loading."
    )
    parser.add_argument("--version", action="version", version=f"corebpf {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                prog="corebpf")
    for words, module, func in COMMANDS:
        if command is None or command in words:
            name = f"{__name__}.{module}"
            __import__(name)
            getattr(sys.modules[name], func)(sub)
    return parser


def _command_word(args: Sequence[str]) -> str | None:
    """The command word when it is the first argument and a known one (else None: the
    whole parser, for --help, --version and argparse's own error messages)."""
    if args and any(args[0] in words for words, _, _ in COMMANDS):
        return args[0]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        if argv is None:
            # The process ends next: its objects become the permanent generation, so
            # that the interpreter's collections at exit skip them (3 ms of a 40 ms
            # `corebpf core relocate`). Not when called with arguments (tests, embedders).
            import gc

            gc.freeze()


def _main(args_in: list[str]) -> int:
    if args_in[:1] == ["tool"]:  # before building every subcommand's parser
        from .tool import main as tool_main

        return tool_main(args_in[1:])
    parser = build_parser(_command_word(args_in))
    args = parser.parse_args(args_in)
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


__all__ = ["COMMANDS", "build_parser", "main", "seconds_arg"]
