"""The skeleton's life cycle, as bpftool's C skeletons have it: open, load, attach,
destroy; with typed views of the object's globals, maps, programs and events.

A generated module (``corebpf gen skeleton``) subclasses :class:`Skeleton` and only names
things: the object (embedded or beside the module), the ctypes classes of its types and
data sections, and which view each map and program gets. Everything that acts lives here,
so that one object file opened with ``Skeleton.open_file(path)`` behaves the same way
with classes built from its BTF at run time.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import select
import sys
import time
from collections.abc import Callable, Iterator

from ..btf import types as bt
from ..errors import Error
from ..obj.object import KCONFIG_SEC, MapSpec, ObjectSpec, ProgramSpec, kconfig_layout
from .types import Struct, Union

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, ClassVar, Generic, Self, TypeVar

    from ..archive.service import ServiceClient
    from ..btf import Spec
    from ..links import Link
    from ..loader import Collection, CoreBTF, LoadedMap
    from ..loader import Program as LoadedProgram
    from ..maps import Map
    from ..perf import PerfBuffer
    from ..ringbuf import RingBuffer as RingBuffer_

    K = TypeVar("K")
    V = TypeVar("V")
    E = TypeVar("E")
else:
    K = V = E = None

    class Generic:
        """Subscription at run time gives the class back (no ``typing`` import)."""

        def __class_getitem__(cls, item: object) -> object:
            return cls

__all__ = [
    "DataSection",
    "Embedded",
    "EventBuffer",
    "Files",
    "MapView",
    "Maps",
    "PerfEventArray",
    "Program",
    "Programs",
    "RingBuf",
    "Skeleton",
    "SkeletonError",
]

MAP_TYPE_PERF_EVENT_ARRAY = 4
MAP_TYPE_RINGBUF = 27
_EVENT_MAP_TYPES = (MAP_TYPE_PERF_EVENT_ARRAY, MAP_TYPE_RINGBUF)


class SkeletonError(Error):
    """A skeleton used out of order (attach before load, writing .rodata after load), or a
    generated module that no longer fits its object."""


# -- where the object comes from ----------------------------------------------------------

_ARCH = {"x86_64": "x86", "amd64": "x86", "i386": "x86", "i686": "x86", "aarch64": "arm64",
         "arm64": "arm64", "armv7l": "arm", "s390x": "s390", "ppc64le": "powerpc",
         "ppc64": "powerpc", "riscv64": "riscv", "mips64": "mips", "loongarch64": "loongarch"}


def machine_variant() -> tuple[str, str]:
    """(arch, bpfel|bpfeb) of this machine: which of a skeleton's objects it runs."""
    machine = os.uname().machine
    arch = _ARCH.get(machine, machine)
    return arch, "bpfel" if sys.byteorder == "little" else "bpfeb"


def pick_variant(variants: Iterator[str] | list[str], name: str) -> str:
    """The object variant for this machine: ``<arch>.<endian>`` (built with
    ``-D__TARGET_ARCH_<arch>``) first, else ``<endian>``."""
    have = list(variants)
    arch, endian = machine_variant()
    for want in (f"{arch}.{endian}", endian):
        if want in have:
            return want
    raise SkeletonError(f"{name}: no object for this machine ({arch}, {endian}); the "
                        f"skeleton has {', '.join(have) or 'none'}")


def _digest(data: bytes) -> str:
    """sha256 of an object. CPython's built-in sha256 where it has one (``_sha256``,
    3.12+ ``_sha2``): hashlib loads OpenSSL, a few ms of every skeleton's start-up."""
    try:
        from _sha256 import sha256  # type: ignore[import-not-found]
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[import-not-found]
        except ImportError:
            from hashlib import sha256
    return str(sha256(data).hexdigest())


