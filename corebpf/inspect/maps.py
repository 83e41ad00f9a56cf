"""Loaded maps, as ``bpftool map show|dump|lookup|update|delete`` handle them.

Keys and values go in as bytes (bpftool's ``key hex 01 00 00 00`` or ``key 1 0 0 0``)
or typed, as JSON in the shape the dump prints, encoded through the map's BTF
(``key json '{"id": 1}'``); they come out as hex and, where the map has BTF types,
through bpftool's BTF dumper (:mod:`corebpf.inspect.values`). Element access goes
through :class:`corebpf.maps.Map`; every fd opened is closed before a call returns.
"""

from __future__ import annotations

import errno as E
import json
import os
import sys
from collections.abc import Iterator, Sequence

from .. import sys as ksys
from .._record import record
from ..btf import Spec
from ..btf.codec import CodecError
from ..errors import BTFError
from ..maps import Map, MapError, MapKeyError
from ..obj.sections import MapType
from .common import (
    BTFCache,
    InspectError,
    Selector,
    hex_text,
    ifname_in_netns,
    iter_ids,
    offload_text,
    open_matching,
    open_pinned,
    parse_selector,
    pinned_paths,
    reason,
)
from .names import map_type_name, prog_type_name, type_text
from .values import Obj, Writer, dump, encode

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Entry",
    "MapDump",
    "MapRecord",
    "delete_elem",
    "dump_json",
    "dump_maps",
    "dump_text",
    "iter_maps",
    "lookup_elem",
    "map_json",
    "map_text",
    "open_maps",
    "parse_elem",
    "select_maps",
    "update_elem",
]

PERCPU = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH,
                    MapType.PERCPU_CGROUP_STORAGE})
MAP_OF_MAPS = frozenset({MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})
#: Maps whose contents are not key/value pairs one can list: shown, not dumped.
NOT_DUMPED = {
    MapType.RINGBUF: "a ring buffer's records are read by its consumer (corebpf run, "
                     "corebpf.ringbuf.RingBufferPoller), not stored under keys",
    MapType.USER_RINGBUF: "a user ring buffer's records are consumed by its program, not "
                          "stored under keys",
    MapType.QUEUE: "a queue has no keys: its values can only be popped",
    MapType.STACK: "a stack has no keys: its values can only be popped",
    MapType.BLOOM_FILTER: "a bloom filter holds no values to list, only membership",
}


@record
class MapRecord:
    """One loaded map. ``frozen`` and ``bytes_memlock`` come from /proc/self/fdinfo (None
    where it is not readable); ``owner_prog_type``/``owner_jited`` for program arrays
    once a program uses them; ``pinned`` as for programs."""

    id: int
    type: str | int
    type_id: int
    name: str
    flags: int
    bytes_key: int
    bytes_value: int
    max_entries: int
    bytes_memlock: int | None
    frozen: int
    btf_id: int
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    btf_vmlinux_value_type_id: int = 0
    map_extra: int = 0
    ifindex: int = 0
    netns_dev: int = 0
    netns_ino: int = 0
    owner_prog_type: str | int | None = None
    owner_jited: bool | None = None
    pinned: list[str] | None = None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _read(fd: int, pins: dict[int, list[str]] | None) -> tuple[MapRecord, ksys.KernelMapInfo]:
    try:
        info = ksys.map_info(fd)
    except OSError as e:
        raise InspectError(f"can't get map info: {reason(e)}") from None
    fi = ksys.fdinfo(fd)
    owner_type: str | int | None = None
    owner_jited = None
    if info.type == MapType.PROG_ARRAY:
        t = _int(fi.get("owner_prog_type"))
        owner_type = prog_type_name(t) if t is not None else None
        j = _int(fi.get("owner_jited"))
        owner_jited = bool(j) if j is not None else None
    rec = MapRecord(
        id=info.id, type=map_type_name(info.type), type_id=info.type, name=info.name,
        flags=info.map_flags, bytes_key=info.key_size, bytes_value=info.value_size,
        max_entries=info.max_entries, bytes_memlock=_int(fi.get("memlock")),
        frozen=_int(fi.get("frozen")) or 0, btf_id=info.btf_id,
        btf_key_type_id=info.btf_key_type_id, btf_value_type_id=info.btf_value_type_id,
        btf_vmlinux_value_type_id=info.btf_vmlinux_value_type_id, map_extra=info.map_extra,
        ifindex=info.ifindex, netns_dev=info.netns_dev, netns_ino=info.netns_ino,
        owner_prog_type=owner_type, owner_jited=owner_jited,
        pinned=list(reversed(pins.get(info.id, []))) if pins else None)
    return rec, info


