"""Run an object as a tool: load it, attach its programs, print its events as JSON lines,
then its globals and maps once it is stopped (``corebpf run``).

What a tool built with libbpf needs a C loader for (a skeleton: set ``const volatile``
filters, attach by section, poll ring/perf buffers, read counters at exit), here from one
object file and its BTF. Values become JSON through their BTF types: ``char`` arrays as
strings, other byte arrays as hex, structs as objects, integers as (unbounded) ints.
"""

from __future__ import annotations

import math
import os
import select
import sys
import time
from collections.abc import Callable, Iterable, Mapping

from ._text import plural
from .btf import Spec
from .btf import types as bt
from .errors import BTFError, Error
from .links import XDP_MODES, AttachKind, attach_programs, resolve_iface
from .loader import MAP_TYPE_PERF_EVENT_ARRAY, MAP_TYPE_RINGBUF, Collection, CoreBTF, load
from .obj.object import MapSpec, ObjectSpec

# Start-up: json, signal, the codec, globals, maps, the perf and ring buffers are imported
# where they are first needed (a run needs only some of them, and after the object is
# read); threading and contextlib not at all.

TYPE_CHECKING = False

if TYPE_CHECKING:
    import threading
    from types import TracebackType
    from typing import Any, TextIO

    from .globals import parse_value
    from .perf import PerfBuffer


def __getattr__(name: str) -> Any:
    if name == "parse_value":  # re-exported, imported on first use
        from .globals import parse_value

        return parse_value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "RunError",
    "attach_programs",
    "dump_maps",
    "event_decoder",
    "event_type_id",
    "parse_assignments",
    "parse_value",
    "read_globals",
    "rodata_values",
    "run",
    "to_json",
    "untyped_hint",
]

#: Map types whose contents are dumped at exit (hash, array, their per-CPU and LRU
#: variants, LPM tries): the ones a tool keeps counters and state in.
DUMP_MAP_TYPES = frozenset({1, 2, 5, 6, 9, 10, 11})
#: programs that attach to a network interface (--iface)
_NET_KINDS = frozenset({AttachKind.XDP, AttachKind.TC, AttachKind.TCX})

class RunError(Error):
    """A ``run`` request that cannot be met: a malformed ``NAME=VALUE``, an unknown event
    type. (Unknown variables and values that do not fit are
    :class:`corebpf.globals.VariableError`.)"""


# -- values to JSON ---------------------------------------------------------------------


def _is_text_char(t: bt.Int) -> bool:
    """``char`` (not ``unsigned char``/``__u8``): arrays of it are strings, not bytes."""
    return t.size == 1 and (bool(t.encoding & bt.IntEncoding.CHAR)
                            or t.name in ("char", "signed char"))


def _bytes_json(data: bytes, text: bool) -> str:
    if text:
        end = data.find(b"\0")
        try:
            return (data if end < 0 else data[:end]).decode()
        except UnicodeDecodeError:
            pass  # not text after all: hex says exactly what is there
    return data.hex()