class Embedded:
    """Objects carried inside the generated module: zlib-compressed, base85 text, one per
    variant (``bpfel``, ``bpfeb``, ``x86.bpfel`` ...)."""

    def __init__(self, name: str, variants: dict[str, str],
                 digests: dict[str, str] | None = None):
        self.name = name
        self.variants = variants
        self.digests = digests or {}

    def read(self, variant: str) -> bytes:
        import base64
        import zlib

        try:
            return zlib.decompress(base64.b85decode("".join(self.variants[variant].split())))
        except (ValueError, zlib.error) as e:
            raise SkeletonError(f"{self.name}: embedded {variant} object is damaged: {e}") \
                from None

    def open(self) -> tuple[ObjectSpec, bool]:
        """This machine's object, and whether it is the one the module was generated
        (and its classes checked) against."""
        v = pick_variant(list(self.variants), self.name)
        data = self.read(v)
        return (ObjectSpec(data, source=f"{self.name}.{v}.o"),
                self.digests.get(v) == _digest(data))

    @staticmethod
    def encode(data: bytes) -> str:
        import base64
        import zlib

        return base64.b85encode(zlib.compress(data, 9)).decode()


class Files:
    """Objects in files beside the generated module (relative paths), one per variant."""

    def __init__(self, module_file: str, variants: dict[str, str],
                 digests: dict[str, str] | None = None):
        self.dir = os.path.dirname(os.path.abspath(module_file))
        self.variants = variants
        self.digests = digests or {}

    def path(self, variant: str | None = None) -> str:
        v = variant or pick_variant(list(self.variants), self.dir)
        return os.path.join(self.dir, self.variants[v])

    def open(self) -> tuple[ObjectSpec, bool]:
        """This machine's object, and whether it is byte for byte the one the module was
        generated (and its classes checked) against: then the classes need no check."""
        v = pick_variant(list(self.variants), self.dir)
        path = os.path.join(self.dir, self.variants[v])
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise SkeletonError(f"{path}: cannot read the skeleton's object: {e.strerror}") \
                from None
        return ObjectSpec(data, source=path), self.digests.get(v) == _digest(data)


# -- globals ------------------------------------------------------------------------------


class DataSection(Struct):
    """A data section (``.rodata``, ``.bss``, ``.data``, ``.data.NAME``) as one struct of
    its variables. Before load it is the initial contents, which load() hands to the
    kernel; after load ``.bss``/``.data`` read and write the map's memory directly (as
    libbpf's skel->bss does) and ``.rodata``, frozen by then, refuses writes."""

    _section_: ClassVar[str] = ""
    _member_word = "variable"

    def _where(self, name: str | None) -> str:
        return self._section_ if name is None else f"{self._section_} variable {name!r}"

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_frozen_"):
            why = ("the kernel's configuration, read-only" if self._section_ == KCONFIG_SEC
                   else "read-only once the object is loaded (const volatile is set before "
                   "load())")
            raise SkeletonError(f"{self._section_} variable {name!r}: {why}")
        super().__setattr__(name, value)


def _section_attr(section: str) -> str:
    """``.rodata`` -> ``rodata``, ``.data.cfg`` -> ``data_cfg``."""
    return section.lstrip(".").replace(".", "_").replace("-", "_")


# -- maps -----------------------------------------------------------------------------------


