"""runqlat: run queue (scheduler) latency as log2 histograms, printed and cleared every
interval, as libbpf-tools' runqlat prints them.

Differences from the C tool, on purpose: a third positional argument, an unknown option or
a bad -p/interval/count end with argparse's usage error (exit 2, argp exits 64); a negative
interval waits for Ctrl-C (the C tool passes it to sleep() as a huge unsigned number).
"""

from __future__ import annotations

import argparse

from .base import Compat, Tool, ToolError, add_cgroup, strtol
from .hist import log2_hists_report, take_all

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from .objects.runqlat_skel import Runqlat as Skel

#: libbpf-tools' runqlat keeps 26 slots (the last one also counts anything longer)
SLOTS = 26
#: the key of the one histogram when nothing splits them
ALL = 0xFFFFFFFF


def _pid(text: str) -> int:
    return strtol(text, f"invalid PID: {text}")


def _s32(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


class Runqlat(Tool):
    name = "runqlat"
    doc = "Summarize run queue (scheduler) latency as a histogram."
    events = False
    interval_args = True
    examples = """\
USAGE: runqlat [--help] [-T] [-m] [--pidnss] [-L] [-P] [-p PID] [interval]
[count] [-c CG]

EXAMPLES:
    runqlat         # summarize run queue latency as a histogram
    runqlat 1 10    # print 1 second summaries, 10 times
    runqlat -mT 1   # 1s summaries, milliseconds, and timestamps
    runqlat -P      # show each PID separately
    runqlat -p 185  # trace PID 185 only
    runqlat -c CG   # Trace process under cgroupsPath CG"""

    #: the tracepoints whose programs come as tp_btf (*_btf) and raw_tp (*_raw) variants
    HOOKS = ("sched_wakeup", "sched_wakeup_new", "sched_switch")

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        add_cgroup(p)
        p.add_argument("-L", "--tids", action="store_true",
                       help="Print a histogram per thread ID")
        p.add_argument("-m", "--milliseconds", action="store_true",
                       help="Millisecond histogram")
        p.add_argument("--pidnss", action="store_true",
                       help="Print a histogram per PID namespace")
        p.add_argument("-p", "--pid", type=_pid, default=0, metavar="PID",
                       help="Trace this PID only")
        p.add_argument("-P", "--pids", action="store_true",
                       help="Print a histogram per process ID")
        p.add_argument("-T", "--timestamp", action="store_true",
                       help="Include timestamp on output")

    def open(self) -> Skel:
        from .objects import runqlat_skel

        return runqlat_skel.Runqlat()

    def configure(self, skel: Skel, compat: Compat) -> None:
        a = self.args
        if sum((a.tids, a.pids, a.pidnss)) > 1:
            raise ToolError("pidnss, pids, tids cann't be used together.")
        skel.rodata.targ_per_process = a.pids
        skel.rodata.targ_per_thread = a.tids
        skel.rodata.targ_per_pidns = a.pidnss
        skel.rodata.targ_ms = a.milliseconds
        skel.rodata.targ_tgid = a.pid & 0xFFFFFFFF
        self.choose_tp_btf(skel, compat, self.HOOKS)

    def header(self) -> None:
        a = self.args
        if not a.json:
            self.emit("Tracing run queue latency... Hit Ctrl-C to end.\n")

    def _label(self, key: int, comm: str) -> tuple[str, dict[str, Any]]:
        a = self.args
        if a.pids:
            return f"\npid = {_s32(key)} {comm}\n", {"pid": _s32(key), "comm": comm}
        if a.tids:
            return f"\ntid = {_s32(key)} {comm}\n", {"tid": _s32(key), "comm": comm}
        if a.pidnss:
            return f"\npidns = {key} {comm}\n", {"pidns": key, "comm": comm}
        return "", {}

    def interval(self) -> bool:
        a = self.args
        hists = [(*self._label(k, h.comm), list(h.slots))
                 for k, h in take_all(self.skel.maps.hists)]
        self.emit(log2_hists_report(hists, "msecs" if a.milliseconds else "usecs",
                                    timestamp=a.timestamp, as_json=a.json))
        return True


TOOL = Runqlat