def _plain_json(value: Any) -> Any:
    """JSON-safe form of a decoded value without its type (bytes as hex)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_json(v) for v in value]
    return value


def to_json(spec: Spec | None, type_id: int, value: Any) -> Any:
    """A value decoded by :mod:`corebpf.btf.codec` made JSON-safe, guided by its BTF type:
    ``char`` arrays become the string before their first NUL (hex if not UTF-8), other
    byte arrays hex, non-finite floats strings; ints stay ints whatever their size."""
    if spec is None or not type_id:
        return _plain_json(value)
    return _Jsonifier(spec).convert(type_id, value, 0)


class _Jsonifier:
    def __init__(self, spec: Spec):
        self.spec = spec

    def convert(self, tid: int, value: Any, depth: int) -> Any:
        spec = self.spec
        if depth > 64:
            return _plain_json(value)
        t = spec.type(tid)
        while isinstance(t, bt.Typedef | bt.Const | bt.Volatile | bt.Restrict | bt.TypeTag
                         | bt.Var | bt.DeclTag):
            tid = t.type
            t = spec.type(tid)
        if isinstance(value, bytes | bytearray | memoryview):
            text = False
            if isinstance(t, bt.Array):
                et = spec.type(spec.resolve(t.type))
                text = isinstance(et, bt.Int) and _is_text_char(et)
            return _bytes_json(bytes(value), text)
        if isinstance(t, bt.Array) and isinstance(value, list):
            return [self.convert(t.type, v, depth + 1) for v in value]
        if isinstance(t, bt.Struct | bt.Union) and isinstance(value, dict):
            out: dict[str, Any] = {}
            self._members(t, value, out, depth)
            return out
        if isinstance(t, bt.Datasec) and isinstance(value, dict):
            types = {}
            for si in t.vars:
                var = spec.type(si.type)
                if isinstance(var, bt.Var):
                    types[var.name] = var.type
            return {k: self.convert(types[k], v, depth + 1) if k in types else _plain_json(v)
                    for k, v in value.items()}
        return _plain_json(value)

    def _members(self, t: bt.Struct | bt.Union, value: dict[str, Any], out: dict[str, Any],
                 depth: int) -> None:
        for m in t.members:
            if m.name:
                if m.name in value:
                    out[m.name] = self.convert(m.type, value[m.name], depth + 1)
                continue
            inner = self.spec.type(self.spec.resolve(m.type))
            if isinstance(inner, bt.Struct | bt.Union):  # anonymous: its members are ours
                self._members(inner, value, out, depth + 1)
        for k, v in value.items():  # anything the walk did not place
            if k not in out:
                out[k] = _plain_json(v)


# -- read-only globals from text --------------------------------------------------------


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` strings as a dict (a later NAME wins)."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise RunError(f"--set {item!r}: expected NAME=VALUE")
        out[name] = value
    return out


def rodata_values(obj: ObjectSpec, assignments: Mapping[str, str]) -> dict[str, bytes]:
    """Each ``NAME=VALUE`` of read-only globals (``const volatile``) parsed per the
    variable's BTF type (:func:`corebpf.globals.parse_variable`), ready for
    :func:`corebpf.loader.load`'s ``rodata``."""
    if not assignments:
        return {}
    from .globals import parse_variable

    return {name: parse_variable(obj, name, text, read_only=True)
            for name, text in assignments.items()}


# -- events -------------------------------------------------------------------------------


def _find_struct(spec: Spec, name: str) -> int:
    name = name.strip()
    for prefix in ("struct ", "union "):
        if name.startswith(prefix):
            name = name[len(prefix):].strip()
    for kind in (bt.Kind.STRUCT, bt.Kind.UNION, bt.Kind.TYPEDEF):
        for tid in spec.find_by_name(name, kind):
            if isinstance(spec.type(spec.resolve(tid)), bt.Struct | bt.Union):
                return tid
    return 0


def event_type_id(obj: ObjectSpec, m: MapSpec, event_type: str | None = None) -> int:
    """The BTF type records of ring/perf map ``m`` are decoded as (0: none): ``event_type``
    (a struct of the object's BTF), else the map's BTF value type if it is a struct, else
    a struct named ``event`` (libbpf-tools' convention) if the object has one."""
    spec = obj.btf
    if event_type is not None:
        tid = _find_struct(spec, event_type) if spec is not None else 0
        if not tid:
            raise RunError(f"{obj.source}: --event-type {event_type!r}: the object's BTF has "
                           "no such struct or union")
        return tid
    if spec is None:
        return 0
    if m.value_type_id and isinstance(spec.type(spec.resolve(m.value_type_id)),
                                      bt.Struct | bt.Union):
        return m.value_type_id
    return _find_struct(spec, "event")


def untyped_hint(obj: ObjectSpec, m: MapSpec) -> str:
    """What to tell a user whose records print as hex: how to give them a type."""
    kind = "ring buffer" if m.type == MAP_TYPE_RINGBUF else "perf event array"
    return (f"{obj.source}: {kind} {m.name!r}: its records have no type in the object's "
            "BTF, so they print as hex; give them one with `__type(value, struct X);` in "
            "the map's definition, or an unused global of it (`struct X *unused_x;`) and "
            "--event-type X, or name the struct `event`")


def event_decoder(obj: ObjectSpec, m: MapSpec,
                  event_type: str | None = None) -> Callable[[bytes], dict[str, Any]]:
    """How records of ring/perf map ``m`` become JSON: through :func:`event_type_id`'s
    type; records that are shorter than the type, or without a type, as
    ``{"data": hex}``."""
    spec = obj.btf
    tid = event_type_id(obj, m, event_type)
    if spec is None or not tid:
        return lambda data: {"data": data.hex()}
    from .btf.codec import codec

    c = codec(spec, tid)
    size = c.size
    conv = _Jsonifier(spec)

    def decode(data: bytes) -> dict[str, Any]:
        if len(data) < size:
            return {"data": data.hex()}
        return {"event": conv.convert(tid, c.decode(data), 0)}
    return decode