def iter_maps(*, pinned: bool = False) -> Iterator[MapRecord]:
    """Every loaded map, by increasing id (``pinned``: with bpftool ``-f``'s pins)."""
    pins = pinned_paths("map") if pinned else None
    for map_id in iter_ids(ksys.map_get_next_id):
        try:
            fd = ksys.map_get_fd_by_id(map_id)
        except OSError as e:
            if e.errno == E.ENOENT:
                continue
            raise InspectError(f"can't get map by id ({map_id}): "
                               f"{reason(e)}") from None
        try:
            rec = _read(fd.fd, pins)[0]
        except InspectError:
            continue
        finally:
            fd.close()
        yield rec


def open_maps(sel: Selector) -> list[ksys.FD]:
    """New fds for the maps ``sel`` names (the caller closes them)."""
    if sel.kind == "id":
        try:
            return [ksys.map_get_fd_by_id(int(sel.value))]
        except OSError as e:
            raise InspectError(f"map id {sel.value!s}: {reason(e)}") from None
    if sel.kind == "pinned":
        return [open_pinned(str(sel.value), "map")]
    if sel.kind != "name":
        raise InspectError(f"maps are selected by id, name or pinned, not {sel.kind}")
    return open_matching(ksys.map_get_next_id, ksys.map_get_fd_by_id,
                         lambda fd: ksys.map_info(fd.fd).name == sel.value,
                         f"no map with {sel}")


def select_maps(sel: Selector, *, pinned: bool = False) -> list[MapRecord]:
    """The maps ``sel`` names (several for a shared name)."""
    fds = open_maps(sel)
    pins = pinned_paths("map") if pinned else None
    try:
        return [_read(fd.fd, pins)[0] for fd in fds]
    finally:
        for fd in fds:
            fd.close()


def open_one(sel: Selector) -> ksys.FD:
    """The one map ``sel`` names (an error when a name matches several)."""
    fds = open_maps(sel)
    if len(fds) > 1:
        for fd in fds:
            fd.close()
        raise InspectError(f"several maps match {sel}: select one by id")
    return fds[0]


# -- show -------------------------------------------------------------------------------


def header_json(m: MapRecord) -> Obj:
    out = Obj([("id", m.id), ("type", m.type)])
    if m.name:
        out.append(("name", m.name))
    out.append(("flags", m.flags - (1 << 32) if m.flags >> 31 else m.flags))
    return out


def map_json(m: MapRecord) -> Obj:
    """``bpftool -j map show``'s object for one map."""
    out = header_json(m)
    if m.ifindex:
        dev = Obj([("ifindex", m.ifindex), ("ns_dev", m.netns_dev), ("ns_inode", m.netns_ino)])
        name = ifname_in_netns(m.ifindex, m.netns_dev, m.netns_ino)
        if name is not None:
            dev.append(("ifname", name))
        out.append(("dev", dev))
    out += [("bytes_key", m.bytes_key), ("bytes_value", m.bytes_value),
            ("max_entries", m.max_entries)]
    if m.bytes_memlock is not None:
        out.append(("bytes_memlock", m.bytes_memlock))
    if m.owner_prog_type is not None:
        out.append(("owner_prog_type", m.owner_prog_type))
    if m.owner_jited is not None:
        out.append(("owner_jited", m.owner_jited))
    out.append(("frozen", m.frozen))
    if m.btf_id:
        out.append(("btf_id", m.btf_id))
    if m.pinned is not None:
        out.append(("pinned", list(m.pinned)))
    return out


