"""Ready tools benchmark, corebpf's tools next to Debian's libbpf-tools (C) in one run (issue #10).

For execsnoop and opensnoop, each side runs the same way (stdout on a pseudo-terminal,
as in a shell, so that the C tools' stdout is line-buffered and nothing waits in a buffer;
stderr on a pipe; both drained by this process):

1. Start-up: wall time from just before the process is spawned until its ready marker
   appears (by default the header line on stdout, which both tools print only once
   attached), then SIGINT and reap. --runs alternating runs (C, corebpf, C, corebpf...):
   min/median/max per side and the median of the pairwise ratios corebpf / C.
2. Sustained load: the tool started and ready, then a storm from a separate Python
   process (exec: posix_spawn of a /bin/true symlink whose path holds a unique marker;
   open: open+close of a file whose path holds it), --exec-count/--open-count operations
   paced at --exec-rate/--open-rate per second, the same for both sides. Recorded =
   output lines holding the marker, counted once the tool's output has settled; dropped =
   offered - recorded. CPU per event = the tool's CPU time (sum of
   /proc/PID/task/*/schedstat, ns) from just before the storm until it settles, divided
   by the events recorded (it also pays for the machine's other execs/opens meanwhile, a
   few percent here, the same for both sides).
3. Memory: the tool's peak RSS (VmHWM of /proc/PID/status) at the end of the load run.

The corebpf side defaults to `corebpf tool execsnoop|opensnoop` with the header on stdout
as ready marker; --cmd and --ready override a side's command and marker per tool, e.g.
to run today against `corebpf run` (which says "... attached" on stderr). In a command,
{pid} stands for the storm process's pid (the bench's own in start-up runs) and {root}
for this checkout; relative paths are from the checkout.

Run: python bench/bench_tools.py [--tools execsnoop,opensnoop] [--runs N]
         [--exec-count N] [--exec-rate N] [--open-count N] [--open-rate N]
         [--json FILE] [--markdown docs/benchmarks.md]
         [--cmd TOOL:SIDE=COMMAND] [--ready TOOL:SIDE=stdout|stderr:REGEX]
     e.g. --cmd 'execsnoop:corebpf=corebpf run tests/progs/execsnoop.bpf.o'
          --ready 'execsnoop:corebpf=stderr:attached'
Environment: COREBPF_BENCH_<TOOL>_CMD and COREBPF_BENCH_<TOOL>_READY set the corebpf
side the same way (flags win). Needs root; takes about 30 s by default.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bench.bench_btf import _update_markdown, markdown_table  # noqa: E402

SIDES = ("C", "corebpf")
#: tool -> (C binary, header regex, storm kind)
TOOLS = {
    "execsnoop": ("/usr/sbin/execsnoop", r"^PCOMM\s+PID", "exec"),
    "opensnoop": ("/usr/sbin/opensnoop", r"^PID\s+COMM", "open"),
}
READY_TIMEOUT = 60.0
SETTLE = 1.0  # seconds without a new recorded event after the storm: the tool is done

_STORM = r"""
import os, sys, time
kind, path, count, rate = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
sys.stdin.readline()  # wait for "go": the tool is attached by then
env = {"PATH": "/usr/bin:/bin"}
t0 = time.perf_counter()
for i in range(count):
    if rate > 0:
        ahead = t0 + i / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    if kind == "exec":
        os.waitpid(os.posix_spawn(path, [path], env), 0)
    else:
        os.close(os.open(path, os.O_RDONLY))
print(time.perf_counter() - t0, flush=True)
"""


@dataclass
class Command:
    """One side of one tool: what to run and which line says it is attached."""
    argv: list[str]
    stream: str  # "stdout" or "stderr": where the ready marker appears
    ready: re.Pattern[bytes]

    def expand(self, pid: int) -> list[str]:
        return [a.replace("{pid}", str(pid)).replace("{root}", str(ROOT)) for a in self.argv]


def parse_ready(spec: str) -> tuple[str, re.Pattern[bytes]]:
    stream, sep, regex = spec.partition(":")
    if not sep or stream not in ("stdout", "stderr"):
        raise SystemExit(f"bench_tools: ready marker {spec!r} is not stdout:REGEX or "
                         "stderr:REGEX")
    return stream, re.compile(regex.encode(), re.MULTILINE)


def default_corebpf() -> list[str]:
    """The corebpf next to this interpreter (a venv's entry point), else `python -m`."""
    exe = Path(sys.executable).with_name("corebpf")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "corebpf"]


