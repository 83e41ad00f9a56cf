"""bashreadline: every line an interactive bash reads (a uretprobe on readline()), as
libbpf-tools' bashreadline prints it.

Two fixes of 0.26 bugs: TIME is HH:MM:SS (0.26's format string has the month where the
minutes go, ``%H:%m:%S``), and a readline that cannot be found is an error (exit 1)
where 0.26 prints ``cound not find readline`` and exits 0."""

from __future__ import annotations

import argparse
import subprocess

from .base import Compat, Tool, ToolError
from .hist import strftime_now

TYPE_CHECKING = False

if TYPE_CHECKING:
    from .objects.bashreadline_skel import Bashreadline as Skel
    from .objects.bashreadline_skel import Event

BASH = "/bin/bash"
SYMBOL = "readline"


def _has_readline(path: str) -> bool:
    from ..errors import Error
    from ..perf_links import resolve_uprobe

    try:
        resolve_uprobe(path, SYMBOL)
    except Error:
        return False
    return True


def find_readline() -> str:
    """The file holding bash's readline(), found as the C tool finds it: /bin/bash
    itself when it exports readline, else the libreadline.so that ``ldd /bin/bash``
    names."""
    if _has_readline(BASH):
        return BASH
    try:
        out = subprocess.run(["ldd", BASH], capture_output=True, text=True, check=False).stdout
    except OSError:
        out = ""
    for line in out.splitlines():
        if "/libreadline.so" in line and "=>" in line:
            return line.split("=>", 1)[1].split()[0]
    raise ToolError("failed to find readline")


class Bashreadline(Tool):
    name = "bashreadline"
    doc = "Print entered bash commands from all running shells."
    examples = """\
EXAMPLES:
    bashreadline
    bashreadline -s /usr/lib/libreadline.so"""

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("-s", "--shared", metavar="PATH",
                       help="the location of libreadline.so library")

    def open(self) -> Skel:
        from .objects import bashreadline_skel

        return bashreadline_skel.Bashreadline()

    def configure(self, skel: Skel, compat: Compat) -> None:
        path = self.args.shared or find_readline()
        if not _has_readline(path):
            raise ToolError(f"could not find readline in {path}")
        # the section names /bin/bash:readline; another file is attached the same way
        skel.progs.printret.target = f"{path}:{SYMBOL}"
        self.verbose(f"readline: uretprobe on {path}:{SYMBOL}")

    def header(self) -> None:
        if not self.args.json:
            self.emit(f"{'TIME':<9} {'PID':<7} COMMAND\n")

    def event(self, ev: Event) -> None:
        ts = strftime_now()
        if self.args.json:
            self.emit_json({"time": ts, "pid": ev.pid, "command": ev.str})
            return
        self.emit(f"{ts:<9} {ev.pid:<7} {ev.str}\n")


TOOL = Bashreadline
