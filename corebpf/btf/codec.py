"""Python values to and from bytes laid out as a BTF type: map keys and values, global
data, events.

A type is compiled once (per spec, per type id) into a small tree of codecs and cached,
because maps are read in loops. Wherever a type is made only of scalars, byte strings,
arrays and nested structs (no bitfields, no unions) the whole tree collapses into one
``struct.Struct``, so decoding a value is one ``unpack_from`` plus building the dict.

Values as Python sees them:

* integers, pointers and enums are ``int`` (an enum may decode to its enumerator's name
  with ``enum_names=True``; encoding takes either); ``_Bool`` is ``bool``
* floats are ``float``; a 16-byte ``long double`` stays ``bytes``
* arrays of ``char``/``unsigned char`` (``u8``, ``__u8``...) are ``bytes`` of the full
  array length (see :func:`cstr`); other arrays are lists
* structs and unions are dicts of member name to value; members of anonymous structs
  and unions appear in the enclosing dict, as C lets you name them
* a DATASEC (global data: ``.bss``, ``.data``) is a dict of variable name to value

Encoding is forgiving where C is: missing members are zero, a short array or string is
zero-padded. A value that does not fit raises :class:`CodecError` naming the field.

Nothing here calls the kernel.
"""

from __future__ import annotations

import ctypes
import struct
import sys
import weakref
from collections.abc import Mapping

from ..errors import BTFError, Error
from .spec import MAX_NESTING, Spec
from .types import (
    Array,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    Float,
    Int,
    IntEncoding,
    Member,
    Pointer,
    Restrict,
    Struct,
    Typedef,
    TypeTag,
    Union,
    Var,
    Volatile,
)

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, TypeAlias

    Buffer: TypeAlias = "bytes | bytearray | memoryview"
    WBuffer: TypeAlias = "bytearray | memoryview"  # writable, of unsigned bytes

__all__ = [
    "Codec",
    "CodecError",
    "codec",
    "cstr",
    "decode",
    "encode",
    "layout_matches",
    "to_ctypes",
]


class CodecError(Error, ValueError):
    """A value that does not fit its BTF type; ``path`` names the field (``event.comm``)."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class _Slow(Exception):
    """The one-struct fast path cannot take this value; the checked path will."""


_INT_FMT = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
            (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}
_FLOAT_FMT = {2: "e", 4: "f", 8: "d"}
_BYTES_LIKE = (bytes, bytearray, memoryview)
#: Longest flat format an array of composites is unrolled into (items, not bytes).
_MAX_UNROLL = 4096


def cstr(data: bytes | bytearray | memoryview, encoding: str = "utf-8",
         errors: str = "replace") -> str:
    """The NUL-terminated string at the start of a ``char[]`` value (``task->comm``)."""
    raw = bytes(data)
    end = raw.find(b"\0")
    return (raw if end < 0 else raw[:end]).decode(encoding, errors)


def _type_name(value: object) -> str:
    return type(value).__name__


def _raw_of(value: object, size: int, path: str) -> bytes | None:
    """``value``'s bytes when it is a bytes-like or ctypes object of exactly ``size``."""
    if isinstance(value, _BYTES_LIKE) or isinstance(value, ctypes.Array | ctypes.Structure
                                                     | ctypes.Union | ctypes._SimpleCData):
        raw = value if isinstance(value, bytes) else bytes(value)
        if len(raw) != size:
            raise CodecError(path, f"{len(raw)} bytes for a {size}-byte value")
        return raw
    return None


# -- nodes: one per (resolved) type -----------------------------------------------------


class _Node:
    """Codec of one type. ``fmt`` is its struct format (byte order aside) when the type is
    flat, else None; ``count`` is how many items that format yields; ``plain`` means one
    item that is the value itself."""

    __slots__ = ("count", "fmt", "plain", "size")

    def __init__(self, size: int, fmt: str | None, count: int = 1, plain: bool = False):
        self.size = size
        self.fmt = fmt
        self.count = count
        self.plain = plain

    def decode(self, buf: Buffer, off: int) -> Any:
        raise NotImplementedError

    def take(self, items: tuple[Any, ...], i: int) -> tuple[Any, int]:
        """The value built from ``items[i:]`` (flat nodes only) and the next index."""
        return items[i], i + 1

    def flatten(self, value: Any, out: list[Any]) -> None:
        """Append ``value``'s struct items (flat nodes only); raise anything to fall back."""
        out.append(value)

    def encode_into(self, buf: WBuffer, off: int, value: Any, path: str) -> None:
        raise NotImplementedError


