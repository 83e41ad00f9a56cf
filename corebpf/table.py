"""Aligned text tables for people (``corebpf run --format text``): events as rows under a
header whose columns are the event struct's fields, and the exit dump of globals and
maps.

Columns come from the record's BTF type: struct and union members flattened as
``a.b`` (members of anonymous ones under their parent's name), ``char`` arrays as
strings, enums by enumerator name, pointers in hex, other arrays in one cell. A
column's width is the widest of its name, what its type usually needs (capped, so a
``u64`` does not claim 20 characters) and its value in the first row; later values
that are wider widen only their own row. Numbers align right, text left.

Values are those :mod:`corebpf.run` makes JSON-safe, so both formats print the same
things.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from .btf import Spec
from .btf import types as bt

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, TextIO

__all__ = ["Column", "EventTable", "columns", "dump_text", "format_cell", "render"]

GAP = "  "
#: the most characters a type's usual width asks for (the first row may ask for more)
_INT_CAP = 7
_TEXT_CAP = 16
_MAX_DEPTH = 32


class Column:
    """One column: its header, where its value sits in a decoded record, its width,
    alignment, and how its integers read (enumerator names, hex pointers)."""

    __slots__ = ("enum", "name", "path", "pointer", "right", "width")

    def __init__(self, name: str, path: tuple[str, ...], width: int = 0, right: bool = False,
                 enum: dict[int, str] | None = None, pointer: bool = False):
        self.name = name
        self.path = path
        self.width = width
        self.right = right
        self.enum = enum if enum is not None else {}
        self.pointer = pointer

    def __repr__(self) -> str:
        return f"Column({self.name!r}, width={self.width})"


def _strip(spec: Spec, tid: int) -> tuple[int, bt.Type]:
    t = spec.type(tid)
    for _ in range(_MAX_DEPTH):
        if not isinstance(t, bt.Typedef | bt.Const | bt.Volatile | bt.Restrict
                          | bt.TypeTag | bt.Var | bt.DeclTag):
            break
        tid = t.type
        t = spec.type(tid)
    return tid, t


def _is_char(spec: Spec, tid: int) -> bool:
    _, t = _strip(spec, tid)
    return isinstance(t, bt.Int) and t.size == 1 and not t.encoding & bt.IntEncoding.BOOL \
        and (bool(t.encoding & bt.IntEncoding.CHAR) or t.name in ("char", "signed char"))


def _leaf(spec: Spec, t: bt.Type, name: str, path: tuple[str, ...]) -> Column:
    col = Column(name, path)
    if isinstance(t, bt.Int):
        if t.encoding & bt.IntEncoding.BOOL:
            col.width = 5
        else:
            bits = t.bits or t.size * 8
            high = (1 << (bits - 1)) - 1 if t.signed else (1 << bits) - 1
            col.width = min(len(str(high)) + (1 if t.signed else 0), _INT_CAP)
            col.right = True
    elif isinstance(t, bt.Enum | bt.Enum64):
        col.enum = {v.value: v.name for v in t.values}
        col.width = min(max((len(v.name) for v in t.values), default=1), _TEXT_CAP)
    elif isinstance(t, bt.Pointer):
        col.pointer = True
        col.width = 18
        col.right = True
    elif isinstance(t, bt.Float):
        col.width = 10
        col.right = True
    elif isinstance(t, bt.Array) and _is_char(spec, t.type):
        col.width = min(max(t.nelems - 1, 1), _TEXT_CAP)
    col.width = max(col.width, len(name))
    return col


def columns(spec: Spec, type_id: int) -> list[Column]:
    """The columns of records of BTF type ``type_id``: one per scalar, string or array
    member, nested structs and unions flattened as ``a.b``."""
    out: list[Column] = []

    def walk(tid: int, path: tuple[str, ...], depth: int) -> None:
        tid, t = _strip(spec, tid)
        if isinstance(t, bt.Struct | bt.Union) and depth < _MAX_DEPTH:
            for m in t.members:
                if m.name:
                    walk(m.type, (*path, m.name), depth + 1)
                else:
                    _, inner = _strip(spec, m.type)
                    if isinstance(inner, bt.Struct | bt.Union):
                        walk(m.type, path, depth + 1)  # its members are the parent's
            return
        out.append(_leaf(spec, t, ".".join(path) or "value", path))

    walk(type_id, (), 0)
    return out


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_cell(value: Any, col: Column | None = None) -> str:
    """One value as a cell: enumerator names, pointers in hex, compact JSON for arrays
    and anything nested, ``-`` for a missing value."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if col is not None:
            if value in col.enum:
                return col.enum[value]
            if col.pointer:
                return f"{value:#x}"
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return _printable(value)
    return _printable(json.dumps(value, separators=(",", ":")))