def header_text(m: MapRecord) -> str:
    line = f"{m.id}: {type_text(m.type)}  "
    if m.name:
        line += f"name {m.name}  "
    line += f"flags {m.flags:#x}"
    if m.ifindex:
        line += "  offloaded_to " + offload_text(m.ifindex, m.netns_dev, m.netns_ino)
    return line + "\n"


def map_text(m: MapRecord) -> str:
    """``bpftool map show``'s lines for one map."""
    out = [header_text(m), f"\tkey {m.bytes_key}B  value {m.bytes_value}B  "
                           f"max_entries {m.max_entries}"]
    if m.bytes_memlock is not None:
        out.append(f"  memlock {m.bytes_memlock}B")
    if m.owner_prog_type is not None or m.owner_jited is not None:
        out.append("\n\t")
        if m.owner_prog_type is not None:
            out.append(f"owner_prog_type {type_text(m.owner_prog_type, 'type')}  "
                       if isinstance(m.owner_prog_type, str)
                       else f"owner_prog_type {m.owner_prog_type}  ")
        if m.owner_jited is not None:
            out.append("owner jited" if m.owner_jited else "owner not jited")
    out += [f"\n\tpinned {p}" for p in m.pinned or ()]
    if m.btf_id or m.frozen:
        out.append("\n\t")
    if m.btf_id:
        out.append(f"btf_id {m.btf_id}")
    if m.frozen:
        out.append(f"{'  ' if m.btf_id else ''}frozen")
    out.append("\n")
    return "".join(out)


def maps_json(maps: list[MapRecord]) -> Any:
    items = [map_json(m) for m in maps]
    return items[0] if len(items) == 1 else items


# -- elements ---------------------------------------------------------------------------


@record
class Entry:
    """One element: ``values`` holds one value (per-CPU maps: one per possible CPU);
    ``error`` the errno of a failed lookup (values then empty)."""

    key: bytes
    values: list[bytes]
    error: int = 0


@record
class MapDump:
    """A map's elements in BPF_MAP_GET_NEXT_KEY order, with the BTF its keys and values
    print through (None when it has no value type); ``note`` says why a map was shown
    rather than dumped."""

    map: MapRecord
    entries: list[Entry]
    btf: Spec | None
    note: str = ""


def _percpu(m: MapRecord) -> bool:
    return m.type_id in PERCPU


def _kv_btf(m: MapRecord, btfs: BTFCache) -> Spec | None:
    """bpftool's get_map_kv_btf: the kernel's BTF for struct_ops-style maps, the map's
    own when it has a value type, else none."""
    if m.btf_vmlinux_value_type_id:
        return btfs.vmlinux()
    if m.btf_value_type_id:
        return btfs.get(m.btf_id)
    return None


def _value_bytes(m: MapRecord, v: Any) -> bytes:
    if isinstance(v, int):  # Map gives ids back for fd-valued maps
        return v.to_bytes(m.bytes_value, sys.byteorder)
    return bytes(v)


def _open_map(fd: ksys.FD) -> Map:
    return Map.from_fd(fd.fd, load_btf=False)


