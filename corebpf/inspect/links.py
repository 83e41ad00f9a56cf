"""BPF links and what each is attached to, as ``bpftool link show`` reports them.

bpftool 7.1 describes raw tracepoint, tracing, cgroup, iterator and netns links; the
rest (XDP and tcx interfaces, perf event links' tracepoint, kprobe, uprobe or event,
kprobe_multi and uprobe_multi functions, netfilter hooks, struct_ops and sockmap maps)
are printed here in the fields newer bpftool releases print them with.
"""

from __future__ import annotations

import errno as E
import socket
from collections.abc import Iterator

from .. import sys as ksys
from .._record import record
from .common import InspectError, Selector, iter_ids, open_pinned, pinned_paths, reason
from .names import (
    CGROUP_ITER_ORDERS,
    attach_type_name,
    link_type_name,
    prog_type_name,
    type_text,
)
from .values import Obj

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

__all__ = ["Link", "iter_links", "link_json", "link_text", "open_links", "select_links"]

RAW_TRACEPOINT, TRACING, CGROUP, ITER, NETNS, XDP, PERF_EVENT, KPROBE_MULTI, STRUCT_OPS, \
    NETFILTER, TCX, UPROBE_MULTI, NETKIT, SOCKMAP = range(1, 15)
_PERF_UPROBE, _PERF_URETPROBE, _PERF_KPROBE, _PERF_KRETPROBE, _PERF_TRACEPOINT, \
    _PERF_EVENT = range(1, 7)

_PERF_TYPES = ("hardware", "software", "tracepoint", "hw-cache", "raw", "breakpoint")
_HW = ("cpu-cycles", "instructions", "cache-references", "cache-misses",
       "branch-instructions", "branch-misses", "bus-cycles", "stalled-cycles-frontend",
       "stalled-cycles-backend", "ref-cycles")
_SW = ("cpu-clock", "task-clock", "page-faults", "context-switches", "cpu-migrations",
       "minor-faults", "major-faults", "alignment-faults", "emulation-faults", "dummy",
       "bpf-output", "cgroup-switches")
_HW_CACHE = ("L1-dcache", "L1-icache", "LLC", "dTLB", "iTLB", "branch", "node")
_HW_CACHE_OP = ("load", "store", "prefetch")
_HW_CACHE_RESULT = ("refs", "misses")
_NF_PF = {1: "inet", 2: "ipv4", 3: "arp", 5: "netdev", 7: "bridge", 10: "ipv6"}
_NF_INET_HOOKS = ("prerouting", "input", "forward", "output", "postrouting")
_NF_ARP_HOOKS = ("input", "output", "forward")


@record
class Link:
    """One link: ``attrs`` are the kernel's fields for its type (see
    :class:`corebpf.sys.LinkInfo`), ``prog_type`` the attached program's for tracing
    links, ``funcs`` kprobe_multi functions as (address, cookie, symbol)."""

    id: int
    type: str | int
    type_id: int
    prog_id: int
    attrs: dict[str, Any]
    prog_type: str | int | None = None
    funcs: list[tuple[int, int, str | None]] | None = None
    pinned: list[str] | None = None


def _prog_type(prog_id: int) -> str | int | None:
    try:
        with ksys.prog_get_fd_by_id(prog_id) as fd:
            return prog_type_name(ksys.prog_info(fd.fd, map_ids=False).type)
    except OSError:
        return None


def _kprobe_funcs(attrs: dict[str, Any]) -> list[tuple[int, int, str | None]]:
    addrs = attrs.get("addrs") or []
    cookies = attrs.get("cookies") or [0] * len(addrs)
    pairs = sorted(zip(addrs, cookies, strict=False))
    # with x86 IBT a function's address is its symbol's + 4 (the ENDBR)
    by_addr = ksys.kallsyms_lookup([a for a, _ in pairs] + [a - 4 for a, _ in pairs])[0]
    return [(a, c, by_addr.get(a, by_addr.get(a - 4))) for a, c in pairs]


def _read(fd: int, pins: dict[int, list[str]] | None) -> Link:
    try:
        info = ksys.link_info(fd)
    except OSError as e:
        raise InspectError(f"can't get link info: {reason(e)}") from None
    link = Link(id=info.id, type=link_type_name(info.type), type_id=info.type,
                prog_id=info.prog_id, attrs=info.attrs,
                pinned=list(reversed(pins.get(info.id, []))) if pins else None)
    if info.type == TRACING:
        link.prog_type = _prog_type(info.prog_id)
    elif info.type == KPROBE_MULTI:
        link.funcs = _kprobe_funcs(info.attrs)
    return link