class _IntNode(_Node):
    """Integers, pointers, chars and enums (``names`` maps values to enumerators)."""

    __slots__ = ("by_name", "char", "hi", "lo", "names", "order", "signed", "st", "tname")

    def __init__(self, size: int, signed: bool, endian: str, tname: str, *, char: bool = False,
                 names: dict[int, str] | None = None, by_name: dict[str, int] | None = None):
        fmt = _INT_FMT.get((size, signed))
        super().__init__(size, fmt, 1, plain=fmt is not None and not names)
        self.signed = signed
        self.order: Any = "little" if endian == "<" else "big"
        self.st = struct.Struct(endian + fmt) if fmt else None
        self.tname = tname
        self.char = char
        self.names = names
        self.by_name = by_name
        bits = 8 * size
        self.lo = -(1 << (bits - 1)) if signed else 0
        self.hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1

    def decode(self, buf: Buffer, off: int) -> Any:
        if self.st is not None:
            v = self.st.unpack_from(buf, off)[0]
        else:
            v = int.from_bytes(buf[off:off + self.size], self.order, signed=self.signed)
        return self.names.get(v, v) if self.names else v

    def take(self, items: tuple[Any, ...], i: int) -> tuple[Any, int]:
        v = items[i]
        return (self.names.get(v, v) if self.names else v), i + 1

    def flatten(self, value: Any, out: list[Any]) -> None:
        if value.__class__ is str:
            if not self.by_name:
                raise _Slow
            value = self.by_name[value]
        out.append(value)

    def coerce(self, value: Any, path: str, lo: int, hi: int, what: str) -> int:
        """``value`` as an int in [lo, hi], or a CodecError saying why not."""
        if isinstance(value, int):
            v = int(value)
        elif isinstance(value, str) and self.by_name is not None:
            if value not in self.by_name:
                raise CodecError(path, f"{value!r} is not an enumerator of {self.tname}")
            v = self.by_name[value]
        elif self.char and isinstance(value, str | bytes) and len(value) == 1:
            v = value[0] if isinstance(value, bytes) else ord(value)
            if v > 0xFF:
                raise CodecError(path, f"{value!r} is not a single byte")
            if self.signed and v > 0x7F:
                v -= 0x100
        else:
            raise CodecError(path, f"expected an integer for {self.tname}, "
                                   f"not {_type_name(value)}")
        if not lo <= v <= hi:
            raise CodecError(path, f"{v} does not fit in {what} ({lo}..{hi})")
        return v

    def encode_into(self, buf: WBuffer, off: int, value: Any, path: str) -> None:
        v = self.coerce(value, path, self.lo, self.hi, self.tname)
        if self.st is not None:
            self.st.pack_into(buf, off, v)
        else:
            buf[off:off + self.size] = v.to_bytes(self.size, self.order, signed=self.signed)


class _BoolNode(_Node):
    __slots__ = ("tname",)

    def __init__(self, size: int, tname: str):
        super().__init__(size, "?" if size == 1 else None, 1, plain=size == 1)
        self.tname = tname

    def decode(self, buf: Buffer, off: int) -> Any:
        return any(buf[off:off + self.size])

    def flatten(self, value: Any, out: list[Any]) -> None:
        if value is not True and value is not False:
            raise _Slow
        out.append(value)

    def encode_into(self, buf: WBuffer, off: int, value: Any, path: str) -> None:
        if not (isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))):
            raise CodecError(path, f"expected a bool for {self.tname}, not {value!r}")
        buf[off:off + self.size] = bytes(self.size)
        buf[off] = int(value)


class _FloatNode(_Node):
    __slots__ = ("st", "tname")

    def __init__(self, size: int, endian: str, tname: str):
        fmt = _FLOAT_FMT[size]
        super().__init__(size, fmt, 1, plain=True)
        self.st = struct.Struct(endian + fmt)
        self.tname = tname

    def decode(self, buf: Buffer, off: int) -> Any:
        return self.st.unpack_from(buf, off)[0]

    def encode_into(self, buf: WBuffer, off: int, value: Any, path: str) -> None:
        if not isinstance(value, int | float):
            raise CodecError(path, f"expected a float for {self.tname}, not {_type_name(value)}")
        try:
            self.st.pack_into(buf, off, value)
        except (OverflowError, struct.error):
            raise CodecError(path, f"{value} does not fit in {self.tname} "
                                   f"({self.size} bytes)") from None


class _BytesNode(_Node):
    """``char[N]`` (and other byte blobs such as ``long double``): bytes, zero-padded."""

    __slots__ = ()

    def __init__(self, size: int):
        super().__init__(size, f"{size}s", 1, plain=True)

    def decode(self, buf: Buffer, off: int) -> Any:
        return bytes(buf[off:off + self.size])

    def flatten(self, value: Any, out: list[Any]) -> None:
        if value.__class__ is not bytes or len(value) > self.size:
            raise _Slow
        out.append(value)

    def encode_into(self, buf: WBuffer, off: int, value: Any, path: str) -> None:
        if isinstance(value, str):
            value = value.encode()
        elif not isinstance(value, _BYTES_LIKE):
            raise CodecError(path, f"expected bytes or str for a {self.size}-byte array, "
                                   f"not {_type_name(value)}")
        data = bytes(value)
        if len(data) > self.size:
            raise CodecError(path, f"{len(data)} bytes for a {self.size}-byte array")
        buf[off:off + self.size] = data.ljust(self.size, b"\0")