def _entries(fd: ksys.FD, m: MapRecord) -> list[Entry]:
    out: list[Entry] = []
    with _open_map(fd) as mp:
        try:
            for key in mp.keys():
                try:
                    v = mp.lookup(key)
                except MapError as e:
                    err = e.errno or E.EIO
                    if err == E.ENOENT and (m.type_id in MAP_OF_MAPS
                                            or m.type_id == MapType.PROG_ARRAY):
                        continue  # an empty slot, as bpftool skips it
                    out.append(Entry(bytes(key), [], err))
                    continue
                values = v if _percpu(m) else [v]
                out.append(Entry(bytes(key), [_value_bytes(m, x) for x in values]))
        except MapError as e:
            raise InspectError(f"map {m.id} ({type_text(m.type)} {m.name}): cannot list "
                               f"its keys: {reason(e)}") from None
    return out


def dump_maps(sel: Selector) -> list[MapDump]:
    """The elements of each map ``sel`` names; ring buffers, queues, stacks and bloom
    filters come back without entries and with a ``note`` saying why."""
    fds = open_maps(sel)
    btfs = BTFCache()
    out = []
    try:
        for fd in fds:
            m = _read(fd.fd, None)[0]
            note = NOT_DUMPED.get(m.type_id)  # type: ignore[call-overload]
            if note is not None:
                out.append(MapDump(m, [], None, f"map {m.id} ({type_text(m.type)} "
                                                f"{m.name}) is shown, not dumped: {note}"))
                continue
            try:
                spec = _kv_btf(m, btfs)
            except (InspectError, BTFError) as e:
                raise InspectError(f"map {m.id}: failed to get its BTF: {e}") from None
            out.append(MapDump(m, _entries(fd, m), spec))
    finally:
        for fd in fds:
            fd.close()
    return out


# -- output of elements -----------------------------------------------------------------



def _hex_json(data: bytes) -> list[str]:
    return [f"0x{b:02x}" for b in data]


def _formatted(m: MapRecord, spec: Spec, e: Entry, plain: bool) -> Obj:
    """bpftool's do_dump_btf: the key and value(s) through BTF."""
    out = Obj()
    if m.btf_key_type_id:
        out.append(("key", dump(spec, m.btf_key_type_id, e.key, plain=plain)))
    vid = m.btf_vmlinux_value_type_id or m.btf_value_type_id
    if not _percpu(m):
        out.append(("value", dump(spec, vid, e.values[0], plain=plain)))
    else:
        out.append(("values", [Obj([("cpu", i), ("value", dump(spec, vid, v, plain=plain))])
                               for i, v in enumerate(e.values)]))
    return out


def entry_json(m: MapRecord, spec: Spec | None, e: Entry) -> Obj:
    """One element as ``bpftool -j map dump`` prints it."""
    if e.error:
        return Obj([("key", _hex_json(e.key)),
                    ("value", Obj([("error", os.strerror(e.error))]))])
    out = Obj([("key", _hex_json(e.key))])
    if not _percpu(m):
        out.append(("value", _hex_json(e.values[0])))
    else:
        out.append(("values", [Obj([("cpu", i), ("value", _hex_json(v))])
                               for i, v in enumerate(e.values)]))
    if spec is not None:
        out.append(("formatted", _formatted(m, spec, e, plain=False)))
    return out


def _error_text(m: MapRecord, e: Entry) -> str:
    msg = "<no entry>" if e.error == E.ENOENT else \
        "<cannot read>" if e.error == E.ENOSPC and m.type_id == \
        MapType.REUSEPORT_SOCKARRAY else os.strerror(e.error)
    brk = m.bytes_key > 16 or len(msg) > 16
    single = m.bytes_key + len(msg) <= 24 and not brk
    sep = "\n" if brk else " "
    return (f"key:{sep}{hex_text(e.key)}{'  ' if single else chr(10)}"
            f"value:{sep}{msg}\n")