def _get(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _line(cells: list[str], cols: list[Column]) -> str:
    parts = []
    last = len(cols) - 1
    for i, (text, col) in enumerate(zip(cells, cols, strict=True)):
        if col.right:
            parts.append(text.rjust(col.width))
        elif i == last:
            parts.append(text)  # no trailing blanks
        else:
            parts.append(text.ljust(col.width))
    return GAP.join(parts)


class EventTable:
    """Records of one or more ring/perf maps as table rows on ``out``: each map's header
    before its first row, again when rows switch between maps (each has its own
    columns). With several maps a leading ``map`` column names each row's; perf event
    arrays add ``cpu``."""

    def __init__(self, out: TextIO, spec: Spec | None, *, several: bool = False):
        self.out = out
        self.spec = spec
        self.several = several
        self._cols: dict[str, list[Column]] = {}
        self._sized: set[str] = set()
        self._last: str | None = None

    def add_map(self, name: str, type_id: int, *, perf: bool = False) -> None:
        cols: list[Column] = []
        if self.several:
            cols.append(Column("map", ("map",), width=3))
        if perf:
            cols.append(Column("cpu", ("cpu",), width=3, right=True))
        if self.spec is not None and type_id:
            cols += [Column(c.name, ("event", *c.path), c.width, c.right, c.enum, c.pointer)
                     for c in columns(self.spec, type_id)]
        else:
            cols.append(Column("data", ("data",), width=4))
        self._cols[name] = cols

    def row(self, name: str, record: Mapping[str, Any]) -> None:
        """One decoded record (``{"map", "cpu"?, "event" | "data"}`` as JSON prints it)."""
        cols = self._cols[name]
        if "event" not in record and any(c.path[0] == "event" for c in cols):
            # shorter than its type: no fields to put in columns
            self.out.write(f"{name}: short record: {record.get('data', '')}\n")
            return
        cells = [format_cell(_get(record, c.path), c) for c in cols]
        if name not in self._sized:
            self._sized.add(name)
            for c, text in zip(cols, cells, strict=True):
                c.width = max(c.width, len(text))
        if name != self._last:
            self._last = name
            self.out.write(_line([c.name for c in cols], cols).rstrip() + "\n")
        self.out.write(_line(cells, cols) + "\n")


def render(rows: list[dict[str, Any]], names: list[str] | None = None,
           indent: str = "") -> list[str]:
    """Rows of flat ``{column: value}`` as aligned lines under a header (columns in
    order of first appearance unless ``names``), every row taken into the widths."""
    if names is None:
        names = []
        for r in rows:
            names += [k for k in r if k not in names]
    cols = [Column(n, (n,), len(n)) for n in names]
    cells = [[format_cell(r.get(c.name)) for c in cols] for r in rows]
    for i, c in enumerate(cols):
        values = [r.get(c.name) for r in rows]
        c.right = bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                       for v in values if v is not None)
        c.width = max([c.width] + [len(row[i]) for row in cells])
    lines = [indent + _line(names, cols).rstrip()]
    lines += [indent + _line(row, cols) for row in cells]
    return lines


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix or "value"] = value


def _entry_rows(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for e in entries:
        key: dict[str, Any] = {}
        _flatten(e.get("key"), "key", key)
        value = e.get("value")
        per_cpu = value if isinstance(value, list) and e.get("percpu") else None
        if per_cpu is None:
            row = dict(key)
            _flatten(value, "value", row)
            rows.append(row)
            continue
        for cpu, v in enumerate(per_cpu):
            row = {**key, "cpu": cpu}
            _flatten(v, "value", row)
            rows.append(row)
    return rows


def dump_text(out: TextIO, globals_: Mapping[str, Mapping[str, Any]],
              maps: Mapping[str, list[dict[str, Any]]],
              percpu: Iterable[str] = ()) -> None:
    """The exit dump for people: each data section's variables (``name  value``, structs
    flattened as ``var.field``), then each map's entries as a table (keys and values
    flattened as ``key.a``/``value.b``; per-CPU maps one row per CPU)."""
    percpu = set(percpu)
    for section, variables in globals_.items():
        out.write(f"{section}:\n")
        flat: dict[str, Any] = {}
        for name, value in variables.items():
            _flatten(value, name, flat)
        if not flat:
            out.write("  (no variables)\n")
            continue
        width = max(len(n) for n in flat)
        for name, value in flat.items():
            out.write(f"  {name.ljust(width)}  {format_cell(value)}\n")
    for name, entries in maps.items():
        rows = _entry_rows({**e, "percpu": name in percpu} for e in entries)
        out.write(f"map {name}:{' (empty)' if not rows else ''}\n")
        if rows:
            out.write("\n".join(render(rows, indent="  ")) + "\n")
