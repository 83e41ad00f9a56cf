"""An object's global variables, and Python values checked and encoded for them.

What a skeleton needs to offer ``obj.rodata.target_uid = 1000``, and what
:func:`corebpf.loader.load` (``rodata=``) and ``corebpf run --set`` use, so that every
path into a variable applies the same checks against the variable's BTF type:

* :func:`data_sections` -- each global data section (``.rodata``, ``.data``, ``.bss``,
  ``.rodata.<name>``...) with the map the loader makes of it and its variables
  (:class:`Variable`: name, section, offset, size, BTF type id, read_only).
* :func:`variables` / :func:`find_variable` -- the same variables by name
  (``read_only=True``: only the ones that can be set before load, the ``const volatile``
  globals).
* :func:`declaration` -- a variable as C declares it (``const volatile __u32 target_uid``),
  which error messages name.
* :func:`encode_variable` -- a Python value as a variable's bytes: ints by range and
  signedness, ``bool`` for ``_Bool``, enums by enumerator name or int, ``str`` for
  ``char`` arrays (it must fit with its NUL), ``bytes`` of exactly the variable's size for
  anything, dicts for structs and lists for arrays (through :mod:`corebpf.btf.codec`).
* :func:`parse_value` / :func:`parse_variable` -- the same from text (``--set NAME=VALUE``).

Every refusal is a :class:`VariableError` naming the object, the section, the variable
and its type. Pure data: nothing here calls the kernel.
"""

from __future__ import annotations

import json

from ._record import field, record
from .btf import Spec
from .btf import types as bt
from .btf.codec import CodecError, codec
from .errors import BTFError, Error
from .obj.object import ObjectSpec

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DataSection",
    "Variable",
    "VariableError",
    "c_declaration",
    "data_sections",
    "declaration",
    "encode_value",
    "encode_variable",
    "find_variable",
    "parse_value",
    "parse_variable",
    "type_desc",
    "variables",
]

_TRUE = frozenset({"1", "true", "yes", "on", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "n"})


class VariableError(Error, ValueError):
    """A global variable that does not exist, or a value that does not fit its type."""


@record
class Variable:
    """One global variable: where it lives in its section's map and its BTF type (the
    VAR's type: ``const volatile __u32`` for ``const volatile __u32 x``)."""

    name: str
    section: str
    map_name: str
    offset: int
    size: int
    type_id: int
    read_only: bool


@record
class DataSection:
    """A global data section as the loader makes it a one-element array map."""

    section: str
    map_name: str
    size: int
    read_only: bool
    #: its DATASEC's BTF id (0 without BTF)
    type_id: int = 0
    variables: list[Variable] = field(default_factory=list)


def data_sections(obj: ObjectSpec) -> list[DataSection]:
    """The object's global data sections with their variables, by offset."""
    out = []
    for m in obj.maps.values():
        if not m.is_data:
            continue
        ds = DataSection(m.section, m.name, m.value_size, m.read_only, m.value_type_id)
        for v in sorted(m.variables, key=lambda v: v.offset):
            ds.variables.append(Variable(v.name, m.section, m.name, v.offset, v.size,
                                         v.type_id, m.read_only))
        out.append(ds)
    return out


def variables(obj: ObjectSpec, *, read_only: bool | None = None) -> dict[str, Variable]:
    """Global variables by name (the first section's where two share a name), all of
    them or only the read-only (``True``) or writable (``False``) ones."""
    out: dict[str, Variable] = {}
    for ds in data_sections(obj):
        if read_only is not None and ds.read_only != read_only:
            continue
        for v in ds.variables:
            out.setdefault(v.name, v)
    return out


def find_variable(obj: ObjectSpec, name: str, *, read_only: bool = False) -> Variable:
    """Variable ``name``; with ``read_only``, one that can be set before load. A
    VariableError lists what there is otherwise."""
    every = variables(obj)
    ro = [n for n, v in every.items() if v.read_only]
    have = f"(read-only globals: {', '.join(ro) or 'none'})"
    v = every.get(name)
    if v is None:
        what = "read-only global" if read_only else "global"
        raise VariableError(f"{obj.source}: no {what} variable {name!r} {have}")
    if read_only and not v.read_only:
        raise VariableError(f"{obj.source}: {_where(obj, v)} is not read-only: only "
                            f"const volatile globals are set before load {have}")
    return v