def entry_text(m: MapRecord, e: Entry) -> str:
    """bpftool's print_entry_plain: an element in hex."""
    if e.error:
        return _error_text(m, e)
    ks, vs = m.bytes_key, m.bytes_value
    if not _percpu(m):
        brk = ks > 16 or vs > 16
        single = ks + vs <= 24 and not brk
        sep = "\n" if brk else " "
        out = ""
        if ks:
            out += f"key:{sep}{hex_text(e.key)}" + ("  " if single else "\n")
        if vs:
            out += f"value:{sep}{hex_text(e.values[0])}"
        return out + "\n"
    out = f"key:\n{hex_text(e.key)}\n" if ks else ""
    if vs:
        for i, v in enumerate(e.values):
            out += f"value (CPU {i:02d}):{chr(10) if vs > 16 else ' '}{hex_text(v)}\n"
    return out


def _writes_btf(dumps: list[MapDump]) -> bool:
    """Whether the plain output goes through the BTF writer: every map has a value type
    (what bpftool 7.1 as packaged does: maps with BTF but no value type dump in hex)."""
    return bool(dumps) and all(d.btf is not None for d in dumps)


def dump_text(dumps: list[MapDump]) -> str:
    """``bpftool map dump``'s text: each element through BTF in its JSON-like layout
    when the maps have value types, else in hex with an element count."""
    if _writes_btf(dumps):
        w = Writer(pretty=True, bpftool_strings=True)
        if len(dumps) > 1:
            w.begin("[")
        for d in dumps:
            m = d.map
            if len(dumps) > 1:
                w.begin("{")
                for k, v in header_json(m):
                    w.name(k)
                    w.value(v)
                w.name("elements")
            w.begin("[")
            for e in d.entries:
                if e.error:
                    w.parts.append(_error_text(m, e))
                    continue
                assert d.btf is not None
                w.value(_formatted(m, d.btf, e, plain=True))
            w.end("]")
            if len(dumps) > 1:
                w.end("}")
        if len(dumps) > 1:
            w.end("]")
        return w.text() + "\n"
    out = []
    for n, d in enumerate(dumps):
        m = d.map
        if len(dumps) > 1:
            out.append(header_text(m))
        if d.note:
            out.append(map_text(m))
        else:
            for e in d.entries:
                out.append(entry_text(m, e))
            count = sum(1 for e in d.entries if not e.error)
            out.append(f"Found {count} element{'s' if count != 1 else ''}\n")
        if n != len(dumps) - 1:
            out.append("\n")
    return "".join(out)


def dump_json(dumps: list[MapDump]) -> Any:
    """``bpftool -j map dump``: the elements of one map, or for several an array of
    their headers with ``elements``."""
    def elements(d: MapDump) -> list[Obj]:
        return [entry_json(d.map, d.btf, e) for e in d.entries]

    if len(dumps) == 1:
        return elements(dumps[0])
    out = []
    for d in dumps:
        o = header_json(d.map)
        o.append(("elements", elements(d)))
        out.append(o)
    return out


# -- lookup, update, delete -------------------------------------------------------------


@record
class ElemArgs:
    """What ``key ... value ... [any|noexist|exist]`` parsed to: raw key and value bytes
    (per-CPU values repeated for every CPU) and the update flags."""

    key: bytes | None = None
    value: bytes | None = None
    value_fd: ksys.FD | None = None
    flags: int = 0


_FLAGS = {"any": 0, "noexist": 1, "exist": 2}


def _parse_bytes(words: list[str], i: int, n: int, what: str) -> tuple[bytes, int]:
    base = 0
    if i < len(words) and words[i] and "hex".startswith(words[i]):
        base = 16
        i += 1
    out = bytearray()
    while len(out) < n and i < len(words):
        w = words[i]
        try:
            b = int(w, base) if base else _c_int(w)
        except ValueError:
            raise InspectError(f"error parsing byte: {w!r}") from None
        if not 0 <= b <= 0xFF:
            raise InspectError(f"{what}: {w!r} is not a byte (0..255)")
        out.append(b)
        i += 1
    if len(out) != n:
        raise InspectError(f"{what} expected {n} bytes got {len(out)}")
    return bytes(out), i


