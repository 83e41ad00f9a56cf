"""execsnoop: every exec() with its parent, return value and arguments, as libbpf-tools'
execsnoop prints it."""

from __future__ import annotations

import argparse
import time

from ..skeleton import field_bytes
from .base import Compat, Tool, add_cgroup, c_int
from .hist import strftime_now

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from .objects.execsnoop_skel import Event
    from .objects.execsnoop_skel import Execsnoop as Skel

MAX_ARGS_LIMIT = 60
_QUOTED = {ord('"'): '\\"', ord("\t"): "\\t", ord("\n"): "\\n"}


_uid = c_int("Invalid UID {}", 0, 0xFFFFFFFE)
_max_args = c_int(f"Invalid MAX_ARGS {{}}, should be in [1, {MAX_ARGS_LIMIT}] range", 1,
                  MAX_ARGS_LIMIT, lenient=True)


class Execsnoop(Tool):
    name = "execsnoop"
    doc = "Trace exec syscalls"
    examples = """\
EXAMPLES:
   ./execsnoop           # trace all exec() syscalls
   ./execsnoop -x        # include failed exec()s
   ./execsnoop -T        # include time (HH:MM:SS)
   ./execsnoop -U        # include UID
   ./execsnoop -u 1000   # only trace UID 1000
   ./execsnoop -t        # include timestamps
   ./execsnoop -q        # add "quotemarks" around arguments
   ./execsnoop -n main   # only print command lines containing "main"
   ./execsnoop -l tpkg   # only print command where arguments contains "tpkg"
   ./execsnoop -c CG     # Trace process under cgroupsPath CG"""

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("-T", "--time", action="store_true",
                       help="include time column on output (HH:MM:SS)")
        p.add_argument("-t", "--timestamp", action="store_true",
                       help="include timestamp on output")
        p.add_argument("-x", "--fails", action="store_true", help="include failed exec()s")
        p.add_argument("-u", "--uid", type=_uid, metavar="UID", help="trace this UID only")
        p.add_argument("-q", "--quote", action="store_true",
                       help='Add quotemarks (") around arguments')
        p.add_argument("-n", "--name", metavar="NAME",
                       help="only print commands matching this name, any arg")
        p.add_argument("-l", "--line", metavar="LINE",
                       help="only print commands where arg contains this line")
        p.add_argument("-U", "--print-uid", action="store_true", help="print UID column")
        p.add_argument("--max-args", type=_max_args, default=20, metavar="MAX_ARGS",
                       help="maximum number of arguments parsed and displayed, defaults "
                       "to 20")
        add_cgroup(p)

    def open(self) -> Skel:
        from .objects import execsnoop_skel

        return execsnoop_skel.Execsnoop()

    def configure(self, skel: Skel, compat: Compat) -> None:
        a = self.args
        skel.rodata.ignore_failed = not a.fails
        skel.rodata.max_args = a.max_args
        if a.uid is not None:
            skel.rodata.targ_uid = a.uid

    def header(self) -> None:
        a = self.args
        if a.json:
            return
        h = ""
        if a.time:
            h += f"{'TIME':<9}"
        if a.timestamp:
            h += f"{'TIME(s)':<8} "
        if a.print_uid:
            h += f"{'UID':<6} "
        self.emit(h + f"{'PCOMM':<16} {'PID':<6} {'PPID':<6} {'RET':>3} ARGS\n")

    def _args(self, ev: Event) -> tuple[list[str], bool]:
        raw = field_bytes(ev, "args", ev.args_size)
        parts = raw.split(b"\0")
        if parts and parts[-1] == b"":
            parts.pop()
        return ([p.decode("utf-8", "replace") for p in parts],
                ev.args_count == self.args.max_args + 1)

    def event(self, ev: Event) -> None:
        a = self.args
        comm = ev.comm
        if a.name and a.name not in comm:
            return
        if a.line:
            if a.line.encode() not in field_bytes(ev, "args", ev.args_size):
                return
        if a.json:
            args, more = self._args(ev)
            row: dict[str, Any] = {}
            if a.time:
                row["time"] = strftime_now()
            if a.timestamp:
                row["timestamp"] = round(time.monotonic() - self.start, 3)
            row.update(uid=ev.uid, pcomm=comm, pid=ev.pid, ppid=ev.ppid, ret=ev.retval,
                       args=args, truncated=more)
            self.emit_json(row)
            return
        line = ""
        if a.time:
            line += f"{strftime_now():<8} "
        if a.timestamp:
            line += f"{time.monotonic() - self.start:<8.3f}"
        if a.print_uid:
            line += f"{ev.uid:<6}"
        raw = field_bytes(ev, "args", ev.args_size)
        if a.quote:
            text = self._quoted(raw, ev.args_count)
        else:
            count = ev.args_count
            if raw.count(b"\0") > count:  # the C loop stops after args_count strings
                raw = b"\0".join(raw.split(b"\0")[:count]) + b"\0"
            text = raw.replace(b"\0", b" ").decode("utf-8", "replace")
        if ev.args_count == a.max_args + 1:
            text += " ..."
        self.emit(f"{comm:<16} {ev.pid:<6} {ev.ppid:<6} {ev.retval:>3} {text}\n"
                  if not line else
                  f"{line}{comm:<16} {ev.pid:<6} {ev.ppid:<6} {ev.retval:>3} {text}\n")

    @staticmethod
    def _quoted(raw: bytes, args_count: int) -> str:
        out = ['"']
        counter = 0
        for ch in raw:
            if counter >= args_count:
                break
            if ch == 0:
                counter += 1
                out.append('" ')
                if counter < args_count:
                    out.append('"')
            else:
                out.append(_QUOTED.get(ch) or chr(ch))
        return "".join(out).encode("latin-1", "replace").decode("utf-8", "replace")


TOOL = Execsnoop
