"""sigsnoop: signals as they are generated (or, with ``-k``, the kill(2), tkill(2) and
tgkill(2) calls and their results), as libbpf-tools' sigsnoop (Debian's 0.26) prints
them."""

from __future__ import annotations

import argparse

from .base import Compat, Tool, ToolError, c_int
from .hist import strftime_now

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable

    from .objects.sigsnoop_skel import Event
    from .objects.sigsnoop_skel import Sigsnoop as Skel

#: the C tool's table, x86 numbering whatever the architecture (as it prints them)
SIG_NAMES = (
    "N/A", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
    "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
    "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
    "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
)
KILL_CALLS = ("kill", "tkill", "tgkill")


def _positive(what: str) -> Callable[[str], int]:
    return c_int(f"Invalid {what}: {{}}", 1, lenient=True)


def sig_name(sig: int) -> str | None:
    return SIG_NAMES[sig] if 0 <= sig < len(SIG_NAMES) else None


class Sigsnoop(Tool):
    name = "sigsnoop"
    doc = "Trace standard and real-time signals."
    examples = """\
EXAMPLES:
    sigsnoop             # trace signals system-wide
    sigsnoop -k          # trace signals issued by kill syscall only
    sigsnoop -x          # trace failed signals only
    sigsnoop -p 1216     # only trace PID 1216
    sigsnoop -s 9        # only trace signal 9"""

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        p.add_argument("-k", "--kill", action="store_true",
                       help="Trace signals issued by kill syscall only.")
        p.add_argument("-n", "--name", action="store_true",
                       help="Output signal name instead of signal number.")
        p.add_argument("-p", "--pid", type=_positive("PID"), metavar="PID",
                       help="Process ID to trace")
        p.add_argument("-s", "--signal", type=_positive("SIGNAL"), metavar="SIGNAL",
                       help="Signal to trace.")
        p.add_argument("-x", "--failed", action="store_true",
                       help="Trace failed signals only.")

    def open(self) -> Skel:
        from .objects import sigsnoop_skel

        return sigsnoop_skel.Sigsnoop()

    def configure(self, skel: Skel, compat: Compat) -> None:
        a = self.args
        if a.pid:
            skel.rodata.filtered_pid = a.pid
        if a.signal:
            skel.rodata.target_signal = a.signal
        skel.rodata.failed_only = a.failed
        if not a.kill:
            for call in KILL_CALLS:
                skel.progs[f"{call}_entry"].autoload = False
                skel.progs[f"{call}_exit"].autoload = False
            self.choose(skel, [("sig_trace", compat.tracepoint("signal", "signal_generate"))],
                        "generated signals")
            return
        skel.progs.sig_trace.autoload = False
        traced = []
        for call in KILL_CALLS:
            # each pair separately: an architecture may lack one of the three calls
            on = compat.tracepoint("syscalls", f"sys_enter_{call}")
            skel.progs[f"{call}_entry"].autoload = on
            skel.progs[f"{call}_exit"].autoload = on
            if on:
                traced.append(call)
        if not traced:
            raise ToolError(f"{self.name}: no syscalls/sys_enter_{{kill,tkill,tgkill}} "
                            "tracepoint on this kernel")
        self.verbose(f"kill syscalls: tracing {', '.join(traced)}")

    def header(self) -> None:
        if not self.args.json:
            self.emit(f"{'TIME':<8} {'PID':<7} {'COMM':<16} {'SIG':<9} {'TPID':<7} "
                      f"{'RESULT':<6}\n")

    def event(self, ev: Event) -> None:
        ts = strftime_now()
        sig = ev.sig
        if self.args.json:
            self.emit_json({"time": ts, "pid": ev.pid, "comm": ev.comm, "sig": sig,
                            "signame": sig_name(sig), "tpid": ev.tpid, "ret": ev.ret})
            return
        shown: str | int = sig
        if self.args.name and sig < 32:
            shown = SIG_NAMES[sig] if sig >= 0 else sig
        self.emit(f"{ts:<8} {ev.pid:<7} {ev.comm:<16} {shown:<9} {ev.tpid:<7} {ev.ret:<6}\n")


TOOL = Sigsnoop