def _c_int(text: str) -> int:
    """strtoul with base 0: 0x hex, leading-0 octal, else decimal."""
    t = text.lower()
    if t.startswith(("0x", "-0x")):
        return int(t, 16)
    if len(t) > 1 and t.startswith("0"):
        return int(t, 8)
    return int(t, 10)


def _typed(words: list[str], i: int, spec: Spec | None, tid: int, what: str,
           m: MapRecord) -> tuple[bytes, int]:
    if i >= len(words):
        raise InspectError(f"{what} json: missing the JSON text")
    if spec is None or not tid:
        raise InspectError(f"map {m.id} ({m.name}) has no BTF type for its {what}s: give "
                           f"its {m.bytes_key if what == 'key' else m.bytes_value} bytes "
                           f"({what} hex ...)")
    try:
        value = json.loads(words[i])
    except ValueError as e:
        raise InspectError(f"{what} json: {e}") from None
    try:
        return encode(spec, tid, value, path=what), i + 1
    except (CodecError, BTFError) as e:
        raise InspectError(f"map {m.id} ({m.name}): {e}") from None


def parse_elem(words: Sequence[str], m: MapRecord, spec: Spec | None, *, key: bool = True,
               value: bool = False, flags: bool = False) -> ElemArgs:
    """bpftool's parse_elem: ``key [hex] BYTES...`` / ``key json JSON``, ``value`` the
    same (for maps of maps a map handle, for program arrays a program handle), and with
    ``flags`` one of any, noexist, exist, in any order. Per-CPU values are copied to
    every possible CPU, as bpftool does."""
    from ..maps import possible_cpus

    out = ElemArgs()
    w = list(words)
    i = 0
    need_key, need_value, need_flags = key, value, flags
    try:
        while i < len(w):
            word = w[i]
            if word and "key".startswith(word) and word != "":
                if not need_key:
                    raise InspectError("duplicate key" if key and m.bytes_key
                                       else "unnecessary key")
                if i + 1 < len(w) and w[i + 1] == "json":
                    out.key, i = _typed(w, i + 2, spec, m.btf_key_type_id, "key", m)
                else:
                    out.key, i = _parse_bytes(w, i + 1, m.bytes_key, "key")
                need_key = False
            elif word and "value".startswith(word):
                if not need_value:
                    raise InspectError("duplicate value" if value and m.bytes_value
                                       else "unnecessary value")
                i += 1
                if m.type_id in MAP_OF_MAPS or m.type_id == MapType.PROG_ARRAY:
                    obj = "map" if m.type_id in MAP_OF_MAPS else "prog"
                    sel, rest = parse_selector(w[i:], obj)
                    i = len(w) - len(rest)
                    if obj == "map":
                        out.value_fd = open_one(sel)
                    else:
                        from .programs import open_programs

                        fds = open_programs(sel)
                        if len(fds) > 1:
                            for fd in fds:
                                fd.close()
                            raise InspectError(f"several programs match {sel}")
                        out.value_fd = fds[0]
                    out.value = out.value_fd.fd.to_bytes(4, sys.byteorder)
                elif i < len(w) and w[i] == "json":
                    vid = m.btf_vmlinux_value_type_id or m.btf_value_type_id
                    out.value, i = _typed(w, i + 1, spec, vid, "value", m)
                else:
                    out.value, i = _parse_bytes(w, i, m.bytes_value, "value")
                need_value = False
            elif word in _FLAGS or any(f.startswith(word) for f in _FLAGS if word):
                if not need_flags:
                    raise InspectError(f"flags specified multiple times: {word}"
                                       if flags else f"unexpected flag {word!r}")
                name = next(f for f in ("any", "noexist", "exist") if f.startswith(word))
                out.flags = _FLAGS[name]
                need_flags = False
                i += 1
            else:
                raise InspectError(f"expected key or value, got: {word!r}")
        if need_key and m.bytes_key:
            raise InspectError("did not find key")
        if need_value and m.bytes_value:
            raise InspectError("did not find value")
    except BaseException:
        if out.value_fd is not None:
            out.value_fd.close()
        raise
    if out.value is not None and _percpu(m):
        stride = (m.bytes_value + 7) & ~7
        one = out.value + bytes(stride - m.bytes_value)
        out.value = one * possible_cpus()
    return out


