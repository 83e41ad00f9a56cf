"""biolatency: block I/O latency (issue, or with -Q insertion, to completion) as log2
histograms, per disk and per set of request flags if asked, printed and cleared every
interval as libbpf-tools' biolatency prints them.

Differences from the C tool, on purpose: ``-d`` with a name missing from /proc/partitions
exits 1 (the C tool prints the same message but exits 0); a third positional argument, an
unknown option or a bad interval/count end with argparse's usage error (exit 2; argp exits
64). Both -D and -d are ``--disk`` in the C tool, where glibc's getopt_long takes
``--disk`` as -D: here too, and -d has only its short name.
"""

from __future__ import annotations

import argparse

from .base import Compat, Tool, ToolError, add_cgroup
from .hist import log2_hists_report, take_all

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from .objects.biolatency_skel import Biolatency as Skel

SLOTS = 27
DISK_NAME_LEN = 32
MINORBITS = 20
PARTITIONS = "/proc/partitions"

#: print_cmd_flags: the request flag bits in the C tool's order (its blk_types.h, 5.x)
FLAG_NAMES = (
    (1 << 21, "NoWait-"), (1 << 20, "Background-"), (1 << 19, "ReadAhead-"),
    (1 << 18, "PreFlush-"), (1 << 17, "FUA-"), (1 << 16, "Integrity-"), (1 << 15, "Idle-"),
    (1 << 14, "NoMerge-"), (1 << 13, "Priority-"), (1 << 12, "Metadata-"), (1 << 11, "Sync-"),
)
#: the C tool's ops table (36 entries, holes print as glibc's "(null)")
OPS = {0: "Read", 1: "Write", 2: "Flush", 3: "Discard", 5: "SecureErase", 6: "ZoneReset",
       7: "WriteSame", 8: "ZoneResetAll", 9: "WriteZeroes", 10: "ZoneOpen", 11: "ZoneClose",
       12: "ZoneFinish", 32: "SCSIIn", 33: "SCSIOut", 34: "DrvIn", 35: "DrvOut"}
N_OPS = 36
REQ_OP_MASK = 0xFF


def cmd_flags_text(flags: int) -> str:
    """print_cmd_flags without its ``flags = `` prefix."""
    text = "".join(name for bit, name in FLAG_NAMES if flags & bit)
    op = flags & REQ_OP_MASK
    return text + (OPS.get(op, "(null)") if op < N_OPS else "Unknown")


def partitions(path: str = PARTITIONS) -> dict[str, int]:
    """/proc/partitions as libbpf-tools' partitions__load reads it: name -> dev, with the
    kernel's 20 minor bits (MKDEV as the BPF side computes it)."""
    out: dict[str, int] = {}
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        raise ToolError("failed to load partitions info") from None
    for line in lines:
        if not line.startswith(" "):
            continue
        parts = line.split()
        if len(parts) != 4 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        out.setdefault(parts[3], int(parts[0]) << MINORBITS | int(parts[1]))
    return out


def _disk(text: str) -> str:
    if len(text) + 1 > DISK_NAME_LEN:
        raise argparse.ArgumentTypeError("invaild disk name: too long")  # sic
    return text


class Biolatency(Tool):
    name = "biolatency"
    doc = "Summarize block device I/O latency as a histogram."
    events = False
    interval_args = True
    examples = """\
USAGE: biolatency [--help] [-T] [-m] [-Q] [-D] [-F] [-d DISK] [-c CG]
[interval] [count]

EXAMPLES:
    biolatency              # summarize block I/O latency as a histogram
    biolatency 1 10         # print 1 second summaries, 10 times
    biolatency -mT 1        # 1s summaries, milliseconds, and timestamps
    biolatency -Q           # include OS queued time in I/O time
    biolatency -D           # show each disk device separately
    biolatency -F           # show I/O flags separately
    biolatency -d sdc       # Trace sdc only
    biolatency -c CG        # Trace process under cgroupsPath CG"""

    HOOKS = ("block_rq_insert", "block_rq_issue", "block_rq_complete")

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        add_cgroup(p)
        p.add_argument("-d", type=_disk, dest="disk", metavar="DISK",
                       help="Trace this disk only")
        p.add_argument("-D", "--disk", action="store_true", dest="per_disk",
                       help="Print a histogram per disk device")
        p.add_argument("-F", "--flag", action="store_true",
                       help="Print a histogram per set of I/O flags")
        p.add_argument("-m", "--milliseconds", action="store_true",
                       help="Millisecond histogram")
        p.add_argument("-Q", "--queued", action="store_true",
                       help="Include OS queued time in I/O time")
        p.add_argument("-T", "--timestamp", action="store_true",
                       help="Include timestamp on output")

    def open(self) -> Skel:
        from .objects import biolatency_skel

        return biolatency_skel.Biolatency()

    def configure(self, skel: Skel, compat: Compat) -> None:
        a = self.args
        self.parts = partitions()
        self.names = {dev: name for name, dev in reversed(self.parts.items())}
        if a.disk is not None:
            if a.disk not in self.parts:
                raise ToolError("invaild partition name: not exist")  # sic
            skel.rodata.filter_dev = True
            skel.rodata.targ_dev = self.parts[a.disk]
        skel.rodata.targ_per_disk = a.per_disk
        skel.rodata.targ_per_flag = a.flag
        skel.rodata.targ_ms = a.milliseconds
        skel.rodata.targ_queued = a.queued
        # libbpf-tools: tp_btf if probe_tp_btf("block_rq_insert"); insert only with -Q
        self.choose_tp_btf(skel, compat, self.HOOKS,
                       skip=() if a.queued else ("block_rq_insert",))

    def header(self) -> None:
        a = self.args
        if not a.json:
            self.emit("Tracing block device I/O... Hit Ctrl-C to end.\n")

    def interval(self) -> bool:
        a = self.args
        hists = []
        for k, h in take_all(self.skel.maps.hists):
            label = ""
            keys: dict[str, Any] = {}
            if a.per_disk:
                disk = self.names.get(k.dev, "Unknown")
                label += f"\ndisk = {disk}\t"
                keys["disk"] = disk
            if a.flag:
                label += f"flags = {cmd_flags_text(k.cmd_flags)}"
                keys.update(flags=cmd_flags_text(k.cmd_flags), cmd_flags=k.cmd_flags)
            hists.append((label + "\n", keys, list(h.slots)))
        self.emit(log2_hists_report(hists, "msecs" if a.milliseconds else "usecs",
                                    timestamp=a.timestamp, as_json=a.json))
        return True


TOOL = Biolatency
