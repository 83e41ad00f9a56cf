"""Loaded programs, as ``bpftool prog show`` reports them.

:func:`iter_programs` walks every program the kernel holds (BPF_PROG_GET_NEXT_ID),
:func:`select_programs` takes a bpftool handle (``id``, ``name``, ``tag``, ``pinned``; a
name or tag may match several programs). Every fd opened on the way is closed before
they return. :func:`program_json` and :func:`program_text` print a :class:`Program` as
``bpftool -j prog show`` and ``bpftool prog show`` do.
"""

from __future__ import annotations

import ctypes
import errno as E
from collections.abc import Iterator

from .. import sys as ksys
from .._record import field, record
from ..btf.types import Datasec, Func, Var
from ..errors import BTFError
from .common import (
    BTFCache,
    InspectError,
    Selector,
    boot_to_epoch,
    format_boot_time,
    ifname_in_netns,
    iter_ids,
    offload_text,
    open_matching,
    open_pinned,
    pinned_paths,
    reason,
)
from .names import prog_type_name, type_text
from .values import Obj, dump, render

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Program",
    "iter_programs",
    "open_programs",
    "program_json",
    "program_text",
    "select_programs",
]

_METADATA_PREFIX = "bpf_metadata_"
_MAP_TYPE_ARRAY = 2


@record
class Program:
    """One loaded program. ``loaded_at`` is Unix seconds (None when the kernel gave no
    load time); ``bytes_memlock`` is None where /proc/self/fdinfo is not readable;
    ``metadata`` holds the program's ``bpf_metadata_*`` read-only globals (as bpftool
    finds them in its first ``.rodata`` map), by name without the prefix; ``pinned`` its
    bpffs paths when they were looked for and bpffs holds any program (bpftool's
    ``-f``), else None."""

    id: int
    type: str | int
    name: str
    tag: str
    gpl_compatible: bool
    load_time: int
    loaded_at: int | None
    uid: int
    bytes_xlated: int
    jited: bool
    bytes_jited: int
    bytes_memlock: int | None
    map_ids: list[int]
    btf_id: int
    run_time_ns: int = 0
    run_cnt: int = 0
    recursion_misses: int = 0
    verified_insns: int = 0
    ifindex: int = 0
    netns_dev: int = 0
    netns_ino: int = 0
    attach_btf_id: int = 0
    attach_btf_obj_id: int = 0
    pinned: list[str] | None = None
    metadata: Obj = field(default_factory=Obj)
    metadata_plain: Obj = field(default_factory=Obj)


def full_name(info: ksys.ProgInfo, btfs: BTFCache) -> str:
    """The program's name, past the kernel's 15 characters where its BTF has it (the
    name of its first function, as bpftool's get_prog_full_name)."""
    if len(info.name) < 15 or not info.btf_id or not info.func_info:
        return info.name
    try:
        t = btfs.get(info.btf_id).type(info.func_info[0][1])
    except (InspectError, BTFError):
        return info.name
    return t.name if isinstance(t, Func) else info.name


def _metadata(info: ksys.ProgInfo, btfs: BTFCache) -> tuple[Obj, Obj]:
    """(JSON, plain) trees of the program's bpf_metadata_* variables."""
    value = None
    for map_id in info.map_ids:
        try:
            fd = ksys.map_get_fd_by_id(map_id)
        except OSError:
            return Obj(), Obj()
        try:
            mi = ksys.map_info(fd.fd)
            if mi.type != _MAP_TYPE_ARRAY or mi.key_size != 4 or mi.max_entries != 1 or \
                    not mi.btf_value_type_id or ".rodata" not in mi.name:
                continue
            key = ctypes.c_uint32(0)
            buf = ctypes.create_string_buffer(max(mi.value_size, 1))
            try:
                ksys.map_elem(ksys.BPFCommand.MAP_LOOKUP_ELEM, fd.fd, key, buf)
            except OSError:
                return Obj(), Obj()
            value = (mi, buf.raw[:mi.value_size])
            break
        finally:
            fd.close()
    if value is None:
        return Obj(), Obj()
    mi, data = value
    try:
        spec = btfs.get(mi.btf_id)
        sec = spec.type(mi.btf_value_type_id)
        if not isinstance(sec, Datasec):
            return Obj(), Obj()
        js, plain = Obj(), Obj()
        for v in sec.vars:
            var = spec.type(v.type)
            if not isinstance(var, Var) or not var.name.startswith(_METADATA_PREFIX):
                continue
            name = var.name[len(_METADATA_PREFIX):]
            chunk = data[v.offset:v.offset + v.size]
            js.append((name, dump(spec, var.type, chunk)))
            plain.append((name, dump(spec, var.type, chunk, plain=True)))
        return js, plain
    except (InspectError, BTFError):
        return Obj(), Obj()


