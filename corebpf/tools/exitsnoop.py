"""exitsnoop: every process (or, with ``-T``, thread) that ends, with its age and exit
code or killing signal, as libbpf-tools' exitsnoop prints it."""

from __future__ import annotations

import argparse
import signal

from .base import Compat, Tool, add_cgroup, c_int
from .hist import strftime_now

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from .objects.exitsnoop_skel import Event
    from .objects.exitsnoop_skel import Exitsnoop as Skel


_pid = c_int("Invalid PID: {}", 1, lenient=True)


def _signal_text(sig: int) -> str:
    """glibc's strsignal text, as the C tool prints it ("Unknown signal N" otherwise)."""
    try:
        return signal.strsignal(sig) or f"Unknown signal {sig}"
    except ValueError:
        return f"Unknown signal {sig}"


class Exitsnoop(Tool):
    name = "exitsnoop"
    doc = "Trace process termination."
    examples = """\
EXAMPLES:
    exitsnoop             # trace process exit events
    exitsnoop -t          # include timestamps
    exitsnoop -x          # trace error exits only
    exitsnoop -p 1216     # only trace PID 1216
    exitsnoop -T          # trace by thread
    exitsnoop -c CG       # Trace process under cgroupsPath CG"""

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        add_cgroup(p)
        p.add_argument("-p", "--pid", type=_pid, metavar="PID", help="Process ID to trace")
        p.add_argument("-t", "--timestamp", action="store_true",
                       help="Include timestamp on output")
        p.add_argument("-T", "--threaded", action="store_true", help="Trace by thread.")
        p.add_argument("-x", "--failed", action="store_true", help="Trace error exits only.")

    def open(self) -> Skel:
        from .objects import exitsnoop_skel

        return exitsnoop_skel.Exitsnoop()

    def configure(self, skel: Skel, compat: Compat) -> None:
        a = self.args
        if a.pid:
            skel.rodata.target_pid = a.pid
        skel.rodata.trace_failed_only = a.failed
        skel.rodata.trace_by_process = not a.threaded

    def header(self) -> None:
        a = self.args
        if a.json:
            return
        h = f"{'TIME(s)':<8} " if a.timestamp else ""
        self.emit(h + f"{'PCOMM':<16} {'PID':<7} {'PPID':<7} {'TID':<7} {'AGE(s)':<7} "
                  "EXIT_CODE\n")

    def event(self, ev: Event) -> None:
        a = self.args
        age = (ev.exit_time - ev.start_time) / 1e9
        sig, core = ev.sig & 0x7F, bool(ev.sig & 0x80)
        if a.json:
            row: dict[str, Any] = {}
            if a.timestamp:
                row["time"] = strftime_now()
            row.update(pcomm=ev.comm, pid=ev.pid, ppid=ev.ppid, tid=ev.tid, age=round(age, 9),
                       exit_code=ev.exit_code, sig=sig, core_dumped=core)
            if sig:
                row["signal"] = _signal_text(sig)
            self.emit_json(row)
            return
        line = f"{strftime_now():>8} " if a.timestamp else ""
        line += f"{ev.comm:<16} {ev.pid:<7} {ev.ppid:<7} {ev.tid:<7} {age:<7.2f} "
        if not ev.sig:
            line += "0" if not ev.exit_code else f"code {ev.exit_code}"
        else:
            if sig:
                line += f"signal {sig} ({_signal_text(sig)})"
            if core:
                line += ", core dumped"
        self.emit(line + "\n")


TOOL = Exitsnoop
