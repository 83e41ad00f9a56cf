"""Map keys and values printed through BTF as bpftool prints them, and read back.

bpftool's BTF dumper (``btf_dumper.c``) has its own conventions, which differ from
:mod:`corebpf.btf.codec`'s: a ``char`` array is a string only when it holds printable
ASCII up to a NUL, else a list of numbers; bitfields and 128-bit integers are hex text;
an enum is its enumerator's name when the value has one; anonymous members keep their
empty name; a DATASEC is ``{section: [{var: value}, ...]}``. In its plain (text) output
the same tree is written by its JSON writer in pretty mode, with a few tokens left bare
(``0x1d``, ``0xffff888012345678``, ``(nil)``). :func:`dump` builds that tree,
:func:`render` writes it either way, :func:`encode` takes the JSON shape back to bytes.

Nothing here calls the kernel.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable

from ..btf import Spec
from ..btf.codec import CodecError
from ..btf.types import (
    Array,
    Const,
    Datasec,
    Enum,
    Enum64,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Pointer,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    Void,
    Volatile,
)
from ..errors import BTFError

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "Obj",
    "Raw",
    "dump",
    "encode",
    "func_signature",
    "render",
    "to_python",
]

_MAX_DEPTH = 64
_SIG_MAX = 1024  # bpftool's func_sig buffer: a longer signature prints as nothing


class Raw(str):
    """A token the plain output prints bare (``0x1d``, ``(nil)``); JSON never holds one."""

    __slots__ = ()


class Obj(list[tuple[str, "Any"]]):
    """A JSON object as (name, value) pairs, in BTF order: anonymous members all have the
    name ``""``, so names may repeat."""

    __slots__ = ()


def _resolve(spec: Spec, tid: int) -> int:
    for _ in range(_MAX_DEPTH):
        t = spec.type(tid)
        if not isinstance(t, Typedef | Volatile | Const | Restrict | TypeTag):
            return tid
        tid = t.type
    raise BTFError(f"type [{tid}]: modifier chain deeper than {_MAX_DEPTH}")


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw >> (bits - 1) & 1 else raw


class _Dumper:
    def __init__(self, spec: Spec, plain: bool):
        self.spec = spec
        self.plain = plain
        self.little = spec.endian == "<"

    def _uint(self, data: bytes, off: int, size: int) -> int:
        return int.from_bytes(data[off:off + size], "little" if self.little else "big")

    def value(self, tid: int, data: bytes, off: int, bit_off: int, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise BTFError(f"type [{tid}]: nested deeper than {_MAX_DEPTH}")
        t = self.spec.type(tid)
        if isinstance(t, Int):
            return self.int_value(t, data, off, bit_off)
        if isinstance(t, Struct | Union):
            out = Obj()
            for m in t.members:
                moff = off + m.offset // 8
                if m.bitfield_size:
                    out.append((m.name, self.bitfield(m.bitfield_size, m.offset % 8, data,
                                                      moff)))
                else:
                    out.append((m.name, self.value(m.type, data, moff, m.offset % 8,
                                                   depth + 1)))
            return out
        if isinstance(t, Array):
            return self.array(t, data, off, depth)
        if isinstance(t, Enum):
            raw = _signed(self._uint(data, off, t.size), t.size * 8) if t.size in (1, 2, 4, 8) \
                else 0
            for v in t.values:
                if raw == _signed(v.value & 0xFFFF_FFFF, 32):
                    return v.name
            return raw
        if isinstance(t, Enum64):
            raw = self._uint(data, off, 8)
            for v in t.values:
                if raw == v.value & (1 << 64) - 1:
                    return v.name
            return _signed(raw, 64)
        if isinstance(t, Pointer):
            ptr = self._uint(data, off, self.spec.pointer_size)
            if not self.plain:
                return ptr
            return Raw(f"{ptr:#x}" if ptr else "(nil)")
        if isinstance(t, Typedef | Volatile | Const | Restrict | TypeTag):
            return self.value(_resolve(self.spec, tid), data, off, bit_off, depth + 1)
        if isinstance(t, Var):
            return Obj([(t.name, self.value(t.type, data, off, bit_off, depth + 1))])
        if isinstance(t, Datasec):
            return Obj([(t.name, [self.value(v.type, data, off + v.offset, 0, depth + 1)
                                  for v in t.vars])])
        if isinstance(t, Float):
            fmt = {4: "f", 8: "d"}.get(t.size)
            if fmt is None:  # long double: its bytes
                return [b for b in data[off:off + t.size]]
            (f,) = struct.unpack_from(("<" if self.little else ">") + fmt, data, off)
            return f
        if isinstance(t, Void):
            return Raw("(unknown)")
        if isinstance(t, Fwd):
            return Raw("(fwd-kind-invalid)")
        return Raw(f"(unsupported-kind {t.kind.name.lower()})")

    def int_value(self, t: Int, data: bytes, off: int, bit_off: int) -> Any:
        bits = t.bits
        if bit_off or t.bit_offset or bits % 8:
            total = bit_off + t.bit_offset
            return self.bitfield(bits, total % 8, data, off + total // 8)
        if bits == 128:
            return self.hex_value(self._uint(data, off, 16))
        enc = t.encoding
        if enc == IntEncoding.NONE or enc == IntEncoding.SIGNED:
            if bits not in (8, 16, 32, 64):
                return self.bitfield(bits, 0, data, off)
            raw = self._uint(data, off, bits // 8)
            return _signed(raw, bits) if enc == IntEncoding.SIGNED else raw
        if enc & IntEncoding.CHAR:
            c = data[off]
            if 0x20 <= c < 0x7F:
                return chr(c)
            return Raw(f"{c:#x}") if self.plain else chr(c)
        if enc & IntEncoding.BOOL:
            return data[off] != 0
        return Raw(f"(unsupported-encoding {enc})")

    def bitfield(self, bits: int, bit_off: int, data: bytes, off: int) -> Any:
        nbytes = (bit_off + bits + 7) // 8
        raw = self._uint(data, off, nbytes)
        shift = bit_off if self.little else nbytes * 8 - bit_off - bits
        return self.hex_value(raw >> shift & ((1 << bits) - 1))

    def hex_value(self, value: int) -> Any:
        text = f"{value:#x}"
        return Raw(text) if self.plain else text

    def array(self, t: Array, data: bytes, off: int, depth: int) -> Any:
        elem = self.spec.type(t.type)
        while isinstance(elem, Volatile | Const | Restrict | TypeTag):
            elem = self.spec.type(elem.type)  # typedefs of char are not strings
        if t.nelems and isinstance(elem, Int) and elem.size == 1 and \
                (elem.encoding & IntEncoding.CHAR or elem.name == "char"):
            chunk = data[off:off + t.nelems]
            end = chunk.find(b"\0")
            if end >= 0 and all(0x20 <= c < 0x7F for c in chunk[:end]):
                return chunk[:end].decode("ascii")
        size = self.spec.size_of(t.type)
        return [self.value(t.type, data, off + i * size, 0, depth + 1)
                for i in range(t.nelems)]


def dump(spec: Spec, type_id: int, data: bytes, *, plain: bool = False) -> Any:
    """The value of type ``type_id`` held in ``data``, as bpftool's BTF dumper shows it:
    ints, strings, bools, lists and :class:`Obj`; with ``plain``, the tokens its text
    output leaves bare are :class:`Raw`. ``data`` shorter than the type reads as
    zero-padded."""
    size = spec.size_of(type_id)
    if len(data) < size:
        data = bytes(data) + bytes(size - len(data))
    return _Dumper(spec, plain).value(type_id, bytes(data), 0, 0, 0)


def to_python(tree: Any) -> Any:
    """A dumped tree as plain Python values (objects as dicts: a repeated anonymous
    member keeps its last value)."""
    if isinstance(tree, Obj):
        return {k: to_python(v) for k, v in tree}
    if isinstance(tree, list):
        return [to_python(v) for v in tree]
    if isinstance(tree, Raw):
        return str(tree)
    return tree


# -- bpftool's JSON writer --------------------------------------------------------------


def _quote_bpftool(s: str) -> str:
    """json_writer.c's jsonw_puts: C escapes, a backslash written as ``\\n`` (sic) and
    the single quote escaped; other characters as they are."""
    table = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\b": "\\b", "\\": "\\n",
             '"': '\\"', "'": "\\'"}
    return '"' + "".join(table.get(c, c) for c in s) + '"'


def _quote_json(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)


class Writer:
    """A streaming writer laid out as bpftool's json_writer: ``pretty`` puts each member
    on its own line, indented four spaces a level, but array elements side by side;
    ``bpftool_strings`` quotes strings as it does (else as JSON)."""

    def __init__(self, *, pretty: bool, bpftool_strings: bool = False):
        self.parts: list[str] = []
        self.depth = 0
        self.pretty = pretty
        self.sep = ""
        self.quote = _quote_bpftool if bpftool_strings else _quote_json

    def _eol(self) -> None:
        if self.pretty:
            self.parts.append("\n" + "    " * self.depth)

    def _eor(self) -> None:
        if self.sep:
            self.parts.append(self.sep)
        self.sep = ","

    def begin(self, c: str) -> None:
        self._eor()
        self.parts.append(c)
        self.depth += 1
        self.sep = ""

    def end(self, c: str) -> None:
        self.depth -= 1
        if self.sep:
            self._eol()
        self.parts.append(c)
        self.sep = ","

    def name(self, name: str) -> None:
        self._eor()
        self._eol()
        self.sep = ""
        self.parts.append(self.quote(name) + (": " if self.pretty else ":"))

    def token(self, text: str) -> None:
        self._eor()
        self.parts.append(text)

    def value(self, v: Any) -> None:
        if isinstance(v, Obj | dict):
            self.begin("{")
            for k, item in (v.items() if isinstance(v, dict) else v):
                self.name(k)
                self.value(item)
            self.end("}")
        elif isinstance(v, list | tuple):
            self.begin("[")
            for item in v:
                self.value(item)
            self.end("]")
        elif isinstance(v, Raw):
            self.token(str(v))
        elif isinstance(v, str):
            self._eor()
            self.parts.append(self.quote(v))
        elif isinstance(v, bool):
            self.token("true" if v else "false")
        elif v is None:
            self.token("null")
        elif isinstance(v, float):
            self.token(repr(v) if v == v and v not in (float("inf"), float("-inf"))
                       else "null")
        else:
            self.token(str(int(v)))

    def reset(self) -> None:
        """Start a new top-level value with no separator (jsonw_reset)."""
        self.sep = ""

    def text(self) -> str:
        return "".join(self.parts)


def render(tree: Any, *, pretty: bool, bpftool_strings: bool = False) -> str:
    """One value written as bpftool's json_writer writes it (see :class:`Writer`)."""
    w = Writer(pretty=pretty, bpftool_strings=bpftool_strings)
    w.value(tree)
    return w.text()