class MapView(Generic[K, V]):
    """One map of the object: its definition before load (type, max_entries can still
    change), a dict-like view of its entries after, with keys and values as their Python
    types (generated classes for structs)."""

    def __init__(self, skel: Skeleton, spec: MapSpec):
        self._skel = skel
        self.spec = spec
        self._map: Map | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def _before_load(self, what: str) -> None:
        if self._skel.collection is not None:
            raise SkeletonError(f"map {self.name!r}: {what} only before load()")

    @property
    def type(self) -> int:
        return self.spec.type

    @type.setter
    def type(self, value: int) -> None:
        self._before_load("the type can change")
        self.spec.type = int(value)
        if value == MAP_TYPE_PERF_EVENT_ARRAY:
            self.spec.max_entries = 0  # one slot per possible CPU
            self.spec.key_size = self.spec.value_size = 4
        elif value == MAP_TYPE_RINGBUF:
            self.spec.key_size = self.spec.value_size = 0

    @property
    def max_entries(self) -> int:
        return self.spec.max_entries

    @max_entries.setter
    def max_entries(self, value: int) -> None:
        self._before_load("max_entries can change")
        self.spec.max_entries = int(value)

    @property
    def loaded(self) -> LoadedMap:
        coll = self._skel.collection
        if coll is None or self.name not in coll.maps:
            raise SkeletonError(f"map {self.name!r}: not loaded (call load() first)")
        return coll.maps[self.name]

    @property
    def fd(self) -> int:
        return self.loaded.fd.fd

    @property
    def map(self) -> Map:
        """The kernel map (:class:`corebpf.maps.Map`), with this view's key/value types."""
        if self._map is None:
            self._map = self._skel._open_map(self)
        return self._map

    def lookup(self, key: K) -> V | None:
        return self.map.get(key)  # type: ignore[no-any-return]

    def __getitem__(self, key: K) -> V:
        return self.map.lookup(key)  # type: ignore[no-any-return]

    def __setitem__(self, key: K, value: V) -> None:
        self.map.update(key, value)

    def __delitem__(self, key: K) -> None:
        self.map.delete(key)

    def __contains__(self, key: object) -> bool:
        return self.map.get(key) is not None

    def __iter__(self) -> Iterator[K]:
        return self.keys()

    def keys(self) -> Iterator[K]:
        return self.map.keys()

    def values(self) -> Iterator[V]:
        return (v for _, v in self.map.items())

    def items(self) -> Iterator[tuple[K, V]]:
        return self.map.items()

    def update(self, key: K, value: V, flags: int = 0) -> None:
        self.map.update(key, value, flags)

    def delete(self, key: K) -> None:
        self.map.delete(key)

    def clear(self) -> None:
        """Delete every entry (hash maps; array slots cannot be deleted)."""
        for k in list(self.map.keys()):
            self.map.delete(k)

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, type={self.type})"


class EventBuffer(MapView[int, int], Generic[E]):
    """A ring buffer or perf event array: its records as the event type (the map's
    ``__type(value, ...)``, else ``struct event``), or bytes when it has none."""

    def __init__(self, skel: Skeleton, spec: MapSpec):
        super().__init__(skel, spec)
        self.event_type: Any = None
        self._reader: RingBuffer_ | PerfBuffer | None = None
        self._pending: list[Any] = []
        self._callback: Callable[[Any], None] | None = None
        #: samples the kernel dropped, by CPU (perf buffers)
        self.lost: dict[int, int] = {}
        #: called with (cpu, count) for each loss report (perf buffers)
        self.on_lost: Callable[[int, int], None] | None = None
        self._decode: Callable[[bytes], Any] = bytes

    def _set_event_type(self, cls: Any) -> None:
        self.event_type = cls
        if cls is None:
            self._decode = bytes
            return
        size = ctypes.sizeof(cls)
        fbc = cls.from_buffer_copy

        def decode(data: bytes) -> Any:
            return fbc(data) if len(data) >= size else fbc(data.ljust(size, b"\0"))
        self._decode = decode

    def decode(self, data: bytes) -> E:
        """One record as the event type (a short record zero-padded)."""
        return self._decode(data)  # type: ignore[no-any-return]

    def on_event(self, callback: Callable[[E], None]) -> None:
        """Hand every record to ``callback`` from :meth:`Skeleton.poll` (instead of
        :meth:`read`)."""
        self._callback = callback

    def _deliver(self, data: bytes) -> None:
        ev = self._decode(data)
        if self._callback is not None:
            self._callback(ev)
        else:
            self._pending.append(ev)

    def _deliver_perf(self, cpu: int, data: bytes) -> None:
        self._deliver(data)

    def _lost(self, cpu: int, count: int) -> None:
        self.lost[cpu] = self.lost.get(cpu, 0) + count
        if self.on_lost is not None:
            self.on_lost(cpu, count)

    def reader(self) -> RingBuffer_ | PerfBuffer:
        """The reader of this buffer (made on first use; closed with the skeleton)."""
        if self._reader is None:
            lm = self.loaded
            if self.spec.type == MAP_TYPE_RINGBUF:
                from ..ringbuf import RingBuffer

                self._reader = RingBuffer(lm)
            else:
                from ..perf import PerfBuffer

                self._reader = PerfBuffer(lm, page_count=self._skel.perf_pages,
                                          on_sample=self._deliver_perf, on_lost=self._lost)
        return self._reader

    def consume(self) -> int:
        """Deliver every record there is now, without waiting; returns how many."""
        r: Any = self.reader()
        if self.spec.type == MAP_TYPE_RINGBUF:
            return int(r.consume(self._deliver))
        return int(r.consume())

    def read(self, timeout: float | None = None) -> Iterator[E]:
        """Records as they arrive, for ``timeout`` seconds (None: until the caller stops
        iterating), each decoded as the event type."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self.reader()
        cb, self._callback = self._callback, None
        try:
            while True:
                self.consume()
                while self._pending:
                    pending, self._pending = self._pending, []
                    yield from pending
                    self.consume()
                wait = -1.0
                if deadline is not None:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        return
                _wait([self], wait)
        finally:
            self._callback = cb

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        super().close()


class RingBuf(EventBuffer[E]):
    """A BPF_MAP_TYPE_RINGBUF map's records."""