class Running:
    """A tool process with stdout on a raw pty and stderr on a pipe, both drained by
    threads that note when the ready marker shows and count lines holding the marker."""

    def __init__(self, cmd: Command, marker: bytes | None, pid_for_cmd: int):
        self.cmd = cmd
        self.marker = marker
        self.ready_at: float | None = None
        self.ready = threading.Event()
        self.recorded = 0
        self.lines = 0
        self.err_tail = b""
        self.argv = cmd.expand(pid_for_cmd)
        master, slave = pty.openpty()
        tty.setraw(slave)
        err_r, err_w = os.pipe()
        self.t0 = time.perf_counter()
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=slave, stderr=err_w, cwd=ROOT,
                                         start_new_session=True)
        finally:
            os.close(slave)
            os.close(err_w)
        self.threads = [threading.Thread(target=self._drain, args=(master, "stdout"),
                                         daemon=True),
                        threading.Thread(target=self._drain, args=(err_r, "stderr"),
                                         daemon=True)]
        for t in self.threads:
            t.start()

    def _drain(self, fd: int, stream: str) -> None:
        watch = self.cmd.stream == stream
        count = stream == "stdout" and self.marker is not None
        buf = b""
        try:
            while True:
                try:
                    data = os.read(fd, 1 << 16)
                except OSError:  # EIO: the pty's other end is closed
                    break
                if not data:
                    break
                if stream == "stderr":
                    self.err_tail = (self.err_tail + data)[-2000:]
                buf += data
                lines = buf.split(b"\n")
                buf = lines.pop()
                if watch and self.ready_at is None:
                    for i, line in enumerate(lines):
                        if self.cmd.ready.search(line):
                            self.ready_at = time.perf_counter()
                            self.ready.set()
                            lines = lines[i + 1:]
                            break
                    else:
                        lines = []
                if count and self.ready_at is not None:
                    assert self.marker is not None
                    self.lines += len(lines)
                    self.recorded += sum(1 for line in lines if self.marker in line)
        finally:
            os.close(fd)

    def wait_ready(self) -> float:
        """Seconds from spawn to the ready marker."""
        deadline = time.monotonic() + READY_TIMEOUT
        while not self.ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                why = "exited" if self.proc.returncode is not None else "timed out"
                marker = f"{self.cmd.stream}: /{self.cmd.ready.pattern.decode()}/"
                raise RuntimeError(f"{shlex.join(self.argv)} {why} before its ready "
                                   f"marker ({marker}); "
                                   f"stderr: {self.err_tail.decode(errors='replace')[-500:]}")
        assert self.ready_at is not None
        return self.ready_at - self.t0

    def cpu_ns(self) -> int:
        """CPU time of all the tool's threads so far (ns; 10 ms ticks without schedstat)."""
        total = 0
        task_dir = Path(f"/proc/{self.proc.pid}/task")
        for task in task_dir.iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except FileNotFoundError:  # no schedstat: fall back to the whole process
                fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1]
                utime, stime = fields.split()[11:13]
                return (int(utime) + int(stime)) * 10**9 // os.sysconf("SC_CLK_TCK")
            except (OSError, ValueError, IndexError):
                continue  # a thread that just exited
        return total

    def peak_rss(self) -> int:
        """VmHWM in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for t in self.threads:
            t.join(timeout=5)


@dataclass
class LoadResult:
    offered: int
    recorded: int
    seconds: float
    cpu_ns: int
    peak_rss: int
    lines: int = 0

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_ns / 1e3 / self.recorded if self.recorded else float("nan")


def startup(cmds: dict[str, Command], runs: int) -> dict[str, list[float]]:
    """Alternating C / corebpf start-ups, seconds each, after one warm-up pair (page
    cache, BTF index) that is not counted."""
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    for run in range(runs + 1):
        for side in SIDES:
            tool = Running(cmds[side], None, os.getpid())
            try:
                took = tool.wait_ready()
            finally:
                tool.stop()
            if run:
                times[side].append(took)
    return times


def load(cmd: Command, kind: str, count: int, rate: float, workdir: Path) -> LoadResult:
    """One sustained-load run: tool ready, storm, settle, measure, stop."""
    marker = f"cbench-{secrets.token_hex(6)}"
    d = workdir / marker
    d.mkdir()
    if kind == "exec":
        path = d / "true"
        path.symlink_to(shutil.which("true") or "/bin/true")
    else:
        path = d / "file"
        path.write_bytes(b"")
    storm = subprocess.Popen([sys.executable, "-c", _STORM, kind, str(path), str(count),
                              str(rate)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=workdir)
    tool = Running(cmd, marker.encode(), storm.pid)
    try:
        tool.wait_ready()
        cpu0 = tool.cpu_ns()
        assert storm.stdin is not None and storm.stdout is not None
        storm.stdin.write("go\n")
        storm.stdin.close()
        out = storm.stdout.read()
        if storm.wait() != 0:
            raise RuntimeError(f"the {kind} storm failed (exit {storm.returncode})")
        seconds = float(out.split()[0])
        last, since = -1, time.monotonic()
        deadline = time.monotonic() + 30
        while tool.recorded < count and time.monotonic() < deadline:
            if tool.recorded != last:
                last, since = tool.recorded, time.monotonic()
            elif time.monotonic() - since > SETTLE:
                break
            time.sleep(0.05)
        cpu = tool.cpu_ns() - cpu0
        rss = tool.peak_rss()
        recorded = tool.recorded
    finally:
        if storm.poll() is None:
            storm.kill()
            storm.wait()
        tool.stop()
    return LoadResult(count, recorded, seconds, cpu, rss, tool.lines)


def command_for(tool: str, side: str, args: argparse.Namespace) -> Command:
    binary, header, _kind = TOOLS[tool]
    if side == "C":
        argv = [binary]
    else:
        argv = [*default_corebpf(), "tool", tool]
    ready = f"stdout:{header}"
    env = f"COREBPF_BENCH_{tool.upper()}"
    if side == "corebpf":
        if os.environ.get(env + "_CMD"):
            argv = shlex.split(os.environ[env + "_CMD"])
        ready = os.environ.get(env + "_READY") or ready
    for opt, value in args.cmd:
        if opt == (tool, side):
            argv = shlex.split(value)
    for opt, value in args.ready:
        if opt == (tool, side):
            ready = value
    if argv and argv[0] == "corebpf":
        argv = default_corebpf() + argv[1:]
    stream, regex = parse_ready(ready)
    return Command(argv, stream, regex)


def per_side(value: str) -> tuple[tuple[str, str], str]:
    key, sep, rest = value.partition("=")
    tool, sep2, side = key.partition(":")
    if not sep or not sep2 or tool not in TOOLS or side not in SIDES:
        raise argparse.ArgumentTypeError(f"{value!r} is not TOOL:SIDE=VALUE with TOOL in "
                                         f"{', '.join(TOOLS)} and SIDE in {', '.join(SIDES)}")
    return (tool, side), rest


def _ms(s: float) -> str:
    return f"{s * 1e3:.0f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tools", default="execsnoop,opensnoop")
    ap.add_argument("--runs", type=int, default=11, help="start-up runs per side")
    ap.add_argument("--exec-count", type=int, default=5000, help="execs per load run")
    ap.add_argument("--exec-rate", type=float, default=1000.0,
                    help="execs per second (0: as fast as possible; ~1400/s here)")
    ap.add_argument("--open-count", type=int, default=20000, help="opens per load run")
    ap.add_argument("--open-rate", type=float, default=20000.0,
                    help="opens per second (0: as fast as possible)")
    ap.add_argument("--cmd", type=per_side, action="append", default=[],
                    metavar="TOOL:SIDE=COMMAND")
    ap.add_argument("--ready", type=per_side, action="append", default=[],
                    metavar="TOOL:SIDE=stdout|stderr:REGEX")
    ap.add_argument("--json", help="also write the raw figures to this file")
    ap.add_argument("--markdown", help="write the results table into this file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_tools: needs root (BPF)", file=sys.stderr)
        return 1

    rows: list[tuple[str, str, str, str, str]] = []
    raw: dict[str, object] = {}
    cmdlines: list[str] = []
    loads: list[str] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="cbench-") as tmp:
        for tool in args.tools.split(","):
            if tool not in TOOLS:
                raise SystemExit(f"bench_tools: unknown tool {tool!r} ({', '.join(TOOLS)})")
            cmds = {side: command_for(tool, side, args) for side in SIDES}
            cmdlines.append(f"{tool}: C `{shlex.join(cmds['C'].argv)}`, corebpf "
                            f"`{shlex.join(cmds['corebpf'].argv)}` (ready: "
                            f"{cmds['corebpf'].stream} /{cmds['corebpf'].ready.pattern.decode()}/)")
            try:
                st = startup(cmds, args.runs)
            except RuntimeError as e:
                print(f"bench_tools: {tool}: {e}", file=sys.stderr)
                failed += 1
                continue
            ratios = [o / c for o, c in zip(st["corebpf"], st["C"], strict=True)]
            cell = {s: f"{_ms(statistics.median(v))} ({_ms(min(v))}-{_ms(max(v))})"
                    for s, v in st.items()}
            rows.append((f"{tool}: start-up until ready, median (min-max)", cell["corebpf"],
                         cell["C"], f"{statistics.median(ratios):.2f}x", "≤ 1.2x"))
            kind = TOOLS[tool][2]
            count, rate_asked = ((args.exec_count, args.exec_rate) if kind == "exec"
                                 else (args.open_count, args.open_rate))
            loads.append(f"{count} {kind}s at {rate_asked:.0f}/s" if rate_asked > 0
                         else f"{count} {kind}s unpaced")
            res: dict[str, LoadResult] = {}
            try:
                for side in SIDES:
                    res[side] = load(cmds[side], kind, count, rate_asked, Path(tmp))
            except RuntimeError as e:
                print(f"bench_tools: {tool}: {e}", file=sys.stderr)
                failed += 1
                continue
            o, c = res["corebpf"], res["C"]
            rate = {s: r.offered / r.seconds for s, r in res.items()}
            rows.append((f"{tool}: {count} {kind}s at {rate_asked:.0f}/s "
                         f"(achieved C {rate['C']:.0f}/s, corebpf {rate['corebpf']:.0f}/s): "
                         "recorded / offered (dropped)",
                         f"{o.recorded} / {o.offered} ({o.offered - o.recorded})",
                         f"{c.recorded} / {c.offered} ({c.offered - c.recorded})", "",
                         "0 where C has 0"))
            rows.append((f"{tool}: CPU per event recorded", f"{o.cpu_us_per_event:.1f} µs",
                         f"{c.cpu_us_per_event:.1f} µs",
                         f"{o.cpu_us_per_event / c.cpu_us_per_event:.2f}x", "≤ 3x"))
            rows.append((f"{tool}: peak RSS (VmHWM) after the load",
                         f"{o.peak_rss / 2**20:.1f} MiB", f"{c.peak_rss / 2**20:.1f} MiB",
                         f"{o.peak_rss / c.peak_rss:.2f}x", "≤ 40 MB"))
            raw[tool] = {"startup_s": st, "startup_ratio_median": statistics.median(ratios),
                         "load": {s: {**vars(r), "offered_per_s": rate[s],
                                      "cpu_us_per_event": r.cpu_us_per_event}
                                  for s, r in res.items()},
                         "commands": {s: cmds[s].argv for s in SIDES}}

    table = markdown_table(rows)
    note = (f"C peer: Debian's libbpf-tools. {args.runs} alternating start-up runs per side; "
            f"load: {', '.join(loads)} from a separate process; "
            f"stdout on a pty for both. Kernel {os.uname().release}; Python "
            f"{sys.version.split()[0]}; {os.cpu_count()} cores; {time.strftime('%Y-%m-%d')}.\n"
            + "".join(f"- {line}\n" for line in cmdlines))
    print(note)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1) + "\n")
    if args.markdown:
        _update_markdown(Path(args.markdown), "tools", note + "\n" + table)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