def iter_links(*, pinned: bool = False) -> Iterator[Link]:
    """Every BPF link, by increasing id (``pinned``: with bpftool ``-f``'s pins)."""
    pins = pinned_paths("link") if pinned else None
    for link_id in iter_ids(ksys.link_get_next_id):
        try:
            fd = ksys.link_get_fd_by_id(link_id)
        except OSError as e:
            if e.errno == E.ENOENT:
                continue
            raise InspectError(f"can't get link by id ({link_id}): "
                               f"{reason(e)}") from None
        try:
            link = _read(fd.fd, pins)
        except InspectError:
            continue
        finally:
            fd.close()
        yield link


def open_links(sel: Selector) -> list[ksys.FD]:
    """A new fd for the link ``sel`` names (by id or pin, as bpftool takes links)."""
    if sel.kind == "id":
        try:
            return [ksys.link_get_fd_by_id(int(sel.value))]
        except OSError as e:
            raise InspectError(f"failed to get link with ID {sel.value!s}: "
                               f"{reason(e)}") from None
    if sel.kind == "pinned":
        return [open_pinned(str(sel.value), "link")]
    raise InspectError(f"links are selected by id or pinned, not {sel.kind}")


def select_links(sel: Selector, *, pinned: bool = False) -> list[Link]:
    fds = open_links(sel)
    pins = pinned_paths("link") if pinned else None
    try:
        return [_read(fd.fd, pins) for fd in fds]
    finally:
        for fd in fds:
            fd.close()


# -- output -----------------------------------------------------------------------------


def _name(table: tuple[str, ...], value: int) -> str | None:
    return table[value] if 0 <= value < len(table) else None


def _event_config(etype: int, config: int) -> str | None:
    if etype == 0:
        return _name(_HW, config)
    if etype == 1:
        return _name(_SW, config)
    if etype == 3:
        cache = _name(_HW_CACHE, config & 0xFF)
        op = _name(_HW_CACHE_OP, config >> 8 & 0xFF)
        result = _name(_HW_CACHE_RESULT, config >> 16)
        return (f"{cache or config & 0xFF}-{op or config >> 8 & 0xFF}-"
                f"{result or config >> 16}")
    return None


def _devname(ifindex: int) -> str:
    if not ifindex:
        return "(detached)"
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return "(unknown)"


def _iter_fields(a: dict[str, Any]) -> Obj:
    target = a.get("target_name", "")
    out = Obj([("target_name", target)])
    if target in ("bpf_map_elem", "bpf_sk_storage_map"):
        out.append(("map_id", a.get("map_id", 0)))
    elif target in ("task", "task_file", "task_vma"):
        if a.get("tid"):
            out.append(("tid", a["tid"]))
        elif a.get("pid"):
            out.append(("pid", a["pid"]))
    if target == "cgroup":
        out += [("cgroup_id", a.get("cgroup_id", 0)),
                ("order", _name(CGROUP_ITER_ORDERS, a.get("order", 0)) or "unknown")]
    return out


def link_json(link: Link) -> Obj:
    """``bpftool -j link show``'s object for one link."""
    a = link.attrs
    out = Obj([("id", link.id), ("type", link.type), ("prog_id", link.prog_id)])
    t = link.type_id
    if t == RAW_TRACEPOINT:
        out += [("tp_name", a.get("tp_name", "")), ("cookie", a.get("cookie", 0))]
    elif t == TRACING:
        out += [("prog_type", link.prog_type),
                ("attach_type", attach_type_name(a["attach_type"])),
                ("target_obj_id", a["target_obj_id"]), ("target_btf_id", a["target_btf_id"]),
                ("cookie", a["cookie"])]
    elif t == CGROUP:
        out += [("cgroup_id", a["cgroup_id"]), ("attach_type", attach_type_name(a["attach_type"]))]
    elif t == ITER:
        out += _iter_fields(a)
    elif t == NETNS:
        out += [("netns_ino", a["netns_ino"]), ("attach_type", attach_type_name(a["attach_type"]))]
    elif t == NETFILTER:
        out += [("pf", a["pf"]), ("hook", a["hooknum"]), ("prio", a["priority"]),
                ("flags", a["flags"])]
    elif t in (TCX, NETKIT):
        out += [("devname", _devname(a["ifindex"])), ("ifindex", a["ifindex"]),
                ("attach_type", attach_type_name(a["attach_type"]))]
    elif t == SOCKMAP:
        out += [("map_id", a["map_id"]), ("attach_type", attach_type_name(a["attach_type"]))]
    elif t == XDP:
        out += [("devname", _devname(a["ifindex"])), ("ifindex", a["ifindex"])]
    elif t == STRUCT_OPS:
        out.append(("map_id", a["map_id"]))
    elif t == KPROBE_MULTI:
        out += [("retprobe", bool(a["flags"] & 1)), ("func_cnt", a["count"]),
                ("missed", a["missed"]),
                ("funcs", [Obj([("addr", addr), ("func", sym), ("module", None),
                                ("cookie", cookie)])
                           for addr, cookie, sym in link.funcs or ()])]
    elif t == UPROBE_MULTI:
        n = a["count"]
        offs, refs, cks = (a.get(k) or [0] * n for k in ("offsets", "ref_ctr_offsets",
                                                          "cookies"))
        out += [("retprobe", bool(a["flags"] & 1)), ("path", a.get("path", "")),
                ("func_cnt", n), ("pid", a["pid"] - (1 << 32) if a["pid"] >> 31 else a["pid"]),
                ("funcs", [Obj([("offset", o), ("ref_ctr_offset", r), ("cookie", c)])
                           for o, r, c in zip(offs, refs, cks, strict=False)])]
    elif t == PERF_EVENT:
        out += _perf_json(a)
    if link.pinned is not None:
        out.append(("pinned", list(link.pinned)))
    return out