class PerfEventArray(EventBuffer[E]):
    """A BPF_MAP_TYPE_PERF_EVENT_ARRAY map's records."""


class Maps:
    """The object's maps by name (attributes, and ``maps["name"]`` for any name)."""

    def __init__(self, views: dict[str, MapView[Any, Any]]):
        self._views = views
        for name, view in views.items():
            if name.isidentifier():
                object.__setattr__(self, name, view)

    def __getitem__(self, name: str) -> MapView[Any, Any]:
        try:
            return self._views[name]
        except KeyError:
            raise KeyError(f"no map {name!r} (maps: {', '.join(self._views)})") from None

    def __iter__(self) -> Iterator[MapView[Any, Any]]:
        return iter(self._views.values())

    def __len__(self) -> int:
        return len(self._views)


# -- programs -----------------------------------------------------------------------------


class Program:
    """One program of the object: whether it loads (before load), then its fd, verifier
    log and attachments."""

    def __init__(self, skel: Skeleton, spec: ProgramSpec):
        self._skel = skel
        self.spec = spec
        #: what :meth:`Skeleton.attach` attaches this program to instead of what its
        #: section names (``/usr/lib/libreadline.so.8:readline``, ``sched/sched_switch``)
        self.target: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def section(self) -> str:
        return self.spec.section

    @property
    def autoload(self) -> bool:
        return self.spec.autoload

    @autoload.setter
    def autoload(self, value: bool) -> None:
        if self._skel.collection is not None:
            raise SkeletonError(f"program {self.name!r}: autoload can change only before "
                                "load()")
        self.spec.autoload = bool(value)

    @property
    def loaded(self) -> LoadedProgram:
        coll = self._skel.collection
        if coll is None:
            raise SkeletonError(f"program {self.name!r}: not loaded (call load() first)")
        p = coll.programs.get(self.name)
        if p is None:
            raise SkeletonError(f"program {self.name!r}: not loaded (autoload is off)")
        return p

    @property
    def fd(self) -> int:
        return self.loaded.fd.fd

    @property
    def verifier_log(self) -> str:
        return self.loaded.verifier_log

    def attach(self, *, target: str | None = None, pid: int = -1, iface: str | int | None = None,
               cgroup: str | None = None) -> Link:
        """Attach as the section says (``target`` overrides what it names); the link
        belongs to the skeleton and closes with it."""
        from ..links import attach

        link = attach(self.loaded, target=target, pid=pid, iface=iface, cgroup=cgroup)
        self._skel.links.append(link)
        return link

    def __repr__(self) -> str:
        return f"Program({self.name!r}, section={self.section!r})"


class Programs:
    """The object's programs by name (attributes, and ``progs["name"]``)."""

    def __init__(self, views: dict[str, Program]):
        self._views = views
        for name, view in views.items():
            if name.isidentifier():
                object.__setattr__(self, name, view)

    def __getitem__(self, name: str) -> Program:
        try:
            return self._views[name]
        except KeyError:
            raise KeyError(f"no program {name!r} (programs: {', '.join(self._views)})") \
                from None

    def __iter__(self) -> Iterator[Program]:
        return iter(self._views.values())

    def __len__(self) -> int:
        return len(self._views)


