"""Options shared by the commands that map work over many kernels (check, archive, gen):
how many worker processes, and whether to draw the progress bar."""

from __future__ import annotations

import argparse


def positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def add_pool_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=positive, metavar="N",
                   help="worker processes (default: one per CPU; 1 runs in this process)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def progress(args: argparse.Namespace) -> bool | None:
    """map_kernels' ``progress``: off when asked, else on a terminal."""
    return False if args.no_progress else None
