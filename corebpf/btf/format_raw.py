"""bpftool's text and JSON dumps of BTF (``bpftool btf dump file F [-j]``), line for line.

The text form is produced straight from the raw records (no type objects), because it
is the dump people run over a whole kernel and it must keep up with bpftool.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from ..errors import BTFError
from .spec import Spec
from .types import Kind

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

KIND_NAMES = tuple(k.name for k in Kind)
_INT_ENCODINGS = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
_LINKAGE = ("static", "global", "extern")


def _linkage(v: int) -> str:
    return _LINKAGE[v] if v < 3 else "(unknown)"


def _namer(spec: Spec) -> Callable[[int], str]:
    cache = spec._str_cache

    def name(off: int) -> str:
        if not off:
            return "(anon)"
        s = cache.get(off)
        if s is not None:
            return s
        try:
            return spec.string(off)
        except BTFError:
            return "(invalid)"

    return name


def _s32(v: int) -> int:
    return v - 0x1_0000_0000 if v & 0x8000_0000 else v


def _s64(v: int) -> int:
    return v - (1 << 64) if v >> 63 else v


def _own_words(spec: Spec, type_id: int) -> tuple[Spec, int]:
    while type_id < spec.first_id and spec.base is not None:
        spec = spec.base
    return spec, spec._record(type_id)


def dump_raw(
    spec: Spec, write: Callable[[str], object], root_ids: Iterable[int] | None = None
) -> None:
    """Write bpftool's plain-text dump; a split spec dumps only its own types."""
    if root_ids is not None:
        _dump_some(spec, write, root_ids)
        return
    nm = _name_table(spec)
    w = spec._words
    lines: list[str] = []
    add = lines.append
    linkage = {0: "static", 1: "global", 2: "extern"}
    fmt = _format_one
    for tid, i in zip(spec.ids(), spec._offsets, strict=True):
        info = w[i + 1]
        if info >> 24 == 12:  # FUNC: half of a kernel's types, kept inline
            n = nm.get(w[i])
            if n is None:
                n = _slow_name(spec, nm, w[i])
            link = linkage.get(info & 0xFFFF, "(unknown)")
            add(f"[{tid}] FUNC '{n}' type_id={w[i + 2]} linkage={link}\n")
        else:
            add(fmt(spec, spec, tid, w, i, nm))
        if not tid & 0x3FFF:
            write("".join(lines))
            lines.clear()
    write("".join(lines))


def _dump_some(spec: Spec, write: Callable[[str], object], root_ids: Iterable[int]) -> None:
    names: dict[int, dict[int, str]] = {}
    for tid in root_ids:
        owner, i = _own_words(spec, tid)
        nm = names.get(id(owner))
        if nm is None:
            nm = names[id(owner)] = _name_table(owner)
        write(_format_one(spec, owner, tid, owner._words, i, nm))


def _name_table(spec: Spec) -> dict[int, str]:
    """Offset -> printed name for every string start; other offsets go through _slow_name.

    A copy of the spec's string cache, since bpftool prints offset 0 as "(anon)"."""
    spec.preload_strings()
    table = spec._str_cache.copy()
    table[0] = "(anon)"
    return table


def _slow_name(spec: Spec, table: dict[int, str], off: int) -> str:
    try:
        s = spec.string(off)
    except BTFError:
        s = "(invalid)"
    table[off] = s
    return s