# -- the skeleton -------------------------------------------------------------------------


class Skeleton:
    """Open (parse the object; nothing in the kernel yet), set globals and options,
    :meth:`load`, :meth:`attach`, read, :meth:`close` (or leave the ``with`` block)."""

    #: set by generated modules
    _object_: ClassVar[Embedded | Files | None] = None
    #: ("struct NAME", class) and (section, class) pairs
    _types_: ClassVar[tuple[tuple[str, Any], ...]] = ()
    _sections_: ClassVar[tuple[tuple[str, Any], ...]] = ()
    _maps_class_: ClassVar[type[Maps]] = Maps
    _progs_class_: ClassVar[type[Programs]] = Programs

    #: data pages per CPU for perf buffers
    perf_pages = 64

    def __init__(self, obj: ObjectSpec | str | os.PathLike[str] | None = None, *,
                 btf: CoreBTF | None = None,
                 bundle: str | os.PathLike[str] | None = None, log_level: int = 0,
                 service: str | ServiceClient | None = None):
        trusted = False
        if obj is None:
            if self._object_ is None:
                raise SkeletonError(f"{type(self).__name__}: no object (pass one)")
            obj, trusted = self._object_.open()
        self.obj = obj if isinstance(obj, ObjectSpec) else ObjectSpec.load(obj)
        self.btf = btf
        self.bundle = bundle
        self.service = service
        self.log_level = log_level
        self.collection: Collection | None = None
        self.links: list[Link] = []
        self._types = _TypeBinder(self.obj, dict(type(self)._types_), trusted)
        self.sections: dict[str, DataSection] = {}
        self._in_map_memory: set[str] = set()  # sections whose views are the maps' mmap
        for m in self.obj.maps.values():
            if m.is_data and m.variables:
                cls = self._types.section_class(m, dict(type(self)._sections_).get(m.section))
                view = cls.from_buffer(_section_buffer(self.obj, m.section,
                                                       ctypes.sizeof(cls), m.contents))
                self.sections[m.section] = view
                object.__setattr__(self, _section_attr(m.section), view)
        kcfg = self._types.kconfig_class(dict(type(self)._sections_).get(KCONFIG_SEC))
        if kcfg is not None:  # the kernel's values, known once loaded: read-only
            view = kcfg.from_buffer(_section_buffer(self.obj, KCONFIG_SEC,
                                                    ctypes.sizeof(kcfg)))
            view.__dict__["_frozen_"] = True
            self.sections[KCONFIG_SEC] = view
            object.__setattr__(self, "kconfig", view)
        self.maps = self._maps_class_(self._map_views())
        self.progs = self._progs_class_({p.name: Program(self, p)
                                         for p in self.obj.entry_programs()})

    @classmethod
    def open_file(cls, path: str | os.PathLike[str], **kw: Any) -> Self:
        """A skeleton for any object file, its classes built from its BTF now."""
        return cls(path, **kw)

    def _map_views(self) -> dict[str, MapView[Any, Any]]:
        views: dict[str, MapView[Any, Any]] = {}
        for m in self.obj.maps.values():
            if m.name.endswith(".inner"):
                continue
            name = _section_attr(m.section) if m.is_data else m.name
            if m.type in _EVENT_MAP_TYPES:
                ev: EventBuffer[Any] = (RingBuf if m.type == MAP_TYPE_RINGBUF
                                        else PerfEventArray)(self, m)
                ev._set_event_type(self._types.event_class(m))
                views[name] = ev
            else:
                views[name] = MapView(self, m)
        return views

    # -- load -------------------------------------------------------------------------

    def load(self, *, btf: CoreBTF | None = None,
             bundle: str | os.PathLike[str] | None = None, log_level: int | None = None,
             verifier_log_lines: int | None = 20,
             service: str | ServiceClient | None = None) -> None:
        """Create the maps with the globals as set, relocate (CO-RE against ``btf``, one
        BTF or several searched in order as :func:`corebpf.loader.load` takes them, the
        running kernel's BTF, this machine's entry of ``bundle``, or last the BTF
        ``service``'s, minimized for this object) and load every program whose autoload
        is on. A refused program's error ends with the last ``verifier_log_lines`` lines
        of the verifier's log (None: all of it)."""
        if self.collection is not None:
            raise SkeletonError(f"{self.obj.source}: already loaded")
        from ..loader import load

        for section, view in self.sections.items():
            if section == KCONFIG_SEC:
                continue
            m = self._data_map(section)
            m.contents = bytes(view)[:len(m.contents)] if m.contents else bytes(view)
        btf = btf if btf is not None else self.btf
        bundle = bundle if bundle is not None else self.bundle
        service = service if service is not None else self.service
        lvl = self.log_level if log_level is None else log_level
        self.collection = load(self.obj, btf=btf, bundle=bundle, log_level=lvl,
                               verifier_log_lines=verifier_log_lines, service=service)
        try:
            self._rebind_sections()
        except BaseException:
            self.close()
            raise

    def _data_map(self, section: str) -> MapSpec:
        for m in self.obj.maps.values():
            if m.is_data and m.section == section:
                return m
        raise SkeletonError(f"{self.obj.source}: no data section {section!r}")

    def _rebind_sections(self) -> None:
        coll = self.collection
        assert coll is not None
        for section, view in list(self.sections.items()):
            lm = next(lm for lm in coll.maps.values()
                      if lm.spec.is_data and lm.spec.section == section)
            cls = type(view)
            if lm.mmap is not None and not lm.spec.read_only:
                new = cls.from_buffer(lm.mmap)
                self._in_map_memory.add(section)
            else:
                new = cls.from_buffer_copy(lm.read_data().ljust(ctypes.sizeof(cls), b"\0"))
                new.__dict__["_frozen_"] = lm.spec.read_only
            self.sections[section] = new
            object.__setattr__(self, _section_attr(section), new)

    def _open_map(self, view: MapView[Any, Any]) -> Map:
        from ..maps import Map

        lm = view.loaded
        m = view.spec
        spec = self.obj.btf
        if m.is_data or spec is None:
            return lm.as_map()
        kc = self._types.value_class(m.key_type_id)
        vc = self._types.value_class(m.value_type_id)
        return Map.from_fd(lm.fd.fd, btf=spec, key_type_id=0 if kc else m.key_type_id,
                           value_type_id=0 if vc else m.value_type_id, key_ctype=kc,
                           value_ctype=vc, load_btf=False)

    # -- attach -----------------------------------------------------------------------

    def attach(self) -> None:
        """Attach every loaded program whose section names its target (libbpf's skeleton
        attach); the others (``xdp``, a bare ``uprobe``) are left for
        ``progs.NAME.attach(...)``."""
        coll = self._loaded("attach()")
        from ..links import attach_programs

        targets = {p.name: p.target for p in self.progs if p.target is not None}
        links, self.skipped = attach_programs(coll, targets)
        self.links.extend(links)

    def detach(self) -> None:
        """Close every link this skeleton made."""
        links, self.links = self.links, []
        for link in reversed(links):
            link.close()

    def _loaded(self, what: str) -> Collection:
        if self.collection is None:
            raise SkeletonError(f"{self.obj.source}: {what} needs load() first")
        return self.collection

    # -- events -------------------------------------------------------------------------

    def poll(self, timeout: float | None = None) -> int:
        """Wait up to ``timeout`` seconds (None: forever) for records in any event map with
        a callback (:meth:`EventBuffer.on_event`), deliver them; returns how many."""
        bufs = [v for v in self.maps if isinstance(v, EventBuffer) and v._callback is not None]
        if not bufs:
            raise SkeletonError(f"{self.obj.source}: poll() with no on_event() callback set")
        n = sum(b.consume() for b in bufs)
        if n:
            return n
        _wait(bufs, -1.0 if timeout is None else timeout)
        return sum(b.consume() for b in bufs)

    # -- close --------------------------------------------------------------------------

    def close(self) -> None:
        """Detach, stop readers, close every map and program (libbpf's destroy)."""
        self.detach()
        for v in self.maps:
            v.close()
        for section, view in list(self.sections.items()):
            if section not in self._in_map_memory:  # its own memory: kept, read-only
                view.__dict__["_frozen_"] = True
                continue
            # views into the maps' memory must go before the memory does
            snap = type(view).from_buffer_copy(bytes(view))
            snap.__dict__["_frozen_"] = True
            self.sections[section] = snap
            object.__setattr__(self, _section_attr(section), snap)
        self._in_map_memory.clear()
        coll, self.collection = self.collection, None
        if coll is not None:
            coll.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "loaded" if self.collection is not None else "open"
        return f"{type(self).__name__}({self.obj.source!r}, {state})"