class _ArrayNode(_Node):
    __slots__ = ("elem", "n", "scalar", "st")

    def __init__(self, elem: _Node, n: int, endian: str):
        fmt: str | None = None
        scalar = elem.plain and elem.fmt is not None and len(elem.fmt) == 1
        if elem.fmt is not None:
            if scalar:
                fmt = f"{n}{elem.fmt}"
            elif n * elem.count <= _MAX_UNROLL:
                fmt = elem.fmt * n
        super().__init__(elem.size * n, fmt, elem.count * n)
        self.elem = elem
        self.n = n
        self.scalar = scalar
        self.st = struct.Struct(endian + fmt) if fmt is not None else None

    def decode(self, buf: Buffer, off: int) -> Any:
        if self.st is not None:
            items = self.st.unpack_from(buf, off)
            return list(items) if self.scalar else self.take(items, 0)[0]
        esize, elem = self.elem.size, self.elem
        return [elem.decode(buf, off + i * esize) for i in range(self.n)]

    def take(self, items: tuple[Any, ...], i: int) -> tuple[Any, int]:
        if self.scalar:
            return list(items[i:i + self.n]), i + self.n
        out = []
        take = self.elem.take
        for _ in range(self.n):
            v, i = take(items, i)
            out.append(v)
        return out, i

    def flatten(self, value: Any, out: list[Any]) -> None:
        if value.__class__ not in (list, tuple) or len(value) != self.n:
            raise _Slow
        if self.scalar and self.elem.__class__ is not _BoolNode:
            out.extend(value)
        else:
            for v in value:
                self.elem.flatten(v, out)

    def encode_into(self, buf: WBuffer, off: int, value: Any, path: str) -> None:
        if isinstance(value, str | bytes | bytearray | Mapping) or not hasattr(value, "__len__"):
            raise CodecError(path, f"expected a list for a {self.n}-element array, "
                                   f"not {_type_name(value)}")
        if len(value) > self.n:
            raise CodecError(path, f"{len(value)} elements for a {self.n}-element array")
        esize = self.elem.size
        for i, v in enumerate(value):
            self.elem.encode_into(buf, off + i * esize, v, f"{path}[{i}]")
        buf[off + len(value) * esize:off + self.size] = bytes((self.n - len(value)) * esize)


class _BitfieldNode(_Node):
    """A bitfield ``bits`` wide starting ``shift`` bits into the byte at its offset.

    Bit numbering follows the byte order as compilers do: from the least significant bit
    of the first byte on little-endian targets, from the most significant on big-endian.
    """

    __slots__ = ("base", "bits", "little", "mask", "nbytes", "shift")

    def __init__(self, base: _Node, shift: int, bits: int, endian: str):
        nbytes = (shift + bits + 7) // 8
        super().__init__(nbytes, None)
        self.base = base
        self.nbytes = nbytes
        self.shift = shift
        self.bits = bits
        self.mask = (1 << bits) - 1
        self.little = endian == "<"

    def _shift(self) -> int:
        return self.shift if self.little else 8 * self.nbytes - self.shift - self.bits

    def decode(self, buf: Buffer, off: int) -> Any:
        raw = int.from_bytes(buf[off:off + self.nbytes], "little" if self.little else "big")
        v = (raw >> self._shift()) & self.mask
        base = self.base
        if isinstance(base, _BoolNode):
            return bool(v)
        if isinstance(base, _IntNode):
            if base.signed and v >> (self.bits - 1):
                v -= 1 << self.bits
            if base.names:
                return base.names.get(v, v)
        return v

    def encode_into(self, buf: WBuffer, off: int, value: Any, path: str) -> None:
        base = self.base
        if isinstance(base, _BoolNode):
            if not (isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))):
                raise CodecError(path, f"expected a bool, not {value!r}")
            v = int(value)
        else:
            if not isinstance(base, _IntNode):  # a bitfield of a float or a byte blob
                raise CodecError(path, f"a {self.bits}-bit bitfield whose type is not an "
                                 "integer")
            signed = base.signed
            lo = -(1 << (self.bits - 1)) if signed else 0
            hi = (1 << (self.bits - 1)) - 1 if signed else self.mask
            v = base.coerce(value, path, lo, hi, f"a {self.bits}-bit bitfield")
        order: Any = "little" if self.little else "big"
        shift = self._shift()
        raw = int.from_bytes(buf[off:off + self.nbytes], order)
        raw = (raw & ~(self.mask << shift)) | ((v & self.mask) << shift)
        buf[off:off + self.nbytes] = raw.to_bytes(self.nbytes, order)


#: (member name, or None for an anonymous composite; byte offset; node)
_Field: TypeAlias = "tuple[str | None, int, _Node]"


