"""corebpf tool biolatency against libbpf-tools' biolatency on one workload: direct I/O
(O_DIRECT, page-aligned buffers) to a file on the root file system (vda here), each write
and read one request to the disk."""

from __future__ import annotations

import json
import mmap
import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from corebpf.tools.biolatency import cmd_flags_text, partitions

from .peer import Running, c_tool, corebpf_tool, live_links, side_by_side, tool_links

HEADER = r"^Tracing block device I/O\.\.\. Hit Ctrl-C to end\.$"
ROW = re.compile(r"^\s*(\d+) -> (\d+)\s+: (\d+)\s+\|")
BLOCK = 4096
IOS = 64  # direct writes, then as many direct reads


def root_disk() -> str:
    """The whole disk under / (vda here), as /proc/partitions names it."""
    st = os.stat("/")
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    try:
        real = os.path.realpath(f"/sys/dev/block/{major}:{minor}")
    except OSError:
        real = ""
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    name = os.path.basename(real)
    if not name or name not in partitions():
        pytest.skip("/ is not on a block device listed in /proc/partitions")
    return name


@contextmanager
def direct_file() -> Iterator[str]:
    """A file of IOS blocks on /, written and synced before the tools start, so that the
    workload's direct I/O overwrites allocated blocks (no allocation, no journal)."""
    fd, path = tempfile.mkstemp(prefix="corebpf-biolat-", dir="/var/tmp")
    try:
        os.write(fd, b"\xa5" * BLOCK * IOS)
        os.fsync(fd)
        os.close(fd)
        yield path
    finally:
        os.unlink(path)


def direct_io(path: str) -> None:
    buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT wants
    buf.write(b"\x5a" * BLOCK)
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    try:
        for i in range(IOS):
            assert os.pwritev(fd, [buf], i * BLOCK) == BLOCK
        for i in range(IOS):
            assert os.preadv(fd, [buf], i * BLOCK) == BLOCK
    finally:
        os.close(fd)
        buf.close()


def total(lines: list[str]) -> int:
    return sum(int(m.group(3)) for ln in lines if (m := ROW.match(ln)))


def labels(lines: list[str]) -> list[str]:
    return [ln for ln in lines if not ROW.match(ln)]


def per_label(lines: list[str]) -> dict[str, int]:
    """Label line (disk/flags) -> that histogram's total."""
    out: dict[str, int] = {}
    label = ""
    for ln in lines:
        m = ROW.match(ln)
        if m:
            out[label] = out.get(label, 0) + int(m.group(3))
        elif ln.startswith(("disk = ", "flags = ")):
            label = ln
    return out


def test_per_disk_agrees_with_libbpf_tools() -> None:
    disk = root_disk()
    with direct_file() as path:
        c, py, _ = side_by_side([*c_tool("biolatency"), "-D"],
                                [*corebpf_tool("biolatency"), "-D"], HEADER,
                                lambda: direct_io(path))
    assert labels(py)[:4] == ["Tracing block device I/O... Hit Ctrl-C to end.", "", "",
                              f"disk = {disk}\t"]
    assert f"disk = {disk}\t" in labels(c)
    # other disks (zram, loop) may have I/O in one window and not the other's
    assert per_label(c)[f"disk = {disk}\t"] >= 2 * IOS
    assert per_label(py)[f"disk = {disk}\t"] >= 2 * IOS
    assert max(total(c), total(py)) < 10 * min(total(c), total(py))


def test_per_flag_agrees_with_libbpf_tools() -> None:
    disk = root_disk()
    opts = ["-F", "-d", disk]
    with direct_file() as path:
        c, py, _ = side_by_side([*c_tool("biolatency"), *opts],
                                [*corebpf_tool("biolatency"), *opts], HEADER,
                                lambda: direct_io(path))
    # -F without -D: the loop's blank line, then "flags = ..." where -D's line would be
    assert labels(py)[:2] == labels(c)[:2] == [
        "Tracing block device I/O... Hit Ctrl-C to end.", ""]
    assert labels(py)[2].startswith("flags = ") and labels(c)[2].startswith("flags = ")
    pc, pp = per_label(c), per_label(py)
    assert all(k.startswith("flags = ") for k in pp)
    # the direct writes and reads: the biggest write and read histograms, in both
    for op in ("Write", "Read"):
        kc = max((k for k in pc if k.endswith(f"-{op}")), key=pc.__getitem__)
        kp = max((k for k in pp if k.endswith(f"-{op}")), key=pp.__getitem__)
        assert kc == kp
        assert pc[kc] >= IOS and pp[kp] >= IOS