def _wait(buffers: list[EventBuffer[Any]], timeout: float) -> None:
    """Until one of the buffers' readers has records, or ``timeout`` seconds (< 0:
    forever). Each reader's fd is already an epoll of its rings: one select over them,
    nothing to set up or keep in step with the callbacks set."""
    select.select([b.reader().fileno() for b in buffers], [], [],
                  None if timeout < 0 else timeout)


# -- classes for the object's types -------------------------------------------------------


def _layout_matches(spec: Spec, tid: int, cls: Any) -> bool:
    from ..btf.codec import layout_matches

    return layout_matches(spec, tid, cls)


class _TypeBinder:
    """Which ctypes class stands for a BTF type of the object: the generated module's,
    checked against the object's BTF once (unless the object is byte for byte the one the
    module was generated and checked against: ``trusted``), else one built from BTF now."""

    def __init__(self, obj: ObjectSpec, generated: dict[str, Any], trusted: bool = False):
        self.obj = obj
        self.generated = generated
        self.trusted = trusted
        self._checked: dict[int, Any] = {}
        self._builder: Any = None

    def builder(self) -> Any:
        if self._builder is None:
            from ..btf.codec import _CtypesBuilder

            assert self.obj.btf is not None
            self._builder = _CtypesBuilder(self.obj.btf, {}, bases=(Struct, Union))
        return self._builder

    def value_class(self, type_id: int) -> Any:
        """The class for a struct/union (behind typedefs and modifiers), or None for the
        others (they decode through the codec: ints, arrays, enums)."""
        spec = self.obj.btf
        if spec is None or not type_id:
            return None
        tid = spec.resolve(type_id)
        if tid in self._checked:
            return self._checked[tid]
        t = spec.type(tid)
        if not isinstance(t, bt.Struct | bt.Union):
            return None
        key = f"{'union' if isinstance(t, bt.Union) else 'struct'} {t.name}"
        cls = self.generated.get(key) if t.name else None
        if cls is not None and not self.trusted and not _layout_matches(spec, tid, cls):
            raise SkeletonError(f"{self.obj.source}: {key} no longer matches the generated "
                                f"class {cls.__name__} (regenerate the skeleton)")
        if cls is None:
            cls = self.builder().build(tid, 0)
        self._checked[tid] = cls
        return cls

    def event_class(self, m: MapSpec) -> Any:
        spec = self.obj.btf
        if spec is None:
            return None
        if m.value_type_id:
            cls = self.value_class(m.value_type_id)
            if cls is not None:
                return cls
        for kind in (bt.Kind.STRUCT, bt.Kind.UNION):
            ids = spec.find_by_name("event", kind)
            if ids:
                return self.value_class(ids[0])
        return None

    def section_class(self, m: MapSpec, generated: Any) -> Any:
        if generated is not None and self.trusted:
            return generated
        if generated is not None:
            fields = section_fields(self.obj, m, self)
            if not _same_fields(generated, fields, m.value_size):
                raise SkeletonError(f"{self.obj.source}: {m.section} no longer matches the "
                                    f"generated class {generated.__name__} (regenerate the "
                                    "skeleton)")
            return generated
        ns = {"_pack_": 1, "_section_": m.section, "_c_name_": m.section,
              "_fields_": section_fields(self.obj, m, self)}
        return type(_section_attr(m.section).title(), (DataSection,), ns)

    def kconfig_class(self, generated: Any) -> Any:
        """The class of the .kconfig externs as the loader lays them out, or None."""
        layout, size = kconfig_layout(self.obj)
        if not layout:
            return None
        if generated is not None and self.trusted:
            return generated
        fields = kconfig_fields(self.obj, self)
        if generated is not None:
            if not _same_fields(generated, fields, size):
                raise SkeletonError(f"{self.obj.source}: .kconfig no longer matches the "
                                    f"generated class {generated.__name__} (regenerate the "
                                    "skeleton)")
            return generated
        ns = {"_pack_": 1, "_section_": KCONFIG_SEC, "_c_name_": KCONFIG_SEC,
              "_fields_": fields}
        return type("Kconfig", (DataSection,), ns)