class _CompositeNode(_Node):
    """Structs, unions and datasecs: a dict of member name to value."""

    __slots__ = ("fields", "keys", "kind", "names", "nnames", "simple", "st", "tname")
    names: frozenset[str]

    def __init__(self, kind: str, tname: str, size: int, fields: list[_Field], endian: str):
        self.kind = kind
        self.tname = tname
        self.fields = fields
        names: list[str] = []
        for name, _off, node in fields:
            if name is not None:
                names.append(name)
            elif isinstance(node, _CompositeNode):
                names.extend(node.names)
        self.names = frozenset(names)
        self.nnames = len(self.names)
        fmt = self._flat_format(size) if kind != "union" else None
        super().__init__(size, fmt, sum(n.count for _, _, n in fields))
        self.st = struct.Struct(endian + fmt) if fmt is not None else None
        if self.st is not None and self.st.size != size:  # pragma: no cover - a layout bug
            raise BTFError(f"{self.tname}: flat format {fmt!r} is {self.st.size} bytes, "
                           f"not {size}")
        self.simple = fmt is not None and all(
            name is not None and node.plain for name, _, node in fields)
        self.keys = tuple(name for name, _, _ in fields)

    def _flat_format(self, size: int) -> str | None:
        parts = []
        pos = 0
        for _name, off, node in self.fields:
            if node.fmt is None or off < pos:
                return None
            if off > pos:
                parts.append(f"{off - pos}x")
            parts.append(node.fmt)
            pos = off + node.size
        if size > pos:
            parts.append(f"{size - pos}x")
        return "".join(parts)

    def decode(self, buf: Buffer, off: int) -> Any:
        if self.st is not None:
            items = self.st.unpack_from(buf, off)
            if self.simple:
                return dict(zip(self.keys, items, strict=True))
            return self.take(items, 0)[0]
        out: dict[str, Any] = {}
        for name, moff, node in self.fields:
            v = node.decode(buf, off + moff)
            if name is None:
                out.update(v)
            else:
                out[name] = v
        return out

    def take(self, items: tuple[Any, ...], i: int) -> tuple[Any, int]:
        out: dict[str, Any] = {}
        for name, _off, node in self.fields:
            v, i = node.take(items, i)
            if name is None:
                out.update(v)
            else:
                out[name] = v
        return out, i

    def flatten(self, value: Any, out: list[Any]) -> None:
        if value.__class__ is not dict or len(value) != self.nnames:
            raise _Slow
        self._flatten_members(value, out)

    def _flatten_members(self, value: dict[str, Any], out: list[Any]) -> None:
        for name, _off, node in self.fields:
            if name is None:
                assert isinstance(node, _CompositeNode)
                node._flatten_members(value, out)
            else:
                node.flatten(value[name], out)

    def encode_into(self, buf: WBuffer, off: int, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raw = _raw_of(value, self.size, path)
            if raw is None:
                raise CodecError(path, f"expected a dict for {self.kind} {self.tname}, "
                                       f"not {_type_name(value)}")
            buf[off:off + self.size] = raw
            return
        unknown = [k for k in value if k not in self.names]
        if unknown:
            raise CodecError(path, f"{self.kind} {self.tname} has no member {unknown[0]!r}")
        self._encode_members(buf, off, value, path)

    def _encode_members(self, buf: WBuffer, off: int, value: Mapping[str, Any],
                        path: str) -> None:
        for name, moff, node in self.fields:
            if name is None:
                assert isinstance(node, _CompositeNode)
                node._encode_members(buf, off + moff, value, path)
            elif name in value:
                node.encode_into(buf, off + moff, value[name], f"{path}.{name}")


# -- compiling types into nodes ---------------------------------------------------------


def _is_char(t: Int) -> bool:
    return t.size == 1 and not t.encoding & IntEncoding.BOOL and (
        bool(t.encoding & IntEncoding.CHAR) or "char" in t.name)


class _Compiler:
    """Builds the nodes of one spec into ``nodes`` (a memo that outlives the compiler and
    holds no reference to the spec)."""

    def __init__(self, spec: Spec, enum_names: bool, nodes: dict[int, _Node] | None = None):
        self.spec = spec
        self.endian = spec.endian
        self.enum_names = enum_names
        self.nodes: dict[int, _Node] = {} if nodes is None else nodes

    def node(self, tid: int, depth: int = 0) -> _Node:
        n = self.nodes.get(tid)
        if n is None:
            if depth > MAX_NESTING:
                raise BTFError(f"type [{tid}]: nesting too deep or cyclic",
                               source=self.spec.source)
            n = self._build(tid, depth)
            self.nodes[tid] = n
        return n

    def _build(self, tid: int, depth: int) -> _Node:
        spec, endian = self.spec, self.endian
        t = spec.type(tid)
        if isinstance(t, Typedef | Const | Volatile | Restrict | TypeTag | Var | DeclTag):
            return self.node(t.type, depth + 1)
        if isinstance(t, Int | Enum | Enum64) and not 0 < t.size <= 16:
            return _BytesNode(t.size)  # no such integer (the kernel's BTF stops at 128 bits)
        if isinstance(t, Int):
            if t.encoding & IntEncoding.BOOL:
                base: _Node = _BoolNode(t.size, t.name)
            else:
                base = _IntNode(t.size, bool(t.encoding & IntEncoding.SIGNED), endian, t.name,
                                char=_is_char(t))
            if t.bit_offset or (t.bits and t.bits != 8 * t.size):
                return _LegacyBitsNode(base, t, endian)
            return base
        if isinstance(t, Pointer):
            return _IntNode(spec.pointer_size, False, endian, "pointer")
        if isinstance(t, Enum | Enum64):
            by_name = {v.name: v.value for v in t.values}
            names = {v.value: v.name for v in reversed(t.values)} if self.enum_names else None
            kind = "enum" if isinstance(t, Enum) else "enum64"
            return _IntNode(t.size, t.signed, endian, f"{kind} {t.name or '(anon)'}",
                            names=names, by_name=by_name)
        if isinstance(t, Float):
            if t.size in _FLOAT_FMT:
                return _FloatNode(t.size, endian, t.name)
            return _BytesNode(t.size)
        if isinstance(t, Array):
            et = spec.type(spec.resolve(t.type))
            if isinstance(et, Int) and _is_char(et) and not et.bit_offset and et.bits in (0, 8):
                return _BytesNode(t.nelems)
            return _ArrayNode(self.node(t.type, depth + 1), t.nelems, endian)
        if isinstance(t, Struct | Union):
            return self._composite(tid, t, depth)
        if isinstance(t, Datasec):
            fields: list[_Field] = []
            for si in t.vars:
                var = spec.type(si.type)
                if not isinstance(var, Var):
                    continue  # an extern function (ksym) takes no room
                node = self.node(var.type, depth + 1)
                if t.size:  # 0 in an object file until the loader fixes the section up
                    self._check_bounds(t.name, var.name, si.offset, node.size, t.size)
                fields.append((var.name, si.offset, node))
            fields.sort(key=lambda f: f[1])
            size = t.size or max((off + n.size for _, off, n in fields), default=0)
            return _CompositeNode("datasec", t.name, size, fields, endian)
        raise BTFError(f"type [{tid}] {t.kind.name} {t.name!r} has no value layout",
                       source=spec.source)

    def _check_bounds(self, owner: str, name: str, off: int, size: int, total: int) -> None:
        if off + size > total:
            raise BTFError(f"{owner or '(anon)'}.{name or '(anon)'}: {size} bytes at offset "
                           f"{off} run past the {total}-byte type", source=self.spec.source)

    def _composite(self, tid: int, t: Struct | Union, depth: int) -> _Node:
        spec = self.spec
        kind = "struct" if isinstance(t, Struct) else "union"
        fields: list[_Field] = []
        for m in t.members:
            bits = m.bitfield_size
            bit_off = m.offset
            rt = spec.type(spec.resolve(m.type))
            if not bits and isinstance(rt, Int) and (
                    rt.bit_offset or (rt.bits and rt.bits != 8 * rt.size)):
                bit_off += rt.bit_offset  # pre-kind_flag bitfield, in the INT's encoding
                bits = rt.bits
            if bits:
                base = self.node(spec.resolve(m.type), depth + 1)
                if isinstance(base, _LegacyBitsNode):
                    base = base.base
                if not isinstance(base, _IntNode | _BoolNode):
                    raise BTFError(f"{kind} {t.name or '(anon)'} [{tid}]: bitfield "
                                   f"{m.name!r} is a {rt.kind.name}", source=spec.source)
                node: _Node = _BitfieldNode(base, bit_off % 8, bits, self.endian)
                self._check_bounds(t.name, m.name, bit_off // 8, node.size, t.size)
                if m.name:
                    fields.append((m.name, bit_off // 8, node))
                continue
            if bit_off % 8:
                raise BTFError(f"{kind} {t.name or '(anon)'} [{tid}]: member {m.name!r} at "
                               f"bit {bit_off} is not byte aligned", source=spec.source)
            node = self.node(m.type, depth + 1)
            self._check_bounds(t.name, m.name, bit_off // 8, node.size, t.size)
            if m.name:
                fields.append((m.name, bit_off // 8, node))
            elif isinstance(node, _CompositeNode):
                fields.append((None, bit_off // 8, node))
        if kind == "struct":
            fields.sort(key=lambda f: f[1])
        return _CompositeNode(kind, t.name or "(anon)", t.size, fields, self.endian)


class _LegacyBitsNode(_BitfieldNode):
    """An INT whose own encoding narrows it (``bit_offset``, ``bits``), used on its own."""

    __slots__ = ("skip",)

    def __init__(self, base: _Node, t: Int, endian: str):
        super().__init__(base, t.bit_offset % 8, t.bits, endian)
        self.skip = t.bit_offset // 8
        self.size = t.size

    def decode(self, buf: Buffer, off: int) -> Any:
        return super().decode(buf, off + self.skip)

    def encode_into(self, buf: WBuffer, off: int, value: Any, path: str) -> None:
        super().encode_into(buf, off + self.skip, value, path)


# -- the public face ---------------------------------------------------------------------


class Codec:
    """Encodes and decodes values of one BTF type; get one with :func:`codec` (cached)."""

    __slots__ = ("_decode", "_node", "_spec", "_st", "name", "size", "type_id")

    def __init__(self, spec: Spec, type_id: int, node: _Node):
        self._spec = weakref.ref(spec)  # the cache is keyed by the spec: no cycle back
        self.type_id = type_id
        self._node = node
        self.size = node.size
        self.name = _root_name(spec, type_id)
        self._st = struct.Struct(spec.endian + node.fmt) if node.fmt is not None else None
        self._decode = _decoder(node)

    @property
    def spec(self) -> Spec | None:
        """The spec this codec was compiled from (None once it is gone)."""
        return self._spec()

    @property
    def flat(self) -> bool:
        """Whether the whole type packs and unpacks as one ``struct.Struct``."""
        return self._st is not None

    def decode(self, data: Buffer, offset: int = 0) -> Any:
        """The value at ``data[offset:]`` (which must hold at least :attr:`size` bytes)."""
        if len(data) - offset < self.size or offset < 0:
            raise CodecError(self.name, f"{len(data) - offset} bytes at offset {offset} for a "
                                        f"{self.size}-byte value")
        return self._decode(data, offset)

    def encode(self, value: Any) -> bytes:
        """``value`` as :attr:`size` bytes; members and elements not given are zero."""
        buf = bytearray(self.size)
        self.encode_into(buf, 0, value)
        return bytes(buf)

    def encode_into(self, buf: WBuffer, offset: int, value: Any) -> None:
        """Write ``value`` at ``buf[offset:]`` (a bytearray, or a byte memoryview such as
        an mmap'ed map's); bytes of members not given are kept."""
        if self._st is not None:
            items: list[Any] = []
            try:
                self._node.flatten(value, items)
                self._st.pack_into(buf, offset, *items)
                return
            except (_Slow, KeyError, TypeError, AttributeError, struct.error, OverflowError):
                pass  # the checked path says what is wrong, or accepts it
        self._node.encode_into(buf, offset, value, self.name)

    def __repr__(self) -> str:
        return f"Codec({self.name!r}, type_id={self.type_id}, size={self.size})"


def _decoder(node: _Node) -> Any:
    if isinstance(node, _CompositeNode) and node.simple and node.st is not None:
        unpack, keys = node.st.unpack_from, node.keys
        return lambda buf, off: dict(zip(keys, unpack(buf, off), strict=True))
    if isinstance(node, _IntNode | _FloatNode) and node.plain and node.st is not None:
        unpack = node.st.unpack_from
        return lambda buf, off: unpack(buf, off)[0]
    return node.decode


def _root_name(spec: Spec, type_id: int) -> str:
    """The first name along a typedef/modifier chain ('value' for anonymous types)."""
    tid = type_id
    for _ in range(32):
        t = spec.type(tid)
        if t.name:
            return t.name
        if not isinstance(t, Typedef | Const | Volatile | Restrict | TypeTag | Var):
            break
        tid = t.type
    return "value"


_CODECS: weakref.WeakKeyDictionary[Spec, dict[tuple[int, bool], Codec]] = \
    weakref.WeakKeyDictionary()
_NODES: weakref.WeakKeyDictionary[Spec, dict[bool, dict[int, _Node]]] = \
    weakref.WeakKeyDictionary()


def codec(spec: Spec, type_id: int, *, enum_names: bool = False) -> Codec:
    """The (cached) codec of ``type_id``; ``enum_names`` decodes enums to enumerator names
    where the value has one."""
    per_spec = _CODECS.get(spec)
    if per_spec is None:
        per_spec = _CODECS[spec] = {}
    c = per_spec.get((type_id, enum_names))
    if c is None:
        memos = _NODES.get(spec)
        if memos is None:
            memos = _NODES[spec] = {False: {}, True: {}}
        node = _Compiler(spec, enum_names, memos[enum_names]).node(type_id)
        c = per_spec[(type_id, enum_names)] = Codec(spec, type_id, node)
    return c


def encode(spec: Spec, type_id: int, value: Any) -> bytes:
    """``value`` as the bytes of BTF type ``type_id``."""
    return codec(spec, type_id).encode(value)


def decode(spec: Spec, type_id: int, data: Buffer, *, enum_names: bool = False) -> Any:
    """The Python value of ``data`` read as BTF type ``type_id``."""
    return codec(spec, type_id, enum_names=enum_names).decode(data)


# -- ctypes ------------------------------------------------------------------------------

_CT_INT = {(1, False): ctypes.c_uint8, (1, True): ctypes.c_int8, (2, False): ctypes.c_uint16,
           (2, True): ctypes.c_int16, (4, False): ctypes.c_uint32, (4, True): ctypes.c_int32,
           (8, False): ctypes.c_uint64, (8, True): ctypes.c_int64}
_NATIVE = "<" if sys.byteorder == "little" else ">"
_CTYPES: weakref.WeakKeyDictionary[Spec, dict[int, Any]] = weakref.WeakKeyDictionary()


def to_ctypes(spec: Spec, type_id: int) -> Any:
    """A ctypes type with the layout of ``type_id``: a Structure, Union, Array or simple
    type (byte-swapped variants when the spec's byte order is not this machine's).

    Pointers become integers of the target's pointer size (they point into another
    address space). Bitfields use ctypes' own where its layout sets exactly the BTF's
    bits; a run of bitfields that ctypes cannot place stays raw bytes, named
    ``_bitfields_<byte offset>``.
    """
    per_spec = _CTYPES.get(spec)
    if per_spec is None:
        per_spec = _CTYPES[spec] = {}
    builder = _CtypesBuilder(spec, per_spec)
    return builder.swapped(builder.build(type_id, 0))


class _CtypesBuilder:
    """Types as they go in ``_fields_``: native scalars (a foreign-endian Structure's
    metaclass swaps them), composites already in the spec's byte order."""

    def __init__(self, spec: Spec, cache: dict[int, Any], bases: tuple[Any, Any] | None = None):
        self.spec = spec
        self.cache = cache
        self.native = spec.endian == _NATIVE
        #: (struct base, union base) for native layouts instead of ctypes' own (skeletons
        #: give theirs checked writes and str fields)
        self.bases = bases
        #: each composite class built, with its BTF id (in build order: members first)
        self.built: dict[Any, int] = {}

    def swapped(self, ct: Any) -> Any:
        """A top-level scalar or array in the spec's byte order."""
        if self.native:
            return ct
        if issubclass(ct, ctypes.Array):
            return self.swapped(ct._type_) * ct._length_
        if issubclass(ct, ctypes.Structure | ctypes.Union) or ctypes.sizeof(ct) == 1:
            return ct
        return getattr(ct, "__ctype_be__" if self.spec.endian == ">" else "__ctype_le__")

    def build(self, tid: int, depth: int) -> Any:
        ct = self.cache.get(tid)
        if ct is None:
            if depth > MAX_NESTING:
                raise BTFError(f"type [{tid}]: nesting too deep or cyclic",
                               source=self.spec.source)
            ct = self.cache[tid] = self._build(tid, depth)
        return ct

    def _build(self, tid: int, depth: int) -> Any:
        spec = self.spec
        t = spec.type(tid)
        if isinstance(t, Typedef | Const | Volatile | Restrict | TypeTag | Var | DeclTag):
            return self.build(t.type, depth + 1)
        if isinstance(t, Int):
            if t.size == 1 and t.encoding & IntEncoding.BOOL:
                return ctypes.c_bool if self.native else ctypes.c_uint8  # c_bool cannot swap
            if t.name == "char" and t.size == 1:
                return ctypes.c_char
            if (t.size, True) in _CT_INT:
                return _CT_INT[(t.size, bool(t.encoding & IntEncoding.SIGNED))]
            return ctypes.c_uint8 * t.size
        if isinstance(t, Pointer):
            return _CT_INT[(spec.pointer_size, False)]
        if isinstance(t, Enum | Enum64):
            if (t.size, t.signed) in _CT_INT:
                return _CT_INT[(t.size, t.signed)]
            return ctypes.c_uint8 * t.size
        if isinstance(t, Float):
            ft = {4: ctypes.c_float, 8: ctypes.c_double}.get(t.size)
            return ft if ft is not None else ctypes.c_uint8 * t.size
        if isinstance(t, Array):
            return self.build(t.type, depth + 1) * t.nelems
        if isinstance(t, Struct | Union):
            cls = self._composite(tid, t, depth, raw_bitfields=False)
            if not _layout_matches(spec, t, cls):
                cls = self._composite(tid, t, depth, raw_bitfields=True)
            self.built[cls] = tid
            return cls
        raise BTFError(f"type [{tid}] {t.kind.name} {t.name!r} has no value layout",
                       source=spec.source)

    def _base(self, union: bool) -> Any:
        if self.native:
            if self.bases is not None:
                return self.bases[1] if union else self.bases[0]
            return ctypes.Union if union else ctypes.Structure
        if self.spec.endian == ">":
            return ctypes.BigEndianUnion if union else ctypes.BigEndianStructure
        return ctypes.LittleEndianUnion if union else ctypes.LittleEndianStructure

    def _composite(self, tid: int, t: Struct | Union, depth: int, raw_bitfields: bool) -> Any:
        """``_pack_ = 1`` and explicit padding: every member lands at its BTF offset."""
        spec = self.spec
        union = isinstance(t, Union)
        fields: list[tuple[Any, ...]] = []
        anonymous: list[str] = []
        bitfield_attrs: dict[str, Any] = {}
        pos = 0
        members = list(t.members) if union else sorted(t.members, key=lambda m: m.offset)

        def pad(to: int) -> None:
            nonlocal pos
            if to > pos:
                fields.append((f"_pad_{pos}", ctypes.c_uint8 * (to - pos)))
                pos = to

        i = 0
        while i < len(members):
            m = members[i]
            bits, bit_off = _member_bits(spec, m)
            if not bits:
                if bit_off % 8:
                    raise BTFError(f"member {m.name!r} of [{tid}] is not byte aligned",
                                   source=spec.source)
                ct = self.build(m.type, depth + 1)
                name = m.name
                if not name:
                    name = f"_anon{i}"
                    if issubclass(ct, ctypes.Structure | ctypes.Union):
                        anonymous.append(name)
                if not union:
                    pad(bit_off // 8)
                    pos = bit_off // 8 + ctypes.sizeof(ct)
                fields.append((name, ct))
                i += 1
                continue
            # a run of bitfields, split into storage units (a union member is a run)
            j = i + 1
            if not union:
                while j < len(members) and _member_bits(spec, members[j])[0]:
                    j += 1
            run = [(members[k], *_member_bits(spec, members[k])) for k in range(i, j)]
            lo = run[0][2] // 8
            hi = (max(b + o for _, b, o in run) + 7) // 8
            limit = t.size if union or j == len(members) else members[j].offset // 8
            units = None if raw_bitfields else _bitfield_units(spec, run, pos, limit)
            if units is None:
                if not union:
                    pad(lo)
                fields.append((f"_bitfields_{lo}", ctypes.c_uint8 * (hi - lo)))
                if self.bases is not None:  # reachable by name through a descriptor
                    from ..skeleton.types import Bitfield

                    for bm, bbits, boff in run:
                        if bm.name:
                            rt = spec.type(spec.resolve(bm.type))
                            signed = (isinstance(rt, Int)
                                      and bool(rt.encoding & IntEncoding.SIGNED)) or (
                                isinstance(rt, Enum | Enum64) and rt.signed)
                            bitfield_attrs[bm.name] = Bitfield(f"_bitfields_{lo}",
                                                               boff - lo * 8, bbits, signed)
                if not union:
                    pos = hi
            else:
                for glo, unit, group in units:
                    if not union:
                        pad(glo)
                    at = glo * 8
                    for k, (bm, bbits, boff) in enumerate(group):
                        if boff > at:
                            fields.append((f"_bfpad_{boff}", _CT_INT[(unit, False)], boff - at))
                        rt = spec.type(spec.resolve(bm.type))
                        signed = (isinstance(rt, Int) and bool(rt.encoding & IntEncoding.SIGNED)) \
                            or (isinstance(rt, Enum | Enum64) and rt.signed)
                        fields.append((bm.name or f"_bf_{boff}_{k}", _CT_INT[(unit, signed)],
                                       bbits))
                        at = boff + bbits
                    if at < (glo + unit) * 8:  # fill the unit: the next one must not share it
                        fields.append((f"_bfpad_{at}", _CT_INT[(unit, False)],
                                       (glo + unit) * 8 - at))
                    if not union:
                        pos = glo + unit
            i = j
        if not union:
            pad(t.size)
        elif t.size > max((ctypes.sizeof(f[1]) for f in fields), default=0):
            fields.append(("_pad_union", ctypes.c_uint8 * t.size))
        ns: dict[str, Any] = {"_pack_": 1, **bitfield_attrs, "_fields_": fields,
                              "_c_name_": t.name}
        if anonymous:
            ns["_anonymous_"] = anonymous
        # a class name must be text Python can encode: C names are ASCII identifiers
        name = t.name if t.name.isascii() and t.name.isidentifier() else f"anon_{tid}"
        if not self.native:  # so that foreign structs take it as a member (3.11 looks for
            # these on unions, which it cannot swap otherwise)
            ns["__ctype_be__"] = ns["__ctype_le__"] = None
        cls = type(name, (self._base(union),), ns)
        if not self.native:
            setattr(cls, "__ctype_be__", cls)  # noqa: B010 - a dunder mypy does not know
            setattr(cls, "__ctype_le__", cls)  # noqa: B010
        if ctypes.sizeof(cls) != t.size and raw_bitfields:
            raise BTFError(f"ctypes layout of [{tid}] {name} is {ctypes.sizeof(cls)} bytes, "
                           f"BTF says {t.size}", source=spec.source)
        return cls


def _member_bits(spec: Spec, m: Member) -> tuple[int, int]:
    """(bitfield width or 0, bit offset) of a member, pre-kind_flag INT bitfields too."""
    if m.bitfield_size:
        return m.bitfield_size, m.offset
    rt = spec.type(spec.resolve(m.type))
    if isinstance(rt, Int) and (rt.bit_offset or (rt.bits and rt.bits != 8 * rt.size)):
        return rt.bits, m.offset + rt.bit_offset
    return 0, m.offset


def _bitfield_units(spec: Spec, run: list[tuple[Member, int, int]], first: int,
                    limit: int) -> list[tuple[int, int, list[tuple[Member, int, int]]]] | None:
    """Split a run of (member, bits, bit offset) into (first byte, size, members) storage
    units of 1, 2, 4 or 8 bytes, in order, within bytes [first, limit); None if they
    cannot.

    A member joins the open unit when it fits; else a new unit starts, preferably of its
    declared type's size and alignment, as compilers place them."""
    out: list[tuple[int, int, list[tuple[Member, int, int]]]] = []
    for item in run:
        _m, bits, off = item
        if out:
            glo, unit, group = out[-1]
            if off >= glo * 8 and off + bits <= (glo + unit) * 8:
                group.append(item)
                continue
            wider = next((s for s in (2, 4, 8) if s > unit and off + bits <= (glo + s) * 8
                          and glo + s <= limit), 0)
            if off >= glo * 8 and wider:  # grow the open unit, as for `bool a:1; u32 b:31`
                out[-1] = (glo, wider, [*group, item])
                continue
        prev_end = out[-1][0] + out[-1][1] if out else first
        declared = spec.size_of(item[0].type)
        for size in (declared, 1, 2, 4, 8):
            if size not in (1, 2, 4, 8):
                continue
            start = next((st for st in (off // 8 // size * size, off // 8)
                          if st >= prev_end and off + bits <= (st + size) * 8
                          and st + size <= limit), None)
            if start is not None:
                out.append((start, size, [item]))
                break
        else:
            return None
    return out


def layout_matches(spec: Spec, type_id: int, cls: Any) -> bool:
    """Whether ctypes class ``cls`` lays out struct/union ``type_id`` exactly as BTF does
    (size, member offsets, each bitfield's bits): a generated class still fits its
    object."""
    t = spec.type(spec.resolve(type_id))
    if not isinstance(t, Struct | Union):
        return False
    return _layout_matches(spec, t, cls)


def _layout_matches(spec: Spec, t: Struct | Union, cls: Any) -> bool:
    """Whether ``cls`` has the BTF's size and member offsets, and setting each named
    bitfield to all ones sets exactly the bits the BTF says it has."""
    if ctypes.sizeof(cls) != t.size:
        return False
    comp = _Compiler(spec, False)
    for m in t.members:
        bits, bit_off = _member_bits(spec, m)
        if not m.name or not hasattr(cls, m.name):
            continue
        if not bits:
            if getattr(cls, m.name).offset != bit_off // 8:
                return False
            continue
        base = comp.node(spec.resolve(m.type))
        if isinstance(base, _LegacyBitsNode):
            base = base.base
        if not isinstance(base, _IntNode | _BoolNode):
            return False
        signed = isinstance(base, _IntNode) and base.signed
        ones = -1 if signed else (1 << bits) - 1
        inst = cls()
        try:
            setattr(inst, m.name, ones)
        except (TypeError, ValueError):
            return False
        want = bytearray(t.size)
        _BitfieldNode(base, bit_off % 8, bits, spec.endian).encode_into(
            want, bit_off // 8, True if isinstance(base, _BoolNode) else ones, m.name)
        if bytes(inst) != bytes(want):
            return False
    return True