def _format_one(
    spec: Spec, owner: Spec, tid: int, w: Any, i: int, nm: dict[int, str]
) -> str:
    info = w[i + 1]
    kind = (info >> 24) & 0x1F
    st = w[i + 2]
    n = nm.get(w[i])
    if n is None:
        n = _slow_name(owner, nm, w[i])
    if kind == 12:
        v = info & 0xFFFF
        return f"[{tid}] FUNC '{n}' type_id={st} linkage={_LINKAGE[v] if v < 3 else '(unknown)'}\n"
    vlen = info & 0xFFFF
    if kind == 13:
        parts = [f"[{tid}] FUNC_PROTO '{n}' ret_type_id={st} vlen={vlen}"]
        for j in range(i + 3, i + 3 + 2 * vlen, 2):
            pn = nm.get(w[j])
            if pn is None:
                pn = _slow_name(owner, nm, w[j])
            parts.append(f"\n\t'{pn}' type_id={w[j + 1]}")
        parts.append("\n")
        return "".join(parts)
    if kind == 2 or kind == 10 or kind == 8 or kind == 9 or kind == 11 or kind == 18:
        return f"[{tid}] {KIND_NAMES[kind]} '{n}' type_id={st}\n"
    if kind == 4 or kind == 5:
        kflag = info >> 31
        parts = [f"[{tid}] {KIND_NAMES[kind]} '{n}' size={st} vlen={vlen}"]
        for j in range(i + 3, i + 3 + 3 * vlen, 3):
            mn = nm.get(w[j])
            if mn is None:
                mn = _slow_name(owner, nm, w[j])
            off = w[j + 2]
            if kflag and off >> 24:
                parts.append(
                    f"\n\t'{mn}' type_id={w[j + 1]} bits_offset={off & 0xFFFFFF}"
                    f" bitfield_size={off >> 24}"
                )
            else:
                parts.append(
                    f"\n\t'{mn}' type_id={w[j + 1]} bits_offset={off & 0xFFFFFF if kflag else off}"
                )
        parts.append("\n")
        return "".join(parts)
    head = f"[{tid}] {KIND_NAMES[kind]} '{n}'"
    name = _namer(owner)
    kflag = info >> 31
    if kind == Kind.INT:
        v = w[i + 3]
        enc = _INT_ENCODINGS.get((v >> 24) & 0xF, "UNKN")
        bits = f"bits_offset={(v >> 16) & 0xFF} nr_bits={v & 0xFF}"
        return f"{head} size={st} {bits} encoding={enc}\n"
    if kind == Kind.ARRAY:
        return f"{head} type_id={w[i + 3]} index_type_id={w[i + 4]} nr_elems={w[i + 5]}\n"
    if kind == Kind.ENUM:
        enc = "SIGNED" if kflag else "UNSIGNED"
        parts = [f"{head} encoding={enc} size={st} vlen={vlen}"]
        for j in range(i + 3, i + 3 + 2 * vlen, 2):
            v = _s32(w[j + 1]) if kflag else w[j + 1]
            parts.append(f"\n\t'{name(w[j])}' val={v}")
        parts.append("\n")
        return "".join(parts)
    if kind == Kind.ENUM64:
        enc = "SIGNED" if kflag else "UNSIGNED"
        parts = [f"{head} encoding={enc} size={st} vlen={vlen}"]
        for j in range(i + 3, i + 3 + 3 * vlen, 3):
            v = w[j + 1] | (w[j + 2] << 32)
            if kflag:
                parts.append(f"\n\t'{name(w[j])}' val={_s64(v)}LL")
            else:
                parts.append(f"\n\t'{name(w[j])}' val={v}ULL")
        parts.append("\n")
        return "".join(parts)
    if kind == Kind.FWD:
        return f"{head} fwd_kind={'union' if kflag else 'struct'}\n"
    if kind == Kind.VAR:
        return f"{head} type_id={st}, linkage={_linkage(w[i + 3])}\n"
    if kind == Kind.DATASEC:
        parts = [f"{head} size={st} vlen={vlen}"]
        for j in range(i + 3, i + 3 + 3 * vlen, 3):
            vt = w[j]
            parts.append(f"\n\ttype_id={vt} offset={w[j + 1]} size={w[j + 2]}")
            if vt < spec.type_count:
                parts.append(f" ({KIND_NAMES[spec.kind(vt)]} '{spec.name(vt) or '(anon)'}')")
        parts.append("\n")
        return "".join(parts)
    if kind == Kind.FLOAT:
        return f"{head} size={st}\n"
    if kind == Kind.DECL_TAG:
        return f"{head} type_id={st} component_idx={_s32(w[i + 3])}\n"
    return head + "\n"