def _section_buffer(obj: ObjectSpec, section: str, size: int,
                    contents: bytes = b"") -> mmap.mmap:
    """The bytes behind a section's view before load, as libbpf's: anonymous shared
    memory whose pages exist once touched (a .bss claiming gigabytes costs none)."""
    try:
        buf = mmap.mmap(-1, max(size, 1))
    except (OSError, OverflowError, ValueError) as e:
        raise SkeletonError(f"{obj.source}: section {section!r}: cannot map {size} bytes "
                            f"for its view: {getattr(e, 'strerror', None) or e}") from None
    n = min(len(contents), size)
    buf[:n] = contents[:n]
    return buf


def kconfig_fields(obj: ObjectSpec, types: _TypeBinder) -> list[tuple[Any, ...]]:
    """The ``_fields_`` of the .kconfig map: each extern at the loader's offset."""
    layout, size = kconfig_layout(obj)
    b = types.builder()
    fields: list[tuple[Any, ...]] = []
    pos = 0
    for name, (off, n) in sorted(layout.items(), key=lambda kv: kv[1][0]):
        if off > pos:
            fields.append((f"_pad_{pos}", ctypes.c_uint8 * (off - pos)))
        ext = obj.externs[name]
        ct = types.value_class(ext.target_type_id) or b.swapped(b.build(ext.target_type_id, 0))
        if ctypes.sizeof(ct) != n:
            ct = ctypes.c_uint8 * n
        fields.append((name, ct))
        pos = off + n
    if pos < size:
        fields.append((f"_pad_{pos}", ctypes.c_uint8 * (size - pos)))
    return fields