# -- reading values back ----------------------------------------------------------------


class _Encoder:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.order: Any = "little" if spec.endian == "<" else "big"

    def put_int(self, buf: bytearray, off: int, size: int, value: int) -> None:
        buf[off:off + size] = (value & ((1 << size * 8) - 1)).to_bytes(size, self.order)

    def number(self, value: Any, path: str, lo: int, hi: int, what: str) -> int:
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value, 0)
            except ValueError:
                raise CodecError(path, f"{value!r} is not a number ({what})") from None
        if not isinstance(value, int):
            raise CodecError(path, f"expected a number for {what}, got "
                                   f"{type(value).__name__}")
        if not lo <= value <= hi:
            raise CodecError(path, f"{value} does not fit {what} ({lo}..{hi})")
        return value

    def bits(self, buf: bytearray, off: int, bit_off: int, bits: int, value: Any,
             path: str) -> None:
        v = self.number(value, path, -(1 << (bits - 1)), (1 << bits) - 1, f"{bits} bits")
        v &= (1 << bits) - 1
        nbytes = (bit_off + bits + 7) // 8
        cur = int.from_bytes(buf[off:off + nbytes], self.order)
        shift = bit_off if self.order == "little" else nbytes * 8 - bit_off - bits
        mask = ((1 << bits) - 1) << shift
        cur = cur & ~mask | v << shift
        buf[off:off + nbytes] = cur.to_bytes(nbytes, self.order)

    def put(self, tid: int, buf: bytearray, off: int, bit_off: int, value: Any, path: str,
            depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise BTFError(f"type [{tid}]: nested deeper than {_MAX_DEPTH}")
        spec = self.spec
        t = spec.type(tid)
        if isinstance(t, Typedef | Volatile | Const | Restrict | TypeTag):
            self.put(_resolve(spec, tid), buf, off, bit_off, value, path, depth + 1)
        elif isinstance(t, Int):
            if bit_off or t.bit_offset or t.bits % 8:
                total = bit_off + t.bit_offset
                self.bits(buf, off + total // 8, total % 8, t.bits, value, path)
            elif t.encoding & IntEncoding.BOOL:
                if not isinstance(value, bool | int):
                    raise CodecError(path, f"expected true or false, got {value!r}")
                buf[off] = 1 if value else 0
            elif t.encoding & IntEncoding.CHAR and isinstance(value, str):
                if len(value.encode()) != 1:
                    raise CodecError(path, f"{value!r} is not one character")
                buf[off] = value.encode()[0]
            else:
                n = t.bits
                lo = -(1 << (n - 1)) if t.encoding & IntEncoding.SIGNED else 0
                hi = (1 << n) - 1 if n == 128 or not t.encoding & IntEncoding.SIGNED \
                    else (1 << (n - 1)) - 1
                self.put_int(buf, off, t.size, self.number(value, path, lo, hi,
                                                           t.name or "int"))
        elif isinstance(t, Enum | Enum64):
            if isinstance(value, str) and not value.lstrip("-").isdigit() and \
                    not value.startswith("0x"):
                for ev in t.values:
                    if ev.name == value:
                        value = ev.value
                        break
                else:
                    names = ", ".join(ev.name for ev in t.values)
                    raise CodecError(path, f"enum {t.name or '(anonymous)'} has no "
                                           f"{value!r} ({names})")
            bits = t.size * 8
            self.put_int(buf, off, t.size, self.number(value, path, -(1 << (bits - 1)),
                                                       (1 << bits) - 1, f"enum {t.name}"))
        elif isinstance(t, Pointer):
            size = spec.pointer_size
            if value in ("(nil)", None):
                value = 0
            self.put_int(buf, off, size, self.number(value, path, 0, (1 << size * 8) - 1,
                                                     "a pointer"))
        elif isinstance(t, Array):
            self.array(t, buf, off, value, path, depth)
        elif isinstance(t, Struct | Union):
            self.composite(t, buf, off, value, path, depth)
        elif isinstance(t, Float):
            fmt = {4: "f", 8: "d"}.get(t.size)
            if fmt is None or not isinstance(value, int | float) or isinstance(value, bool):
                raise CodecError(path, f"expected a number for {t.name}")
            struct.pack_into(("<" if self.order == "little" else ">") + fmt, buf, off, value)
        elif isinstance(t, Var):
            self.put(t.type, buf, off, 0, value, path, depth + 1)
        elif isinstance(t, Datasec):
            self.datasec(t, buf, off, value, path, depth)
        else:
            raise CodecError(path, f"cannot write a {t.kind.name.lower()}")

    def array(self, t: Array, buf: bytearray, off: int, value: Any, path: str,
              depth: int) -> None:
        if isinstance(value, str):
            data = value.encode()
            if len(data) > t.nelems:
                raise CodecError(path, f"{len(data)} bytes do not fit char[{t.nelems}]")
            buf[off:off + len(data)] = data
            return
        if not isinstance(value, list | tuple):
            raise CodecError(path, f"expected a list of at most {t.nelems} elements")
        if len(value) > t.nelems:
            raise CodecError(path, f"{len(value)} elements for an array of {t.nelems}")
        size = self.spec.size_of(t.type)
        for i, item in enumerate(value):
            self.put(t.type, buf, off + i * size, 0, item, f"{path}[{i}]", depth + 1)

    def composite(self, t: Struct | Union, buf: bytearray, off: int, value: Any, path: str,
                  depth: int) -> None:
        pairs = list(value.items()) if isinstance(value, dict) else \
            list(value) if isinstance(value, Obj) else None
        if pairs is None:
            raise CodecError(path, f"expected an object for {t.kind.name.lower()} "
                                   f"{t.name or '(anonymous)'}")
        members = {m.name: m for m in t.members}
        for name, item in pairs:
            m = members.get(name)
            if m is None:
                names = ", ".join(repr(m.name) for m in t.members)
                raise CodecError(path, f"{t.kind.name.lower()} {t.name or '(anonymous)'} "
                                       f"has no member {name!r} (members: {names})")
            where = f"{path}.{name}" if name else path
            moff = off + m.offset // 8
            if m.bitfield_size:
                self.bits(buf, moff, m.offset % 8, m.bitfield_size, item, where)
            else:
                self.put(m.type, buf, moff, m.offset % 8, item, where, depth + 1)

    def datasec(self, t: Datasec, buf: bytearray, off: int, value: Any, path: str,
                depth: int) -> None:
        items: Iterable[Any]
        if isinstance(value, dict) and list(value) == [t.name]:
            items = value[t.name]  # bpftool's {section: [{var: value}, ...]}
        elif isinstance(value, Obj) and len(value) == 1 and value[0][0] == t.name:
            items = value[0][1]
        else:
            items = [value]
        by_name = {self.spec.type(v.type).name: v for v in t.vars}
        for entry in items:
            pairs = entry.items() if isinstance(entry, dict) else entry
            for name, item in pairs:
                v = by_name.get(name)
                if v is None:
                    raise CodecError(path, f"section {t.name} has no variable {name!r}")
                self.put(v.type, buf, off + v.offset, 0, item, f"{path}.{name}", depth + 1)


def encode(spec: Spec, type_id: int, value: Any, *, path: str = "value") -> bytes:
    """Bytes of type ``type_id`` holding ``value`` given in the shape :func:`dump` prints
    (members left out are zero; bitfields and 128-bit ints also as ``"0x..."`` text;
    enums by enumerator name or number). A value that does not fit raises CodecError
    naming the field."""
    buf = bytearray(spec.size_of(type_id))
    _Encoder(spec).put(type_id, buf, 0, 0, value, path, 0)
    return bytes(buf)


# -- signatures -------------------------------------------------------------------------


class _SigTooLong(Exception):
    pass


def _type_only(spec: Spec, tid: int, out: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH or sum(map(len, out)) >= _SIG_MAX:
        raise _SigTooLong
    if not tid:
        out.append("void ")
        return
    t = spec.type(tid)
    if isinstance(t, Int | Typedef | Float):
        out.append(f"{t.name} ")
    elif isinstance(t, Struct):
        out.append(f"struct {t.name} ")
    elif isinstance(t, Union):
        out.append(f"union {t.name} ")
    elif isinstance(t, Enum | Enum64):
        out.append(f"enum {t.name} ")
    elif isinstance(t, Array):
        _type_only(spec, t.type, out, depth + 1)
        out.append(f"[{t.nelems}]")
    elif isinstance(t, Pointer):
        _type_only(spec, t.type, out, depth + 1)
        out.append("* ")
    elif isinstance(t, Fwd):
        out.append(f"{'union' if t.is_union else 'struct'} {t.name} ")
    elif isinstance(t, Volatile | Const | Restrict):
        out.append({Volatile: "volatile ", Const: "const ", Restrict: "restrict "}[type(t)])
        _type_only(spec, t.type, out, depth + 1)
    elif isinstance(t, FuncProto):
        _func(spec, t, None, out, depth)
    elif isinstance(t, Func):
        proto = spec.type(t.type)
        if not isinstance(proto, FuncProto):
            raise _SigTooLong
        _func(spec, proto, t.name, out, depth)
    elif isinstance(t, Var):
        if t.linkage == 0:
            out.append("static ")
        _type_only(spec, t.type, out, depth + 1)
        out.append(f" {t.name}")
    elif isinstance(t, Datasec):
        out.append(f'section ("{t.name}") ')
    else:
        raise _SigTooLong  # kinds bpftool gives no text for: no signature at all


def _func(spec: Spec, proto: FuncProto, name: str | None, out: list[str],
          depth: int) -> None:
    _type_only(spec, proto.return_type, out, depth + 1)
    out.append(f"{name}(" if name is not None else "(")
    for i, p in enumerate(proto.params):
        if i:
            out.append(", ")
        if p.type:
            _type_only(spec, p.type, out, depth + 1)
            if p.name:
                out.append(p.name)
            elif out and out[-1].endswith(" "):
                out[-1] = out[-1][:-1]  # no space before a missing name
        else:
            out.append("...")
    out.append(")")


def func_signature(spec: Spec, type_id: int) -> str:
    """A type as one line of C-ish text, as bpftool prints a program's functions
    (``int handle(void * ctx)``); empty for kinds it cannot print or past 1023 chars."""
    out: list[str] = []
    try:
        _type_only(spec, type_id, out, 0)
    except _SigTooLong:
        return ""
    text = "".join(out)
    return text if len(text) < _SIG_MAX else ""