def _perf_json(a: dict[str, Any]) -> Obj:
    p = a["perf_event_type"]
    if p == _PERF_EVENT:
        etype = a["type"]
        return Obj([("event_type", _name(_PERF_TYPES, etype) or etype),
                    ("event_config", _event_config(etype, a["config"]) or a["config"]),
                    ("cookie", a["cookie"])])
    if p == _PERF_TRACEPOINT:
        return Obj([("tracepoint", a.get("tp_name", "")), ("cookie", a["cookie"])])
    if p in (_PERF_KPROBE, _PERF_KRETPROBE):
        return Obj([("retprobe", p == _PERF_KRETPROBE), ("addr", a["addr"]),
                    ("func", a.get("func_name", "")), ("offset", a["offset"]),
                    ("missed", a["missed"]), ("cookie", a["cookie"])])
    if p in (_PERF_UPROBE, _PERF_URETPROBE):
        return Obj([("retprobe", p == _PERF_URETPROBE), ("file", a.get("file_name", "")),
                    ("offset", a["offset"]), ("cookie", a["cookie"]),
                    ("ref_ctr_offset", a["ref_ctr_offset"])])
    return Obj()


def _attach_text(value: int) -> str:
    name = attach_type_name(value)
    return f"attach_type {name}  "


def link_text(link: Link) -> str:
    """``bpftool link show``'s lines for one link."""
    a = link.attrs
    t = link.type_id
    out = [f"{link.id}: {type_text(link.type)}  "]
    out.append(f"map {a['map_id']}  " if t == STRUCT_OPS else f"prog {link.prog_id}  ")
    if t == RAW_TRACEPOINT:
        out.append(f"\n\ttp '{a.get('tp_name', '')}'  ")
        if a.get("cookie"):
            out.append(f"cookie {a['cookie']}  ")
    elif t == TRACING:
        pt = link.prog_type
        out.append(f"\n\tprog_type {pt if pt is not None else '?'}  ")
        out.append(_attach_text(a["attach_type"]))
        if a["target_obj_id"] or a["target_btf_id"]:
            out.append(f"\n\ttarget_obj_id {a['target_obj_id']}  "
                       f"target_btf_id {a['target_btf_id']}  ")
        if a["cookie"]:
            out.append(f"\n\tcookie {a['cookie']}  ")
    elif t == CGROUP:
        out.append(f"\n\tcgroup_id {a['cgroup_id']}  " + _attach_text(a["attach_type"]))
    elif t == ITER:
        f = dict(_iter_fields(a))
        out.append(f"target_name {f['target_name']}  ")
        if "map_id" in f:
            out.append(f"map_id {f['map_id']}  ")
        elif "tid" in f:
            out.append(f"tid {f['tid']} ")
        elif "pid" in f:
            out.append(f"pid {f['pid']} ")
        if "order" in f:
            out.append(f"cgroup_id {f['cgroup_id']}  order {f['order']}  ")
    elif t == NETNS:
        out.append(f"\n\tnetns_ino {a['netns_ino']}  " + _attach_text(a["attach_type"]))
    elif t == NETFILTER:
        out.append(_netfilter_text(a))
    elif t in (TCX, NETKIT):
        out.append("\n\t" + _ifindex_text(a["ifindex"]) + _attach_text(a["attach_type"]))
    elif t == SOCKMAP:
        out.append(f"\n\tmap_id {a['map_id']}  " + _attach_text(a["attach_type"]))
    elif t == XDP:
        out.append("\n\t" + _ifindex_text(a["ifindex"]))
    elif t == KPROBE_MULTI and a["count"]:
        out.append("\n\tkretprobe.multi  " if a["flags"] & 1 else "\n\tkprobe.multi  ")
        out.append(f"func_cnt {a['count']}  ")
        if a["missed"]:
            out.append(f"missed {a['missed']}  ")
        out.append(f"\n\t{'addr':<16} {'cookie':<16} func [module]")
        for addr, cookie, sym in link.funcs or ():
            out.append(f"\n\t{addr:016x} {cookie:<16x} {sym or '?'}  ")
    elif t == UPROBE_MULTI and a["count"]:
        out.append("\n\turetprobe.multi  " if a["flags"] & 1 else "\n\tuprobe.multi  ")
        out.append(f"path {a.get('path', '')}  func_cnt {a['count']}  ")
        if a["pid"]:
            out.append(f"pid {a['pid']}  ")
        out.append(f"\n\t{'offset':<16}   {'ref_ctr_offset':<16}   {'cookies':<16}")
        n = a["count"]
        for o, r, c in zip(*(a.get(k) or [0] * n for k in ("offsets", "ref_ctr_offsets",
                                                            "cookies")), strict=False):
            out.append(f"\n\t0x{o:<16x} 0x{r:<16x} 0x{c:<16x}")
    elif t == PERF_EVENT:
        out.append(_perf_text(a))
    out += [f"\n\tpinned {p}" for p in link.pinned or ()]
    out.append("\n")
    return "".join(out)