def to_raw(spec: Spec, root_ids: Iterable[int] | None = None) -> str:
    out: list[str] = []
    dump_raw(spec, out.append, root_ids)
    return "".join(out)


def type_to_json(spec: Spec, tid: int) -> dict[str, Any]:
    """One type as the object bpftool -j prints for it."""
    owner, i = _own_words(spec, tid)
    w = owner._words
    name = _namer(owner)
    info = w[i + 1]
    kind = (info >> 24) & 0x1F
    vlen = info & 0xFFFF
    kflag = info >> 31
    st = w[i + 2]
    obj: dict[str, Any] = {"id": tid, "kind": KIND_NAMES[kind], "name": name(w[i])}
    if kind == Kind.INT:
        v = w[i + 3]
        obj.update(
            size=st,
            bits_offset=(v >> 16) & 0xFF,
            nr_bits=v & 0xFF,
            encoding=_INT_ENCODINGS.get((v >> 24) & 0xF, "UNKN"),
        )
    elif kind in (Kind.PTR, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT, Kind.TYPEDEF,
                  Kind.TYPE_TAG):
        obj["type_id"] = st
    elif kind == Kind.ARRAY:
        obj.update(type_id=w[i + 3], index_type_id=w[i + 4], nr_elems=w[i + 5])
    elif kind in (Kind.STRUCT, Kind.UNION):
        members = []
        for j in range(i + 3, i + 3 + 3 * vlen, 3):
            off = w[j + 2]
            m: dict[str, Any] = {
                "name": name(w[j]),
                "type_id": w[j + 1],
                "bits_offset": off & 0xFFFFFF if kflag else off,
            }
            if kflag and off >> 24:
                m["bitfield_size"] = off >> 24
            members.append(m)
        obj.update(size=st, vlen=vlen, members=members)
    elif kind in (Kind.ENUM, Kind.ENUM64):
        values = []
        for j in range(i + 3, i + 3 + (2 if kind == Kind.ENUM else 3) * vlen,
                       2 if kind == Kind.ENUM else 3):
            if kind == Kind.ENUM:
                v = _s32(w[j + 1]) if kflag else w[j + 1]
            else:
                v = w[j + 1] | (w[j + 2] << 32)
                v = _s64(v) if kflag else v
            values.append({"name": name(w[j]), "val": v})
        obj.update(encoding="SIGNED" if kflag else "UNSIGNED", size=st, vlen=vlen, values=values)
    elif kind == Kind.FWD:
        obj["fwd_kind"] = "union" if kflag else "struct"
    elif kind == Kind.FUNC:
        obj.update(type_id=st, linkage=_linkage(vlen))
    elif kind == Kind.FUNC_PROTO:
        params = [
            {"name": name(w[j]), "type_id": w[j + 1]} for j in range(i + 3, i + 3 + 2 * vlen, 2)
        ]
        obj.update(ret_type_id=st, vlen=vlen, params=params)
    elif kind == Kind.VAR:
        obj.update(type_id=st, linkage=_linkage(w[i + 3]))
    elif kind == Kind.DATASEC:
        vars_ = [
            {"type_id": w[j], "offset": w[j + 1], "size": w[j + 2]}
            for j in range(i + 3, i + 3 + 3 * vlen, 3)
        ]
        obj.update(size=st, vlen=vlen, vars=vars_)
    elif kind == Kind.FLOAT:
        obj["size"] = st
    elif kind == Kind.DECL_TAG:
        obj.update(type_id=st, component_idx=_s32(w[i + 3]))
    return obj


def dump_json(
    spec: Spec, write: Callable[[str], object], root_ids: Iterable[int] | None = None
) -> None:
    """JSON Lines: one object per type, each as bpftool -j prints it."""
    spec.preload_strings()
    ids = spec.ids() if root_ids is None else root_ids
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines: list[str] = []
    for tid in ids:
        lines.append(encode(type_to_json(spec, tid)) + "\n")
        if len(lines) >= 4096:
            write("".join(lines))
            lines.clear()
    write("".join(lines))
