"""syscount: system calls counted (and timed with -L) per syscall or per process, printed
at Ctrl-C or every interval, as libbpf-tools' syscount prints them.

Syscall names come from :mod:`corebpf.tools.syscall_names`: on x86_64 the C tool's own
table (so the same numbers print as ``[unknown: N]``); on arm64 the kernel's table, where
the C tool without ``ausyscall`` names nothing. ``-e`` takes an errno number or a name
from Python's errno module (the C tool's built-in names, without its ``errno -l``
fallback). ``-d/--duration`` is the C tool's (whole seconds, > 0).
"""

from __future__ import annotations

import argparse
import platform
import sys

from .base import INT_MAX, Compat, Tool, ToolError, add_cgroup, c_int
from .hist import strftime_now

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from .objects.syscount_skel import DataT
    from .objects.syscount_skel import Syscount as Skel

def syscall_table(machine: str | None = None) -> dict[int, str]:
    """Number -> name on this machine's architecture (empty when unknown)."""
    from .syscall_names import TABLES

    return TABLES.get(machine or platform.machine(), {})


def syscall_name(table: dict[int, str], nr: int) -> str:
    name = table.get(nr)
    return name[:31] if name else f"[unknown: {nr}]"


_pid = c_int("invalid PID: {}", 1, INT_MAX)
_interval = c_int("invalid INTERVAL: {}", 0, INT_MAX)
_duration = c_int("invalid DURATION: {}", 1, INT_MAX)
_top = c_int("invalid TOP: {}", 1, INT_MAX)


def _errno(text: str) -> int:
    import errno

    try:
        v = int(text, 10)
        if 0 < v <= INT_MAX:
            return v
    except ValueError:
        v = getattr(errno, text, 0) if text.startswith("E") else 0
        if isinstance(v, int) and v > 0:
            return v
    raise argparse.ArgumentTypeError(
        f"invalid errno: {text} (bad, or can't parse dynamically; consider using numeric "
        "value and/or installing the errno program from moreutils)")


class _List(argparse.Action):
    """-l: every known syscall, then exit (as --help does)."""

    def __init__(self, option_strings: list[str], dest: str, **kw: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        sys.stdout.write("".join(f"{n:3d}: {s}\n" for n, s in sorted(syscall_table().items())))
        parser.exit(0)


class Syscount(Tool):
    name = "syscount"
    doc = "syscount: summarize syscall counts and latencies"
    events = False
    owns_duration = True
    examples = """\
EXAMPLES:
    syscount                 # print top 10 syscalls by count every second
    syscount -p $(pidof dd)  # look only at a particular process
    syscount -L              # measure and sort output by latency
    syscount -P              # group statistics by pid, not by syscall
    syscount -x -i 5         # count only failed syscalls
    syscount -e ENOENT -i 5  # count only syscalls failed with a given errno
    syscount -c CG           # Trace process under cgroupsPath CG"""

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        add_cgroup(p, "/sys/fs/cgroup/unified/<CG>")
        p.add_argument("-d", "--duration", type=_duration, metavar="DURATION",
                       help="Total tracing duration (seconds)")
        p.add_argument("-e", "--errno", type=_errno, default=0, metavar="ERRNO",
                       help="Trace only syscalls that return this error(numeric or EPERM, "
                       "etc.)")
        p.add_argument("-i", "--interval", type=_interval, default=0, metavar="INTERVAL",
                       help="Print summary at this interval (seconds), 0 for infinite wait "
                       "(default)")
        p.add_argument("-l", "--list", action=_List,
                       help="Print list of recognized syscalls and exit")
        p.add_argument("-L", "--latency", action="store_true",
                       help="Collect syscall latency")
        p.add_argument("-m", "--milliseconds", action="store_true",
                       help="Display latency in milliseconds (default: microseconds)")
        p.add_argument("-p", "--pid", type=_pid, default=0, metavar="PID",
                       help="Process PID to trace")
        p.add_argument("-P", "--process", action="store_true",
                       help="Count by process and not by syscall")
        p.add_argument("-T", "--top", type=_top, default=10, metavar="TOP",
                       help="Print only the top syscalls (default 10)")
        p.add_argument("-x", "--failures", action="store_true",
                       help="Trace only failed syscalls")

    def open(self) -> Skel:
        from .objects import syscount_skel

        return syscount_skel.Syscount()

    def configure(self, skel: Skel, compat: Compat) -> None:
        a = self.args
        self._names = syscall_table()
        if a.pid:
            skel.rodata.filter_pid = a.pid
        if a.failures:
            skel.rodata.filter_failed = True
        if a.errno:
            skel.rodata.filter_errno = a.errno
        if a.latency:
            skel.rodata.measure_latency = True
        if a.process:
            skel.rodata.count_by_process = True
        for cat, name in (("raw_syscalls", "sys_exit"), ("raw_syscalls", "sys_enter")):
            if not compat.tracepoint(cat, name):
                raise ToolError(f"{self.name}: this kernel has no tracepoint {cat}/{name}")
        # entry times only feed latencies: the C tool attaches sys_enter only with -L
        skel.progs.sys_enter_tp.autoload = bool(a.latency)
        self.verbose("syscalls: sys_exit_tp" + (" and sys_enter_tp" if a.latency else ""))

    def header(self) -> None:
        a = self.args
        if not a.json:
            self.emit(f"Tracing syscalls, printing top {a.top}... Ctrl+C to quit.\n")

    def _take(self) -> list[tuple[int, DataT]]:
        """Everything counted since the last call, removed from the map."""
        skel: Skel = self.skel
        return list(skel.maps.data.map.lookup_batch(delete=True))

    def interval(self) -> bool:
        # interval 0: the base loop wakes only at the end (Ctrl-C, -d), the C tool's print
        a = self.args
        rows = self._take()
        if not rows:
            return True
        if a.latency:
            rows.sort(key=lambda kv: kv[1].total_ns, reverse=True)
        else:
            rows.sort(key=lambda kv: kv[1].count, reverse=True)
        rows = rows[:a.top]
        div = 1e6 if a.milliseconds else 1e3
        now = strftime_now()
        if a.json:
            out: list[dict[str, Any]] = []
            for key, v in rows:
                r: dict[str, Any] = ({"pid": key, "comm": v.comm} if a.process else
                                     {"syscall": syscall_name(self._names, key), "nr": key})
                r["count"] = v.count
                if a.latency:
                    r["time_ms" if a.milliseconds else "time_us"] = v.total_ns / div
                out.append(r)
            self.emit_json({"time": now, "rows": out})
            return True
        col = "PID    COMM" if a.process else "SYSCALL"
        text = [f"[{now}]\n"]
        if a.latency:
            text.append(f"{col:<22} {'COUNT':>8} "
                        f"{'TIME (ms)' if a.milliseconds else 'TIME (us)':>16}\n")
        else:
            text.append(f"{col:<22} {'COUNT':>8}\n")
        for key, v in rows:
            label = (f"{key:<6d} {v.comm:<15}"[:31] if a.process
                     else syscall_name(self._names, key))
            if a.latency:
                text.append(f"{label:<22} {v.count:>8d} {v.total_ns / div:>16.3f}\n")
            else:
                text.append(f"{label:<22} {v.count:>8d}\n")
        text.append("\n")
        self.emit("".join(text))
        return True


TOOL = Syscount