# -- attaching ----------------------------------------------------------------------------


# -- globals and maps ------------------------------------------------------------------


def read_globals(coll: Collection) -> dict[str, dict[str, Any]]:
    """The object's global variables as the kernel holds them now, by section
    (``.bss``, ``.data``, ``.rodata``...), each decoded through its BTF type."""
    spec = coll.obj.btf
    out: dict[str, dict[str, Any]] = {}
    for lm in coll.maps.values():
        m = lm.spec
        if not m.is_data or not m.variables:
            continue
        try:
            data = lm.read_data()
        except OSError as e:
            raise Error(f"{coll.obj.source}: map {m.name!r} ({m.section}): cannot read: "
                        f"{e.strerror}") from None
        out[m.section] = decode_variables(spec, m, data)
    return out


def decode_variables(spec: Spec | None, m: MapSpec, data: bytes) -> dict[str, Any]:
    """Each variable of data section ``m`` from its bytes ``data``, JSON-safe; a variable
    whose type has no value layout comes out as hex."""
    from .btf.codec import CodecError, codec

    out: dict[str, Any] = {}
    for v in sorted(m.variables, key=lambda v: v.offset):
        raw = data[v.offset:v.offset + v.size]
        if spec is None:
            out[v.name] = raw.hex()
            continue
        try:
            out[v.name] = to_json(spec, v.type_id, codec(spec, v.type_id).decode(raw))
        except (BTFError, CodecError):
            out[v.name] = raw.hex()
    return out


def dump_maps(coll: Collection) -> dict[str, list[dict[str, Any]]]:
    """Every hash/array-like map's entries, keys and values decoded through BTF (per-CPU
    values as one list entry per possible CPU)."""
    from .btf.codec import CodecError
    from .maps import Map

    spec = coll.obj.btf
    out: dict[str, list[dict[str, Any]]] = {}
    for name, lm in coll.maps.items():
        m = lm.spec
        if m.is_data or m.type not in DUMP_MAP_TYPES:
            continue
        kid, vid = (m.key_type_id, m.value_type_id) if spec is not None else (0, 0)
        try:
            mp = lm.as_map()
        except (BTFError, CodecError):  # types this codec cannot lay out: bytes
            mp, kid, vid = Map.from_fd(lm.fd.fd, load_btf=False), 0, 0
        with mp:
            entries = []
            for k, v in mp.items():
                value = [to_json(spec, vid, x) for x in v] if mp.percpu else \
                    to_json(spec, vid, v)
                entries.append({"key": to_json(spec, kid, k), "value": value})
        out[name] = entries
    return out


# -- the run ------------------------------------------------------------------------------


class _Stop:
    """SIGINT/SIGTERM set a flag and wake the poll (through a self-pipe), so the loop
    ends between records, never in the middle of a line."""

    def __init__(self) -> None:
        self.requested = False
        self.rfd, self.wfd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._old: dict[int, Any] = {}
        self._old_wakeup: int | None = None

    def install(self) -> None:
        import signal

        try:
            self._old_wakeup = signal.set_wakeup_fd(self.wfd, warn_on_full_buffer=False)
        except ValueError:
            return  # not the main thread, which signals only reach: stopped by duration
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def close(self) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
        if self._old_wakeup is not None:
            signal.set_wakeup_fd(self._old_wakeup)
            self._old_wakeup = None
        for fd in (self.rfd, self.wfd):
            os.close(fd)


def _write(out: TextIO, obj: dict[str, Any]) -> None:
    import json  # after the first record, a lookup in sys.modules

    out.write(json.dumps(obj) + "\n")