def _read(fd: int, btfs: BTFCache, pins: dict[int, list[str]] | None) -> Program:
    try:
        info = ksys.prog_info(fd, func_info=True)
    except OSError as e:
        raise InspectError(f"can't get program info: {reason(e)}") from None
    memlock = ksys.fdinfo(fd).get("memlock")
    js, plain = _metadata(info, btfs) if info.map_ids else (Obj(), Obj())
    return Program(
        id=info.id, type=prog_type_name(info.type), name=full_name(info, btfs),
        tag=info.tag.hex(), gpl_compatible=info.gpl_compatible, load_time=info.load_time,
        loaded_at=boot_to_epoch(info.load_time) if info.load_time else None,
        uid=info.created_by_uid, bytes_xlated=info.xlated_prog_len,
        jited=bool(info.jited_prog_len), bytes_jited=info.jited_prog_len,
        bytes_memlock=int(memlock) if memlock and memlock.lstrip("-").isdigit() else None,
        map_ids=info.map_ids, btf_id=info.btf_id, run_time_ns=info.run_time_ns,
        run_cnt=info.run_cnt, recursion_misses=info.recursion_misses,
        verified_insns=info.verified_insns, ifindex=info.ifindex,
        netns_dev=info.netns_dev, netns_ino=info.netns_ino,
        attach_btf_id=info.attach_btf_id, attach_btf_obj_id=info.attach_btf_obj_id,
        pinned=list(reversed(pins.get(info.id, []))) if pins else None,
        metadata=js, metadata_plain=plain)


def _each_fd() -> Iterator[ksys.FD]:
    """An fd for every live program (ones freed since their id was listed are skipped);
    each is closed when the next is asked for."""
    for prog_id in iter_ids(ksys.prog_get_next_id):
        try:
            fd = ksys.prog_get_fd_by_id(prog_id)
        except OSError as e:
            if e.errno == E.ENOENT:
                continue
            raise InspectError(f"can't get program by id ({prog_id}): "
                               f"{reason(e)}") from None
        try:
            yield fd
        finally:
            fd.close()


def iter_programs(*, pinned: bool = False) -> Iterator[Program]:
    """Every loaded program, by increasing id. ``pinned`` also finds each one's bpffs
    pins (bpftool's ``-f``: a walk of every bpf mount)."""
    btfs = BTFCache()
    pins = pinned_paths("prog") if pinned else None
    for fd in _each_fd():
        try:
            yield _read(fd.fd, btfs, pins)
        except InspectError:
            continue  # freed while read


def open_programs(sel: Selector) -> list[ksys.FD]:
    """New fds for the programs ``sel`` names (the caller closes them); an error if
    none matches."""
    if sel.kind == "id":
        try:
            return [ksys.prog_get_fd_by_id(int(sel.value))]
        except OSError as e:
            raise InspectError(f"program id {sel.value!s}: {reason(e)}") \
                from None
    if sel.kind == "pinned":
        return [open_pinned(str(sel.value), "prog")]
    btfs = BTFCache()

    def matches(fd: ksys.FD) -> bool:
        info = ksys.prog_info(fd.fd, map_ids=False, func_info=sel.kind == "name")
        if sel.kind == "tag":
            return info.tag == sel.value
        return full_name(info, btfs) == sel.value

    return open_matching(ksys.prog_get_next_id, ksys.prog_get_fd_by_id, matches,
                         f"no program with {sel}")


