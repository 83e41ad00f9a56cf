"""What every corebpf tool shares (libbpf-tools' trace_helpers, compat and btf_helpers, once):
options, the CO-RE target (the kernel's BTF, else this machine's entry of the embedded
bundle, else ``--btf``), the event channel (ring buffer, or a perf buffer on kernels
without one), attach-point fallbacks, the poll loop, clean stops, and ``-v`` lines.

A tool is a small subclass of :class:`Tool`: its options, how it configures the skeleton
(rodata filters, which program variants load on this kernel), its header and its rows.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

from ..errors import Error

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, ClassVar, TextIO

    from ..btf import Spec

__all__ = ["BUNDLE", "OBJECTS", "Compat", "Tool", "ToolError", "main"]

OBJECTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "objects")
#: minimized BTF of the corpus kernels for every shipped object (corebpf archive bundle)
BUNDLE = os.path.join(OBJECTS, "btf-bundle.tar.xz")
KERNEL_BTF = "/sys/kernel/btf/vmlinux"
MAP_TYPE_PERF_EVENT_ARRAY = 4
#: the C tools' "forever" for interval and count
FOREVER = 99999999
_LONG = 1 << 63
INT_MAX = 2**31 - 1


class ToolError(Error):
    """A tool that cannot run as asked (a bad option value, no usable attach point)."""


class _Interrupted(Exception):
    """Raised by the signal handler only while the loop waits, never mid-row."""


class Compat:
    """Questions about the running kernel that choose between a tool's program variants
    (libbpf-tools' compat layer): answered from the CO-RE target BTF and tracefs, each
    once."""

    def __init__(self, btf: Spec, btf_kind: str, source: str):
        self.btf = btf
        #: "kernel" when the BTF is the kernel's own (tp_btf, fentry need that)
        self.btf_kind = btf_kind
        self.source = source
        self._cache: dict[tuple[str, ...], bool] = {}

    def _ask(self, key: tuple[str, ...], fn: Any) -> bool:
        if key not in self._cache:
            self._cache[key] = bool(fn())
        return self._cache[key]

    @property
    def kernel_btf(self) -> bool:
        return self.btf_kind in ("kernel", "vmlinux")

    def ringbuf(self) -> bool:
        from ..features import has_ringbuf

        return self._ask(("ringbuf",), lambda: has_ringbuf(self.btf))

    def tracepoint(self, category: str, name: str) -> bool:
        from ..features import tracepoint_exists

        return self._ask(("tp", category, name), lambda: tracepoint_exists(category, name))

    def tp_btf(self, name: str) -> bool:
        """A BTF-enabled tracepoint (tp_btf/NAME): kernel BTF with btf_trace_NAME."""
        from ..btf import types as bt

        return self._ask(("tp_btf", name), lambda: self.kernel_btf and bool(
            self.btf.find_by_name(f"btf_trace_{name}", bt.Kind.TYPEDEF)))

    def fentry(self, func: str) -> bool:
        from ..features import fentry_can_attach

        return self._ask(("fentry", func), lambda: self.kernel_btf and fentry_can_attach(
            func, self.btf))

    def kprobes(self) -> bool:
        from ..features import kprobes_available

        return self._ask(("kprobes",), kprobes_available)

    def has_type(self, name: str, kind: str = "struct") -> bool:
        from ..btf import types as bt

        k = {"struct": bt.Kind.STRUCT, "union": bt.Kind.UNION, "enum": bt.Kind.ENUM,
             "typedef": bt.Kind.TYPEDEF, "func": bt.Kind.FUNC}[kind]
        return bool(self.btf.find_by_name(name, k))


class Tool:
    """One tool: subclasses set the class attributes and override the hooks."""

    name: ClassVar[str] = ""
    #: argp's doc line (what the C tool's --help says first)
    doc: ClassVar[str] = ""
    #: the C tool's usage examples, printed by --help
    examples: ClassVar[str] = ""
    #: event tools read `events`; interval tools (histograms) wake every interval
    events: ClassVar[bool] = True
    #: the C histogram tools' positional ``[interval] [count]``: parsed with their strtol
    #: checks, counted down by the loop, ``interval 0`` returns at once as C's sleep(0)
    interval_args: ClassVar[bool] = False
    #: the C tool has its own ``-d/--duration`` (seconds, ``dest="duration"``), added in
    #: add_arguments in place of corebpf's ``--duration``
    owns_duration: ClassVar[bool] = False

    def __init__(self, args: argparse.Namespace, out: TextIO, err: TextIO):
        self.args = args
        self.out = out
        self.err = err
        self.compat: Compat | None = None
        self.skel: Any = None
        self.start = time.monotonic()

    # -- hooks ----------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, p: argparse.ArgumentParser) -> None:
        """The tool's own options, named as the C tool names them."""

    def open(self) -> Any:
        """The tool's skeleton, opened (generated module in corebpf/tools/objects)."""
        raise NotImplementedError

    def configure(self, skel: Any, compat: Compat) -> None:
        """Set .rodata from the options and choose program variants for this kernel."""

    def before_attach(self, skel: Any) -> None:
        """Loaded, not attached yet: fill maps the programs read from the first event on
        (a cgroup array for -c, port sets)."""

    def header(self) -> None:
        """Print the header line, once attached (the C tools' moment)."""

    def lost(self, cpu: int, count: int) -> None:
        """A perf buffer's loss report, as the C tools print it."""
        self.err.write(f"Lost {count} events on CPU #{cpu}!\n")

    def event(self, ev: Any) -> None:
        """One record of `events`."""

    def interval(self) -> bool:
        """Interval tools: print what was gathered; False ends the run."""
        return True

    def finish(self) -> None:
        """After detaching: what the C tool prints on exit."""

    # -- helpers for tools ----------------------------------------------------------------

    def emit(self, text: str) -> None:
        self.out.write(text)

    def emit_json(self, obj: dict[str, Any]) -> None:
        import json

        self.out.write(json.dumps(obj) + "\n")

    def warn(self, text: str) -> None:
        self.err.write(text if text.endswith("\n") else text + "\n")

    def verbose(self, text: str) -> None:
        if self.args.verbose:
            self.err.write(f"corebpf: {text}\n")

    def choose(self, skel: Any, variants: Sequence[tuple[str, bool]], what: str) -> str:
        """Keep the first program whose condition holds, turn the others' autoload off
        (libbpf-tools' fentry-or-kprobe choices); ToolError when none holds."""
        chosen = self._choose(skel, [(p, (p,), ok) for p, ok in variants], what)
        self.verbose(f"{what}: using program {chosen!r}")
        return chosen

    def choose_group(self, skel: Any, groups: Sequence[tuple[str, Sequence[str], bool]],
                     what: str) -> str:
        """:meth:`choose` for variants made of several programs: ``(label, programs,
        condition)``; a group with a program missing from this object (a per-arch one)
        cannot be chosen. Returns the chosen label."""
        chosen = self._choose(skel, groups, what)
        progs = next(g[1] for g in groups if g[0] == chosen)
        self.verbose(f"{what}: using {chosen} programs ({', '.join(progs)})")
        return chosen

    def choose_tp_btf(self, skel: Any, compat: Compat, hooks: Sequence[str],
                      skip: Sequence[str] = ()) -> str:
        """libbpf-tools' probe_tp_btf(first hook): the ``HOOK_btf`` (tp_btf) programs
        where the kernel's BTF has btf_trace_HOOK, else the ``HOOK_raw`` (raw_tp) ones;
        the ``skip`` hooks load in neither."""
        for hook in skip:
            skel.progs[f"{hook}_btf"].autoload = False
            skel.progs[f"{hook}_raw"].autoload = False
        used = [h for h in hooks if h not in skip]
        return self.choose_group(skel, [
            ("tp_btf", [f"{h}_btf" for h in used], compat.tp_btf(hooks[0])),
            ("raw_tp", [f"{h}_raw" for h in used], True)], ", ".join(used))

    def _choose(self, skel: Any, groups: Sequence[tuple[str, Sequence[str], bool]],
                what: str) -> str:
        have = {p.name for p in skel.progs}
        chosen = next((g for g in groups if g[2] and all(p in have for p in g[1])), None)
        for group in groups:
            if group is not chosen:
                for prog in group[1]:
                    if prog in have:
                        skel.progs[prog].autoload = False
        if chosen is None:
            raise ToolError(f"{self.name}: no way to attach {what} on this kernel (tried "
                            f"{', '.join(g[0] for g in groups)})")
        return chosen[0]


# -- options as the C tools parse them -----------------------------------------------------


def c_int(message: str, low: int, high: int | None = None, *,
          lenient: bool = False) -> Callable[[str], int]:
    """An argparse type for a decimal number checked as a C tool's argp parser checks it:
    within [low, high], else ``message`` (``{}`` is the argument). ``lenient``: text that
    is no number reads as 0 (strtol without an end check) before the range check."""
    def parse(text: str) -> int:
        try:
            v = int(text, 10)
        except ValueError:
            if not lenient:
                raise argparse.ArgumentTypeError(message.format(text)) from None
            v = 0
        if v < low or (high is not None and v > high):
            raise argparse.ArgumentTypeError(message.format(text))
        return v
    return parse


def add_cgroup(p: argparse.ArgumentParser, metavar: str = "/sys/fs/cgroup/unified") -> None:
    """``-c/--cgroup PATH`` of the C tools: the run sets the object's ``filter_cg`` and
    puts the opened directory in ``cgroup_map[0]`` before attaching."""
    p.add_argument("-c", "--cgroup", metavar=metavar, help="Trace process in cgroup path")


# -- running a tool -----------------------------------------------------------------------


def _formatter() -> Any:
    """argparse's raw-description formatter with the CLI's terminal width (argparse's own
    imports shutil, and bz2 and lzma with it, on every start-up)."""
    from ..cli import _Formatter as _Width

    class _Formatter(_Width, argparse.RawDescriptionHelpFormatter):
        pass

    return _Formatter


def parser_for(tool: type[Tool]) -> argparse.ArgumentParser:
    from ..cli import seconds_arg

    p = argparse.ArgumentParser(prog=f"corebpf tool {tool.name}", description=tool.doc,
                                epilog=tool.examples, formatter_class=_formatter())
    tool.add_arguments(p)
    if tool.interval_args:
        p.add_argument("interval", nargs="?", type=lambda s: strtol(s, "invalid internal"),
                       default=FOREVER, help="seconds between summaries (default: one at "
                       "Ctrl-C)")  # sic, the C tools' message
        p.add_argument("count", nargs="?", type=lambda s: strtol(s, "invalid times"),
                       default=FOREVER, help="number of summaries")
        p.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    g = p.add_argument_group("corebpf")
    g.add_argument("-v", "--verbose", action="store_true",
                   help="libbpf-style debug lines on stderr: the BTF used, the CO-RE "
                   "decisions, the programs chosen; the whole verifier log on a failure")
    g.add_argument("--json", action="store_true",
                   help="one JSON object per event (or per interval) instead of text")
    g.add_argument("--btf", metavar="PATH", action="append",
                   help="BTF of this kernel for CO-RE (any container corebpf reads), "
                   "instead of the kernel's own or the embedded bundle's; repeatable: the "
                   "first describes this kernel, each further one is searched after it for "
                   "types it has no candidate for (an application's or library's BTF)")
    g.add_argument("--btf-service", metavar="URL",
                   help="on a kernel without BTF that the embedded bundle does not know: "
                   "ask this BTF service (corebpf serve) for this kernel's BTF minimized "
                   "for the tool's object (cached under ~/.cache/corebpf/service)")
    if not tool.owns_duration:
        g.add_argument("--duration", type=seconds_arg, metavar="SECONDS",
                       help="stop after this many seconds (default: at Ctrl-C or SIGTERM)")
    g.add_argument("--perf-buffer", action="store_true",
                   help="read events through a perf buffer even where the kernel has ring "
                   "buffers (as on kernels before 5.8)")
    return p


def strtol(text: str, message: str) -> int:
    """C strtol(text, NULL, 10) as the C tools use it: leading digits, else 0; only an
    out-of-range number is an error (errno ERANGE), reported with ``message``."""
    s = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    digits = ""
    for ch in s:
        if not "0" <= ch <= "9":
            break
        digits += ch
    v = sign * int(digits) if digits else 0
    if not -_LONG <= v < _LONG:
        raise argparse.ArgumentTypeError(message)
    return v


def core_btf(btf: str | None, service: str | None = None,
             objects: Sequence[Any] = ()) -> tuple[Spec, str, str]:
    """(spec, kind, description) of the BTF this run relocates against: what
    select_core_btf decides (last, the BTF ``service``'s, minimized for ``objects``),
    whose common case (the kernel's own BTF) is answered here without importing the
    archive package (tarfile, concurrent.futures: ~40 ms)."""
    if btf is None and os.path.exists(KERNEL_BTF):
        from ..btf import kernel

        return kernel(), "kernel", KERNEL_BTF
    from ..archive.bundle import select_core_btf

    choice = select_core_btf(btf, bundle=BUNDLE if os.path.exists(BUNDLE) else None,
                             service=service, objects=objects)
    return choice.spec, choice.kind, choice.source


def run(tool_cls: type[Tool], argv: Sequence[str] | None = None, *,
        out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Parse ``argv``, then open, configure, load, attach and read until ``--duration``,
    the tool's own end (interval count) or SIGINT/SIGTERM; everything is closed on the
    way out. Returns the exit status."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = parser_for(tool_cls).parse_args(argv)
    tool = tool_cls(args, out, err)
    try:
        return _run(tool)
    except Error as e:
        err.write(f"corebpf tool {tool_cls.name}: {e}\n")
        return 1


def _sleep_seconds(tool: Tool) -> float:
    """How long the loop sleeps between intervals."""
    iv = getattr(tool.args, "interval", None)
    if tool.interval_args:
        # C sleep(): 0 returns at once; a negative one is a huge unsigned wait
        return FOREVER if iv is None or iv < 0 else float(iv)
    return float(iv or FOREVER)


def _run(tool: Tool) -> int:
    args = tool.args
    if tool.interval_args and args.extra:
        raise ToolError(f"unrecognized positional argument: {args.extra[0]}")
    from ..sys.caps import require

    # said first: without privileges every probe below (tracefs, fentry) answers "no"
    require(tool.name, tracing=True)
    left = args.count if tool.interval_args else -1
    # opened first: the BTF service minimizes for its object (parsing it costs no more
    # here than after)
    skel = tool.skel = tool.open()
    spec, kind, source = core_btf(args.btf[0] if args.btf else None, args.btf_service,
                                  [skel.obj])
    more = args.btf[1:] if args.btf else []
    tool.verbose(f"BTF for CO-RE: {source} ({kind})"
                 + "".join(f", then {path}" for path in more))
    compat = tool.compat = Compat(spec, kind, source)
    stop = _Stop()
    cg_fd = -1
    try:
        events = getattr(skel.maps, "events", None) if tool.events else None
        if events is not None:
            ring = compat.ringbuf() and not args.perf_buffer
            if not ring:
                events.type = MAP_TYPE_PERF_EVENT_ARRAY
                skel.rodata.use_ringbuf = False
            tool.verbose(f"events: {'ring buffer' if ring else 'perf buffer'}")
        cgroup = getattr(args, "cgroup", None)
        if cgroup:
            skel.rodata.filter_cg = True
        tool.configure(skel, compat)
        skel.load(btf=[spec, *more] if more else spec,
                  verifier_log_lines=None if args.verbose else 20)
        if args.verbose:
            _print_core(tool, skel)
        if cgroup:
            cg_fd = _open_cgroup(cgroup)
            skel.maps.cgroup_map[0] = cg_fd
        tool.before_attach(skel)
        if events is not None:
            events.on_event(tool.event)
            events.on_lost = tool.lost
            # the reader before the programs: a perf buffer keeps nothing sent before its
            # rings exist (libbpf's perf_buffer__new before attach, too)
            events.reader()
        skel.attach()
        tool.start = time.monotonic()
        stop.install()
        tool.header()
        tool.out.flush()
        deadline = None if args.duration is None else time.monotonic() + args.duration
        while not stop.requested:
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                break
            if events is not None:
                stop.waiting = True
                try:
                    skel.poll(timeout=0.5 if wait is None else min(wait, 0.5))
                except _Interrupted:
                    pass
                finally:
                    stop.waiting = False
            else:
                iv = _sleep_seconds(tool)
                tick = iv if wait is None else min(iv, wait)
                stop.waiting = True
                try:
                    time.sleep(tick)
                except _Interrupted:
                    pass
                finally:
                    stop.waiting = False
                # as the C tools: an interval ends in a print, a stop too
                more = tool.interval()
                left -= 1  # as the C tools' --times: count 0 or less never ends
                if not more or left == 0 or stop.requested or (
                        deadline is not None and time.monotonic() >= deadline):
                    break
            tool.out.flush()
        skel.detach()
        if events is not None:
            events.consume()
        tool.finish()
        tool.out.flush()
    finally:
        stop.close()
        skel.close()
        if cg_fd >= 0:
            os.close(cg_fd)
    return 0


def _open_cgroup(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError as e:
        raise ToolError(f"Failed opening Cgroup path: {path}: {e.strerror}") from None


def _print_core(tool: Tool, skel: Any) -> None:
    """libbpf's CO-RE debug lines, one per relocation."""
    for r in skel.collection.core_reports:
        what = r.local_spec or r.kind.libbpf_name
        if r.error:
            tool.verbose(f"prog '{r.program}': relo #{r.index}: {what}: {r.error}")
        elif r.poisoned:
            tool.verbose(f"prog '{r.program}': relo #{r.index}: {what}: no match, insn "
                         f"#{r.insn} poisoned")
        else:
            tool.verbose(f"prog '{r.program}': relo #{r.index}: {what} -> "
                         f"{r.target_spec or r.target}: patched insn #{r.insn} "
                         f"{r.local} -> {r.target}")


class _Stop:
    """SIGINT and SIGTERM end the run between rows: they set a flag, and interrupt only a
    wait (poll or sleep), never a row being printed."""

    def __init__(self) -> None:
        self.requested = False
        self.waiting = False
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.waiting:
            raise _Interrupted

    def close(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def main(name: str, argv: Sequence[str]) -> int:
    """``corebpf tool NAME ARGS...``."""
    from . import load_tool

    return run(load_tool(name), argv)