def declaration(obj: ObjectSpec, v: Variable) -> str:
    """``v`` as C declares it: ``const volatile __u32 target_uid``, ``char comm[16]``."""
    if obj.btf is None:
        return v.name
    return c_declaration(obj.btf, v.type_id, v.name)


def c_declaration(spec: Spec, type_id: int, name: str) -> str:
    """``name`` declared with BTF type ``type_id``, as C writes it (typedef names kept)."""
    quals: list[str] = []
    stars = ""
    dims = ""
    tid = type_id
    t = spec.type(tid)
    for _ in range(64):
        t = spec.type(tid)
        if isinstance(t, bt.Const | bt.Volatile):
            q = "const" if isinstance(t, bt.Const) else "volatile"
            if q not in quals:
                quals.append(q)
        elif isinstance(t, bt.Restrict | bt.TypeTag):
            pass
        elif isinstance(t, bt.Array):
            dims += f"[{t.nelems}]"
        elif isinstance(t, bt.Pointer):
            stars += "*"
        else:
            break
        tid = t.type
        if tid == 0:
            break
    base = " ".join([*quals, _base_name(spec, tid)])
    return f"{base} {stars}{name}{dims}" if stars or name else base + dims


def _base_name(spec: Spec, tid: int) -> str:
    if tid == 0:
        return "void"
    t = spec.type(tid)
    kind = {bt.Kind.STRUCT: "struct ", bt.Kind.UNION: "union ", bt.Kind.ENUM: "enum ",
            bt.Kind.ENUM64: "enum ", bt.Kind.FWD: "struct "}.get(t.kind, "")
    return f"{kind}{t.name or '(anon)'}" if t.name or kind else t.kind.name.lower()


def _where(obj: ObjectSpec, v: Variable) -> str:
    """How messages name a variable: section, name and type, once each."""
    if obj.btf is None:
        return f"{v.section} variable {v.name!r}"
    decl = c_declaration(obj.btf, v.type_id, "")
    return f"{v.section} variable {v.name!r} ({decl})"


def type_desc(spec: Spec, tid: int) -> str:
    """A resolved type's short name: ``unsigned int``, ``struct event``, ``char[16]``."""
    t = spec.type(spec.resolve(tid))
    if isinstance(t, bt.Array):
        return f"{type_desc(spec, t.type)}[{t.nelems}]"
    return _base_name(spec, spec.resolve(tid))


def _byte_array(spec: Spec, t: bt.Type) -> bool:
    if not isinstance(t, bt.Array):
        return False
    et = spec.type(spec.resolve(t.type))
    return isinstance(et, bt.Int) and et.size == 1 and not et.encoding & bt.IntEncoding.BOOL


def encode_value(spec: Spec, type_id: int, value: Any, *, what: str) -> bytes:
    """``value`` as the bytes of BTF type ``type_id``, checked (see the module docstring);
    errors start with ``what``."""
    try:
        tid = spec.resolve(type_id)
        t = spec.type(tid)
        c = codec(spec, tid)
    except BTFError as e:
        raise VariableError(f"{what}: cannot be set: {e}") from None
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) != c.size:
            raise VariableError(f"{what}: {len(raw)} bytes for a {c.size}-byte value "
                                "(bytes must be its whole image)")
        return raw
    if isinstance(value, str) and _byte_array(spec, t):
        assert isinstance(t, bt.Array)
        raw = value.encode()
        if len(raw) >= t.nelems:
            raise VariableError(f"{what}: {len(raw)}-byte string does not fit "
                                f"{type_desc(spec, tid)} (at most {t.nelems - 1} bytes and "
                                "the NUL)")
        value = raw
    elif isinstance(value, list | tuple) and _byte_array(spec, t):
        assert isinstance(t, bt.Array)
        value = _byte_list(spec, t, value, what)
    elif isinstance(value, float) and isinstance(t, bt.Int | bt.Enum | bt.Enum64 | bt.Pointer):
        raise VariableError(f"{what}: expected an integer for {type_desc(spec, tid)}, "
                            f"not {value!r}")
    try:
        return c.encode(value)
    except CodecError as e:
        msg = str(e)
        if e.path:
            msg = msg[len(e.path) + 2:]
            rest = e.path[len(c.name):] if e.path.startswith(c.name) else e.path
            if rest:
                msg = f"{rest.lstrip('.')}: {msg}"
        raise VariableError(f"{what}: {msg}") from None