def select_programs(sel: Selector, *, pinned: bool = False) -> list[Program]:
    """The programs ``sel`` names (several for a name or tag shared by several)."""
    fds = open_programs(sel)
    btfs = BTFCache()
    pins = pinned_paths("prog") if pinned else None
    try:
        return [_read(fd.fd, btfs, pins) for fd in fds]
    finally:
        for fd in fds:
            fd.close()


# -- output -----------------------------------------------------------------------------


def _dev_json(p: Program) -> Obj:
    dev = Obj([("ifindex", p.ifindex), ("ns_dev", p.netns_dev), ("ns_inode", p.netns_ino)])
    name = ifname_in_netns(p.ifindex, p.netns_dev, p.netns_ino)
    if name is not None:
        dev.append(("ifname", name))
    return dev


def header_json(p: Program) -> Obj:
    """The fields bpftool prints first for a program (also ahead of a dump's insns)."""
    out = Obj([("id", p.id), ("type", p.type)])
    if p.name:
        out.append(("name", p.name))
    out += [("tag", p.tag), ("gpl_compatible", p.gpl_compatible)]
    if p.run_time_ns:
        out += [("run_time_ns", p.run_time_ns), ("run_cnt", p.run_cnt)]
    if p.recursion_misses:
        out.append(("recursion_misses", p.recursion_misses))
    return out


def program_json(p: Program) -> Obj:
    """``bpftool -j prog show``'s object for one program (``pinned``: as with ``-f``)."""
    out = header_json(p)
    if p.ifindex:
        out.append(("dev", _dev_json(p)))
    if p.loaded_at is not None:
        out += [("loaded_at", p.loaded_at), ("uid", p.uid)]
    out += [("bytes_xlated", p.bytes_xlated), ("jited", p.jited)]
    if p.jited:
        out.append(("bytes_jited", p.bytes_jited))
    if p.bytes_memlock is not None:
        out.append(("bytes_memlock", p.bytes_memlock))
    if p.map_ids:
        out.append(("map_ids", list(p.map_ids)))
    if p.btf_id:
        out.append(("btf_id", p.btf_id))
    if p.pinned is not None:
        out.append(("pinned", list(p.pinned)))
    if p.metadata:
        out.append(("metadata", p.metadata))
    return out


def header_text(p: Program) -> str:
    """bpftool's first line for a program."""
    line = f"{p.id}: {type_text(p.type)}  "
    if p.name:
        line += f"name {p.name}  "
    line += f"tag {p.tag}"
    if p.ifindex:
        line += "  offloaded_to " + offload_text(p.ifindex, p.netns_dev, p.netns_ino)
    if p.gpl_compatible:
        line += "  gpl"
    if p.run_time_ns:
        line += f" run_time_ns {p.run_time_ns} run_cnt {p.run_cnt}"
    if p.recursion_misses:
        line += f" recursion_misses {p.recursion_misses}"
    return line + "\n"


def program_text(p: Program) -> str:
    """``bpftool prog show``'s lines for one program."""
    out = [header_text(p)]
    if p.loaded_at is not None:
        out.append(f"\tloaded_at {format_boot_time(p.loaded_at)}  uid {p.uid}\n")
    out.append(f"\txlated {p.bytes_xlated}B")
    out.append(f"  jited {p.bytes_jited}B" if p.jited else "  not jited")
    if p.bytes_memlock is not None:
        out.append(f"  memlock {p.bytes_memlock}B")
    if p.map_ids:
        out.append("  map_ids " + ",".join(map(str, p.map_ids)))
    out += [f"\n\tpinned {path}" for path in p.pinned or ()]
    if p.btf_id:
        out.append(f"\n\tbtf_id {p.btf_id}")
    out.append("\n")
    if p.metadata_plain:
        out.append("\tmetadata:")
        for name, value in p.metadata_plain:
            out.append(f"\n\t\t{name} = {render(value, pretty=False, bpftool_strings=True)}")
        out.append("\n")
    return "".join(out)


def programs_json(progs: list[Program]) -> Any:
    """What ``bpftool -j prog show HANDLE`` prints: one object for one program, else an
    array."""
    items = [program_json(p) for p in progs]
    return items[0] if len(items) == 1 else items