class _Closing:
    """contextlib.ExitStack's part that :func:`run` uses (without its import): what is
    entered or pushed is closed in reverse order, each even when an earlier one raised."""

    def __init__(self) -> None:
        self._exits: list[Callable[[type[BaseException] | None, BaseException | None,
                                    TracebackType | None], object]] = []

    def enter_context(self, cm: Any) -> Any:
        got = cm.__enter__()
        self._exits.append(cm.__exit__)
        return got

    def callback(self, fn: Callable[[], object]) -> None:
        self._exits.append(lambda *exc: fn())

    def __enter__(self) -> _Closing:
        return self

    def __exit__(self, typ: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        pending: BaseException | None = None
        while self._exits:
            try:
                self._exits.pop()(typ, exc, tb)
            except BaseException as e:  # the rest still close; the first error is raised
                if pending is None:
                    pending = e
        if pending is not None:
            raise pending


#: output formats of :func:`run`: JSON lines for programs, aligned tables for people
FORMATS = ("json", "text")
#: per-CPU map types: dumped as one value per CPU
_PERCPU_MAP_TYPES = frozenset({5, 6, 10})


class _Output:
    """Where records, losses and the exit dump go: JSON lines (``json``) or, for people,
    a table per event type and a text dump (``text``, :mod:`corebpf.table`)."""

    def __init__(self, out: TextIO, err: TextIO, fmt: str, obj: ObjectSpec,
                 readers: list[MapSpec], event_type: str | None):
        self.out = out
        self.err = err
        self.table = None
        if fmt == "text":
            from .table import EventTable

            self.table = EventTable(out, obj.btf, several=len(readers) > 1)
            for m in readers:
                self.table.add_map(m.name, event_type_id(obj, m, event_type),
                                   perf=m.type == MAP_TYPE_PERF_EVENT_ARRAY)

    def record(self, record: dict[str, Any]) -> None:
        if self.table is None:
            _write(self.out, record)
        else:
            self.table.row(record["map"], record)

    def lost(self, name: str, cpu: int, count: int) -> None:
        if self.table is None:
            _write(self.out, {"map": name, "cpu": cpu, "lost": count})
        else:  # a note for the reader, outside the table
            print(f"corebpf run: map {name!r}: {plural(count, 'record')} lost on CPU "
                  f"{cpu}", file=self.err)

    def final(self, coll: Collection) -> None:
        globals_, maps = read_globals(coll), dump_maps(coll)
        if self.table is None:
            _write(self.out, {"globals": globals_, "maps": maps})
            return
        from .table import dump_text

        dump_text(self.out, globals_, maps,
                  percpu=[n for n, lm in coll.maps.items()
                          if lm.spec.type in _PERCPU_MAP_TYPES])


def run(obj_path: str | os.PathLike[str], *, duration: float | None = None,
        rodata: Mapping[str, str] | None = None, event_type: str | None = None,
        btf: CoreBTF | None = None, out: TextIO | None = None,
        err: TextIO | None = None, stop_event: threading.Event | None = None,
        bundle: str | os.PathLike[str] | None = None, verbose: bool = False,
        targets: Mapping[str, str] | None = None, pid: int = -1,
        service: str | None = None, iface: str | int | None = None,
        xdp_mode: str | None = None, format: str = "json") -> int:
    """Load ``obj_path`` (CO-RE against ``btf``, one BTF or several searched in order as
    :func:`corebpf.loader.load` takes them; default the running kernel's BTF, else
    this machine's entry of ``bundle``, a corebpf BTF bundle, else the BTF ``service``'s
    minimized for the object) with the
    read-only globals in ``rodata`` (NAME: text), attach its programs, print each record
    of its ring buffer and perf event array maps as a JSON line on ``out`` until
    ``duration`` seconds pass or SIGINT/SIGTERM arrives, then one JSON object with its
    globals and hash/array maps. Everything is closed on return; returns 0. A program
    the verifier refuses is an error ending with the verifier log's tail (``verbose``:
    all of it). ``targets`` attaches programs by name elsewhere than their section says
    (a bare ``uprobe``: ``BINARY:FUNC[+OFF]``; ``usdt``: ``BINARY:PROVIDER:NAME``), and
    ``pid`` limits uprobes and USDT probes to one process. ``iface`` (a network
    interface's name or index) is where XDP and tc programs attach (XDP through an XDP
    link, in ``xdp_mode`` ``skb``, ``native`` or ``hw`` if given; tc through tcx links,
    a classic SEC("tc") program to ingress unless ``targets`` says ``egress``); without
    it they stay unattached. ``format="text"`` prints records as an aligned table with a
    header and the exit dump as text (:mod:`corebpf.table`), for people.

    Signals only reach the main thread: from another thread, stop a run with
    ``stop_event`` (checked at least twice a second) or ``duration``."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if duration is not None and not (math.isfinite(duration) and duration >= 0):
        raise RunError(f"duration {duration!r}: expected a finite number of seconds >= 0")
    if format not in FORMATS:
        raise RunError(f"format {format!r}: expected one of {', '.join(FORMATS)}")
    xdp_flags = 0
    if xdp_mode is not None:
        if xdp_mode not in XDP_MODES:
            raise RunError(f"XDP mode {xdp_mode!r}: expected one of {', '.join(XDP_MODES)}")
        xdp_flags = XDP_MODES[xdp_mode]
    obj = ObjectSpec.load(obj_path)
    _require_privileges(obj, iface is not None)
    if iface is not None:
        iface = resolve_iface(iface)[1]  # a missing interface said before any loading
    values = rodata_values(obj, rodata or {})
    readers = [m for m in obj.maps.values() if m.type in (MAP_TYPE_RINGBUF,
                                                           MAP_TYPE_PERF_EVENT_ARRAY)]
    decoders = {m.name: event_decoder(obj, m, event_type) for m in readers}
    for m in readers:
        if not event_type_id(obj, m, event_type):
            print(f"corebpf run: {untyped_hint(obj, m)}", file=err)
    if event_type is not None and not readers:
        print(f"corebpf run: {obj.source} has no ring buffer or perf event array; "
              "--event-type is unused", file=err)
    if iface is not None and not any(
            p.section_def is not None and p.section_def.attach in _NET_KINDS
            for p in obj.entry_programs()):
        print(f"corebpf run: {obj.source} has no XDP or tc program; --iface is unused",
              file=err)
    output = _Output(out, err, format, obj, readers, event_type)
    with _Closing() as stack:
        coll = stack.enter_context(load(obj, btf=btf,
                                        rodata=values, bundle=bundle,
                                        verifier_log_lines=None if verbose else 20,
                                        service=service))
        stop = _Stop()
        stack.callback(stop.close)
        stop.install()
        ep = select.epoll()
        stack.callback(ep.close)
        ep.register(stop.rfd, select.EPOLLIN)
        from .ringbuf import RingBufferPoller

        rings = stack.enter_context(RingBufferPoller())
        perfs: list[PerfBuffer] = []
        for m in readers:
            lm = coll.maps[m.name]
            dec = decoders[m.name]
            if m.type == MAP_TYPE_RINGBUF:
                rings.add(lm, _ring_callback(output, m.name, dec))
            else:
                from .perf import PerfBuffer

                pb = stack.enter_context(PerfBuffer(
                    lm, on_sample=_perf_callback(output, m.name, dec),
                    on_lost=_lost_callback(output, m.name)))
                perfs.append(pb)
                ep.register(pb.fileno(), select.EPOLLIN)
        if len(rings):
            ep.register(rings.fileno(), select.EPOLLIN)
        unknown = sorted(set(targets or {}) - set(coll.programs))
        if unknown:
            raise RunError(f"{obj.source}: no loaded program {unknown[0]!r} to attach "
                           f"(programs: {', '.join(coll.programs) or 'none'})")
        links, skipped = attach_programs(coll, dict(targets or {}), pid=pid, iface=iface,
                                         xdp_flags=xdp_flags)
        for link in links:
            stack.callback(link.close)
        for name, why in skipped.items():
            print(f"corebpf run: program {name!r} not attached: {why}", file=err)
        until = "Ctrl-C" if duration is None else f"{duration:g} s or Ctrl-C"
        print(f"corebpf run: {plural(len(links), 'program')} attached, reading "
              f"{plural(len(readers), 'map')}; {until} stops", file=err)
        err.flush()

        def drain() -> None:
            rings.consume()
            for pb in perfs:
                pb.consume()
            out.flush()

        deadline = None if duration is None else time.monotonic() + duration
        while not stop.requested and not (stop_event is not None and stop_event.is_set()):
            wait = 0.5
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                wait = min(wait, left)
            ep.poll(wait)
            drain()
        for link in links:  # no new records from here; what was written is still read
            link.close()
        drain()
        output.final(coll)
        out.flush()
    return 0


def _require_privileges(obj: ObjectSpec, network: bool) -> None:
    """Missing privileges said first, before hints about the object or any probe."""
    from .sys.caps import require

    types = {int(p.prog_type) for p in obj.entry_programs() if p.autoload}
    require(f"running {obj.source}", frozenset(types), network=network)


def _ring_callback(output: _Output, name: str,
                   dec: Callable[[bytes], dict[str, Any]]) -> Callable[[bytes], None]:
    def cb(data: bytes) -> None:
        output.record({"map": name, **dec(data)})
    return cb


def _perf_callback(output: _Output, name: str,
                   dec: Callable[[bytes], dict[str, Any]]) -> Callable[[int, bytes], None]:
    def cb(cpu: int, data: bytes) -> None:
        output.record({"map": name, "cpu": cpu, **dec(data)})
    return cb


def _lost_callback(output: _Output, name: str) -> Callable[[int, int], None]:
    def cb(cpu: int, count: int) -> None:
        output.lost(name, cpu, count)
    return cb