def _map_error(m: MapRecord, what: str, e: MapError) -> InspectError:
    return InspectError(f"map {m.id} ({type_text(m.type)} {m.name}): {what} failed: "
                        f"{reason(e)}")


def lookup_elem(sel: Selector, words: Sequence[str]) -> tuple[MapRecord, Spec | None,
                                                                bytes, Entry | None]:
    """The element under the key ``words`` give (None when there is none)."""
    fd = open_one(sel)
    try:
        m = _read(fd.fd, None)[0]
        spec = _spec_for_args(m)
        args = parse_elem(words, m, spec)
        key = args.key or b""
        with _open_map(fd) as mp:
            try:
                v = mp.lookup(key if m.bytes_key else None)
            except MapKeyError:
                return m, spec, key, None
            except MapError as e:
                raise _map_error(m, "lookup", e) from None
        values = v if _percpu(m) else [v]
        return m, spec, key, Entry(key, [_value_bytes(m, x) for x in values])
    finally:
        fd.close()


def _spec_for_args(m: MapRecord) -> Spec | None:
    try:
        return _kv_btf(m, BTFCache()) if (m.btf_key_type_id or m.btf_value_type_id or
                                          m.btf_vmlinux_value_type_id) else None
    except (InspectError, BTFError):
        return None


def update_elem(sel: Selector, words: Sequence[str]) -> MapRecord:
    """Store the ``key ... value ... [flags]`` that ``words`` give."""
    fd = open_one(sel)
    try:
        m = _read(fd.fd, None)[0]
        args = parse_elem(words, m, _spec_for_args(m), value=True, flags=True)
        try:
            ksys.map_elem(ksys.BPFCommand.MAP_UPDATE_ELEM, fd.fd,
                          _cbuf(args.key) if m.bytes_key else None, _cbuf(args.value or b""),
                          args.flags)
        except OSError as e:
            raise _map_error(m, "update", MapError(e.errno or 0, str(e))) from None
        finally:
            if args.value_fd is not None:
                args.value_fd.close()
        return m
    finally:
        fd.close()


def delete_elem(sel: Selector, words: Sequence[str]) -> MapRecord:
    """Delete the element under the key ``words`` give."""
    fd = open_one(sel)
    try:
        m = _read(fd.fd, None)[0]
        args = parse_elem(words, m, _spec_for_args(m))
        with _open_map(fd) as mp:
            try:
                mp.delete(args.key or b"")
            except MapError as e:
                raise _map_error(m, "delete", e) from None
        return m
    finally:
        fd.close()


def _cbuf(data: bytes | None) -> Any:
    import ctypes

    if data is None:
        return None
    return ctypes.create_string_buffer(data, max(len(data), 1))


def lookup_json(m: MapRecord, spec: Spec | None, entry: Entry | None) -> Any:
    """``bpftool -j map lookup``: the element, or null."""
    return None if entry is None else entry_json(m, spec, entry)


def lookup_text(m: MapRecord, spec: Spec | None, key: bytes, entry: Entry | None) -> str:
    """``bpftool map lookup``: through BTF in its JSON-like layout, else in hex;
    ``Not found`` for a missing key."""
    if entry is None:
        return f"key:\n{hex_text(key)}\n\nNot found\n"
    if spec is not None:
        w = Writer(pretty=True, bpftool_strings=True)
        w.value(_formatted(m, spec, entry, plain=True))
        return w.text() + "\n"
    return entry_text(m, entry)