def _c_hex(value: int) -> str:
    """C's ``%#x``: no prefix on zero."""
    return f"{value:#x}" if value else "0"


def _ifindex_text(ifindex: int) -> str:
    name = "(detached)" if not ifindex else None
    if ifindex:
        try:
            name = f"{socket.if_indextoname(ifindex)}({ifindex})"
        except OSError:
            name = "(unknown)"
    return f"ifindex {name}  "


def _netfilter_text(a: dict[str, Any]) -> str:
    pf, hook = a["pf"], a["hooknum"]
    pfname = _NF_PF.get(pf)
    hookname = None
    if pf in (1, 2, 7, 10):
        hookname = _name(_NF_INET_HOOKS, hook)
    elif pf == 3:
        hookname = _name(_NF_ARP_HOOKS, hook)
    out = f"\n\t{pfname}" if pfname else f"\n\tpf: {pf}"
    out += f" {hookname}" if hookname else f", hook {hook},"
    out += f" prio {a['priority']}"
    if a["flags"]:
        out += f" flags {a['flags']:#x}"
    return out


def _perf_text(a: dict[str, Any]) -> str:
    p = a["perf_event_type"]
    if p == _PERF_EVENT:
        etype = a["type"]
        tname = _name(_PERF_TYPES, etype)
        out = "\n\tevent " + (f"{tname}:" if tname else f"{etype} :")
        config = _event_config(etype, a["config"])
        out += f"{config}  " if config else f"{a['config']}  "
        if a["cookie"]:
            out += f"cookie {a['cookie']}  "
        return out
    if p == _PERF_TRACEPOINT:
        name = a.get("tp_name", "")
        if not name:
            return ""
        return f"\n\ttracepoint {name}  " + (f"cookie {a['cookie']}  " if a["cookie"] else "")
    if p in (_PERF_KPROBE, _PERF_KRETPROBE):
        func = str(a.get("func_name", ""))
        if not func and not a["addr"]:
            return ""
        out = "\n\tkretprobe " if p == _PERF_KRETPROBE else "\n\tkprobe "
        if a["addr"]:
            out += f"{a['addr']:x} "
        out += func
        if a["offset"]:
            out += f"+{_c_hex(a['offset'])}"
        if a["missed"]:
            out += f"  missed {a['missed']}"
        if a["cookie"]:
            out += f"  cookie {a['cookie']}"
        return out + "  "
    if p in (_PERF_UPROBE, _PERF_URETPROBE):
        file = str(a.get("file_name", ""))
        if not file:
            return ""
        out = "\n\turetprobe " if p == _PERF_URETPROBE else "\n\tuprobe "
        out += f"{file}+{_c_hex(a['offset'])}  "
        if a["cookie"]:
            out += f"cookie {a['cookie']}  "
        if a["ref_ctr_offset"]:
            out += f"ref_ctr_offset {a['ref_ctr_offset']:#x}  "
        return out
    return ""


def links_json(links: list[Link]) -> Any:
    items = [link_json(x) for x in links]
    return items[0] if len(items) == 1 else items