def test_default_counts_every_request() -> None:
    with direct_file() as path:
        t = Running([*corebpf_tool("biolatency"), "-d", root_disk()], HEADER)
        direct_io(path)
        lines, err = t.stop()
    assert t.proc.returncode == 0, err
    # the loop's blank line, then the one print_log2_hists prints before each histogram
    assert labels(lines) == ["Tracing block device I/O... Hit Ctrl-C to end.", "", "",
                             "     usecs               : count    distribution"]
    assert total(lines) >= 2 * IOS


def test_queued_raw_tp_json() -> None:
    """-Q with the raw_tp set (a --btf that is not the kernel's own: no tp_btf)."""
    disk = root_disk()
    with direct_file() as path:
        t = Running([*corebpf_tool("biolatency"), "--json", "-v", "-Q", "-D", "-F",
                     "--btf", "/sys/kernel/btf/vmlinux"], None)
        t.wait_attached(3)  # no header with --json: attached is ready
        direct_io(path)
        lines, err = t.stop()
    assert t.proc.returncode == 0, err
    assert "using raw_tp programs (block_rq_insert_raw, block_rq_issue_raw, " \
        "block_rq_complete_raw)" in err
    (obj,) = [json.loads(ln) for ln in lines if ln]
    assert obj["unit"] == "usecs"
    mine = [h for h in obj["hists"] if h["disk"] == disk]
    writes = sum(s["count"] for h in mine if h["flags"].endswith("Write") for s in h["slots"])
    reads = sum(s["count"] for h in mine if h["flags"].endswith("Read") for s in h["slots"])
    assert writes >= IOS and reads >= IOS
    assert all(h["flags"] == cmd_flags_text(h["cmd_flags"]) for h in obj["hists"])


def test_interval_count_ends_by_itself() -> None:
    """``-m -T 1 2``: two summaries (each after a blank line and the time), then exit 0."""
    r = subprocess.run([*corebpf_tool("biolatency"), "-m", "-T", "1", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Tracing block device I/O... Hit Ctrl-C to end."
    times = [i for i, ln in enumerate(lines) if re.fullmatch(r"\d\d:\d\d:\d\d", ln)]
    assert len(times) == 2
    for i in times:
        assert lines[i - 1] == ""
        # a histogram after the time, or nothing when that second saw no I/O (then the
        # next summary's blank line, or the end)
        after = lines[i + 1:i + 3]
        assert after[:1] in ([""], []), after
        if len(after) == 2:
            assert after[1] == "     msecs               : count    distribution" or \
                re.fullmatch(r"\d\d:\d\d:\d\d", after[1]), after


def test_options_refused_as_the_c_tool() -> None:
    r = subprocess.run([*corebpf_tool("biolatency"), "-d", "nosuchdisk0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "invaild partition name: not exist" in r.stderr
    r = subprocess.run([*corebpf_tool("biolatency"), "-d", "x" * 32],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "invaild disk name: too long" in r.stderr
    assert "Traceback" not in r.stderr


def test_stop_leaves_nothing_attached() -> None:
    t = Running([*corebpf_tool("biolatency")], HEADER)
    mine = tool_links(t.proc.pid)
    assert len(mine) == 2  # issue and complete: insert only with -Q
    assert live_links(mine) == mine
    t.stop(signal.SIGTERM)
    assert t.proc.returncode == 0
    assert not live_links(mine)


# print_cmd_flags as captured from libbpf-tools' biolatency (notes), and its table's ends
FLAGS = [
    (34817, "Idle-Sync-Write"), (262146, "PreFlush-Flush"), (1, "Write"),
    (0x3801, "Priority-Metadata-Sync-Write"), (0x80000, "ReadAhead-Read"),
    (0x8800, "Idle-Sync-Read"), (0x800 | 3, "Sync-Discard"), (4, "(null)"), (36, "Unknown"),
    (0x3FF800 | 35, "NoWait-Background-ReadAhead-PreFlush-FUA-Integrity-Idle-NoMerge-"
     "Priority-Metadata-Sync-DrvOut"),
]


@pytest.mark.parametrize(("flags", "text"), FLAGS)
def test_flags_as_the_c_tool_prints_them(flags: int, text: str) -> None:
    assert cmd_flags_text(flags) == text