def section_fields(obj: ObjectSpec, m: MapSpec, types: _TypeBinder) -> list[tuple[Any, ...]]:
    """The ``_fields_`` of a data section: its variables at their offsets, padded."""
    spec = obj.btf
    assert spec is not None
    b = types.builder()
    fields: list[tuple[Any, ...]] = []
    pos = 0
    for v in sorted(m.variables, key=lambda v: v.offset):
        if v.offset < pos:
            continue  # overlapping (aliases): the first one owns the bytes
        if v.offset > pos:
            fields.append((f"_pad_{pos}", ctypes.c_uint8 * (v.offset - pos)))
        ct = types.value_class(v.type_id) or b.swapped(b.build(v.type_id, 0))
        if ctypes.sizeof(ct) != v.size:
            ct = ctypes.c_uint8 * v.size
        fields.append((v.name, ct))
        pos = v.offset + v.size
    if pos < m.value_size:
        fields.append((f"_pad_{pos}", ctypes.c_uint8 * (m.value_size - pos)))
    return fields


def _same_fields(cls: Any, fields: list[tuple[Any, ...]], size: int) -> bool:
    if ctypes.sizeof(cls) != max(size, 0):
        return False
    pos = 0
    for f in fields:
        size = ctypes.sizeof(f[1])
        if not f[0].startswith("_pad_"):
            cf = cls.__dict__.get(f[0])
            if cf is None or int(cf.size) != size or int(cf.offset) != pos:
                return False
        pos += size
    return True