def _byte_list(spec: Spec, t: bt.Array, value: list[Any] | tuple[Any, ...],
               what: str) -> bytes:
    """A list of small ints for a byte array (``__u8 addr[4] = {10, 0, 0, 1}``)."""
    if len(value) > t.nelems:
        raise VariableError(f"{what}: {len(value)} elements for a {t.nelems}-element array")
    elem = codec(spec, t.type)
    out = bytearray()
    for i, x in enumerate(value):
        try:
            out += elem.encode(x)
        except CodecError as e:
            msg = str(e)[len(e.path) + 2:] if e.path else str(e)
            raise VariableError(f"{what}: [{i}]: {msg}") from None
    return bytes(out)


def encode_variable(obj: ObjectSpec, name: str, value: Any, *,
                    read_only: bool = False) -> bytes:
    """``value`` as the bytes of global variable ``name`` (its whole size), checked
    against its BTF type; ``read_only`` also requires a variable that can be set
    before load (``const volatile``). Raises :class:`VariableError`."""
    v = find_variable(obj, name, read_only=read_only)
    what = f"{obj.source}: {_where(obj, v)}"
    if obj.btf is None:
        if isinstance(value, bytes | bytearray) and len(value) == v.size:
            return bytes(value)
        raise VariableError(f"{what}: the object has no BTF to type it (give {v.size} "
                            "bytes)")
    return encode_value(obj.btf, v.type_id, value, what=what)


def parse_value(spec: Spec, type_id: int, text: str, *, what: str = "value") -> bytes:
    """``text`` as the bytes of BTF type ``type_id``: integers in any base Python reads
    (``0x10``, ``-1``, ``1_000``), booleans (``true``/``false``/``1``/``0``), enumerator
    names, strings for ``char`` arrays, floats, and JSON for structs and other arrays;
    then checked as :func:`encode_value` checks Python values."""
    try:
        t = spec.type(spec.resolve(type_id))
    except BTFError as e:
        raise VariableError(f"{what}: cannot be set: {e}") from None
    stripped = text.strip()
    value: Any
    if isinstance(t, bt.Int) and t.encoding & bt.IntEncoding.BOOL:
        low = stripped.lower()
        if low not in _TRUE | _FALSE:
            raise VariableError(f"{what}: {text!r} is not a boolean (true or false)")
        value = low in _TRUE
    elif isinstance(t, bt.Int | bt.Pointer):
        value = _parse_int(text, what, f" ({type_desc(spec, type_id)})")
    elif isinstance(t, bt.Enum | bt.Enum64):
        names = [v.name for v in t.values]
        value = stripped if stripped in names else _parse_int(
            text, what, f" (one of {', '.join(names) or 'no names'} or an integer)")
    elif isinstance(t, bt.Float):
        try:
            value = float(text)
        except ValueError:
            raise VariableError(f"{what}: {text!r} is not a number "
                                f"({type_desc(spec, type_id)})") from None
    elif _byte_array(spec, t):
        value = text
    else:
        try:
            value = json.loads(text)
        except ValueError:
            raise VariableError(f"{what}: takes a JSON value, not {text!r}") from None
    return encode_value(spec, type_id, value, what=what)


def _parse_int(text: str, what: str, hint: str = "") -> int:
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise VariableError(f"{what}: {text!r} is not an integer{hint}") from None


def parse_variable(obj: ObjectSpec, name: str, text: str, *,
                   read_only: bool = False) -> bytes:
    """:func:`encode_variable` from text (``--set NAME=VALUE``), parsed per
    :func:`parse_value`."""
    v = find_variable(obj, name, read_only=read_only)
    what = f"{obj.source}: {_where(obj, v)}"
    if obj.btf is None:
        raise VariableError(f"{what}: the object has no BTF to type it")
    return parse_value(obj.btf, v.type_id, text, what=what)
