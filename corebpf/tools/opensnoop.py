"""opensnoop: open() and openat() calls with their fd or error, as libbpf-tools'
opensnoop (Debian's 0.26) prints them.

0.26 never traced openat2(); to give the same rows on the same workload it is off here
too, and ``--openat2`` turns it on (as newer libbpf-tools always do). ``-d/--duration``
is the C tool's (whole seconds, > 0)."""

from __future__ import annotations

import argparse

from .base import Compat, Tool, c_int
from .hist import strftime_now

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from .objects.opensnoop_skel import Event
    from .objects.opensnoop_skel import Opensnoop as Skel

INVALID_UID = 0xFFFFFFFF


def _positive(what: str) -> Callable[[str], int]:
    return c_int(f"Invalid {what}: {{}}", 1, lenient=True)


# strtol: no digits is 0, a valid uid, as in the C tool
_uid = c_int("Invalid UID {}", 0, INVALID_UID - 1, lenient=True)


class Opensnoop(Tool):
    name = "opensnoop"
    doc = "Trace open family syscalls"
    owns_duration = True
    examples = """\
EXAMPLES:
    ./opensnoop           # trace all open() syscalls
    ./opensnoop -T        # include timestamps
    ./opensnoop -U        # include UID
    ./opensnoop -x        # only show failed opens
    ./opensnoop -p 181    # only trace PID 181
    ./opensnoop -t 123    # only trace TID 123
    ./opensnoop -u 1000   # only trace UID 1000
    ./opensnoop -d 10     # trace for 10 seconds only
    ./opensnoop -n main   # only print process names containing "main"
    ./opensnoop -e        # show extended fields"""

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("-d", "--duration", type=_positive("duration"), metavar="DURATION",
                       help="Duration to trace")
        p.add_argument("-e", "--extended-fields", action="store_true",
                       help="Print extended fields")
        p.add_argument("-n", "--name", metavar="NAME",
                       help="Trace process names containing this")
        p.add_argument("-p", "--pid", type=_positive("PID"), metavar="PID",
                       help="Process ID to trace")
        p.add_argument("-t", "--tid", type=_positive("TID"), metavar="TID",
                       help="Thread ID to trace")
        p.add_argument("-T", "--timestamp", action="store_true", help="Print timestamp")
        p.add_argument("-u", "--uid", type=_uid, metavar="UID", help="User ID to trace")
        p.add_argument("-U", "--print-uid", action="store_true", help="Print UID")
        p.add_argument("-x", "--failed", action="store_true", help="Failed opens only")
        p.add_argument("--openat2", action="store_true",
                       help="also trace openat2() (libbpf-tools after 0.26 do)")
        # the C tool takes one positional argument and ignores it
        p.add_argument("ignored", nargs="?", help=argparse.SUPPRESS)

    def open(self) -> Skel:
        from .objects import opensnoop_skel

        return opensnoop_skel.Opensnoop()

    def configure(self, skel: Skel, compat: Compat) -> None:
        a = self.args
        if a.pid:
            skel.rodata.targ_tgid = a.pid
        if a.tid:
            skel.rodata.targ_pid = a.tid
        skel.rodata.targ_uid = INVALID_UID if a.uid is None else a.uid
        skel.rodata.targ_failed = a.failed
        for call, wanted in (("open", True), ("openat2", a.openat2)):
            have = compat.tracepoint("syscalls", f"sys_enter_{call}")
            on = have and wanted
            for side in ("enter", "exit"):
                skel.progs[f"tracepoint__syscalls__sys_{side}_{call}"].autoload = on
            why = ("no tracepoint syscalls/sys_enter_" + call if not have else
                   "as 0.26; --openat2 traces it" if not on else "tracepoints")
            self.verbose(f"{call}(): {'traced' if on else 'not traced'} ({why})")

    def header(self) -> None:
        a = self.args
        if a.json:
            return
        h = ""
        if a.timestamp:
            h += f"{'TIME':<8} "
        if a.print_uid:
            h += f"{'UID':<7} "
        h += f"{'PID':<6} {'COMM':<16} {'FD':>3} {'ERR':>3} "
        if a.extended_fields:
            h += f"{'FLAGS':<8} "
        self.emit(h + "PATH\n")

    def event(self, ev: Event) -> None:
        a = self.args
        comm = ev.comm
        if a.name and a.name not in comm:
            return
        ret = ev.ret
        fd, err = (ret, 0) if ret >= 0 else (-1, -ret)
        if a.json:
            row: dict[str, Any] = {}
            if a.timestamp:
                row["time"] = strftime_now()
            row.update(pid=ev.pid, tid=ev.tid, uid=ev.uid, comm=comm, fd=fd, err=err,
                       flags=ev.flags, mode=ev.mode, path=ev.fname)
            self.emit_json(row)
            return
        line = ""
        if a.timestamp:
            line += f"{strftime_now():<8} "
        if a.print_uid:
            line += f"{ev.uid:<7} "
        line += f"{ev.pid:<6} {comm:<16} {fd:>3} {err:>3} "
        if a.extended_fields:
            line += f"{ev.flags & 0xFFFFFFFF:08o} "
        self.emit(f"{line}{ev.fname}\n")


TOOL = Opensnoop
