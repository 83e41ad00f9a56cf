"""Typed values for skeletons: ctypes structures whose layout comes from BTF.

A generated skeleton module declares one class per struct, union and data section of its
object. They are ctypes classes, so an event decodes with one C-level copy
(``Event.from_buffer_copy(record)``) and fields read at C speed; what ctypes does not do,
the base classes here add:

* ``char`` arrays read and write as ``str`` (the bytes before the first NUL);
* writes are checked against the field's C type: an int out of range, a string too long
  for its array with its NUL, a value of the wrong kind is a :class:`ValueError`-derived
  :class:`corebpf.Error` naming the field and its type, never a silent wrap or cut;
* values compare and hash by their bytes (so struct map keys work in dicts), print with
  their fields, and convert to plain Python (:meth:`Struct.to_dict`).

The layout itself is checked against the object's BTF when a skeleton opens
(:func:`check_layout`), so a stale generated module is an error, not garbage.
"""

from __future__ import annotations

import ctypes
import math

from ..errors import Error

TYPE_CHECKING = False

if TYPE_CHECKING:
    from _ctypes import _PyCStructType as _StructMetaBase
    from _ctypes import _UnionType as _UnionMetaBase
    from typing import Any, Self
else:
    _StructMetaBase = type(ctypes.Structure)
    _UnionMetaBase = type(ctypes.Union)

__all__ = [
    "Bitfield",
    "Struct",
    "Union",
    "ValueCheckError",
    "ctype_desc",
    "to_python",
]


class ValueCheckError(Error, ValueError):
    """A value that does not fit the C type of the field or variable it is written to."""


_INT_TYPES: dict[Any, tuple[int, bool, str]] = {
    ctypes.c_int8: (1, True, "s8"), ctypes.c_uint8: (1, False, "u8"),
    ctypes.c_int16: (2, True, "s16"), ctypes.c_uint16: (2, False, "u16"),
    ctypes.c_int32: (4, True, "s32"), ctypes.c_uint32: (4, False, "u32"),
    ctypes.c_int64: (8, True, "s64"), ctypes.c_uint64: (8, False, "u64"),
}
for _t in list(_INT_TYPES):  # byte-swapped twins (foreign-endian layouts)
    for _attr in ("__ctype_be__", "__ctype_le__"):
        _twin = getattr(_t, _attr, None)
        if _twin is not None and _twin not in _INT_TYPES:
            _INT_TYPES[_twin] = _INT_TYPES[_t]


def ctype_desc(ct: Any) -> str:
    """A C-like name of a ctypes type, for messages: ``u32``, ``char[16]``, ``struct event``."""
    if ct in _INT_TYPES:
        return _INT_TYPES[ct][2]
    if ct is ctypes.c_char:
        return "char"
    if ct is ctypes.c_bool:
        return "bool"
    if ct in (ctypes.c_float, ctypes.c_double):
        return "float" if ct is ctypes.c_float else "double"
    if isinstance(ct, type) and issubclass(ct, ctypes.Array):
        return f"{ctype_desc(ct._type_)}[{ct._length_}]"
    if isinstance(ct, type) and issubclass(ct, ctypes.Union):
        return f"union {getattr(ct, '_c_name_', ct.__name__)}"
    if isinstance(ct, type) and issubclass(ct, ctypes.Structure):
        return f"struct {getattr(ct, '_c_name_', ct.__name__)}"
    return getattr(ct, "__name__", str(ct))


def _is_char_array(ct: Any) -> bool:
    return isinstance(ct, type) and issubclass(ct, ctypes.Array) and \
        getattr(ct, "_type_", None) is ctypes.c_char


# -- checking ---------------------------------------------------------------------------


def check_value(ct: Any, value: Any, where: str, bits: int = 0) -> Any:
    """``value`` made ready for a ctypes field of type ``ct`` (``bits`` for a bitfield),
    or :class:`ValueCheckError` naming ``where`` and the C type."""
    desc = ctype_desc(ct) + (f":{bits}" if bits else "")
    if ct in _INT_TYPES:
        size, signed, _ = _INT_TYPES[ct]
        if isinstance(value, bool) or not isinstance(value, int):
            if hasattr(value, "__index__") and not isinstance(value, bool | float):
                value = value.__index__()
            elif isinstance(value, bool):
                value = int(value)
            else:
                raise ValueCheckError(f"{where}: {type(value).__name__} {value!r} is not an "
                                      f"integer ({desc})")
        width = bits or size * 8
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        if not lo <= value <= hi:
            raise ValueCheckError(f"{where}: {value} does not fit {desc} ({lo}..{hi})")
        return value
    if ct is ctypes.c_bool:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return bool(value)
        raise ValueCheckError(f"{where}: {value!r} is not a boolean (bool)")
    if ct is ctypes.c_char:
        if isinstance(value, bytes) and len(value) == 1:
            return value
        if isinstance(value, str) and len(value.encode()) == 1:
            return value.encode()
        if isinstance(value, int) and 0 <= value < 256:
            return bytes([value])
        raise ValueCheckError(f"{where}: {value!r} is not one character (char)")
    if ct in (ctypes.c_float, ctypes.c_double):
        if isinstance(value, int | float) and not isinstance(value, bool):
            f = float(value)
            if ct is ctypes.c_float and math.isfinite(f) and abs(f) > 3.4028234663852886e38:
                raise ValueCheckError(f"{where}: {value} does not fit float")
            return f
        raise ValueCheckError(f"{where}: {value!r} is not a number ({desc})")
    if _is_char_array(ct):
        n: int = ct._length_
        raw = value.encode() if isinstance(value, str) else value
        if not isinstance(raw, bytes | bytearray):
            raise ValueCheckError(f"{where}: {type(value).__name__} {value!r} is not a "
                                  f"string ({desc})")
        if isinstance(value, str) and len(raw) >= n:
            raise ValueCheckError(f"{where}: {len(raw)}-byte string does not fit {desc} "
                                  f"(at most {n - 1} bytes and the NUL)")
        if len(raw) > n:
            raise ValueCheckError(f"{where}: {len(raw)} bytes do not fit {desc}")
        return bytes(raw)
    if isinstance(ct, type) and issubclass(ct, ctypes.Array):
        if isinstance(value, ct):
            return value
        if isinstance(value, bytes | bytearray) and ctypes.sizeof(ct) == len(value):
            return ct.from_buffer_copy(value)
        if not isinstance(value, list | tuple):
            raise ValueCheckError(f"{where}: {type(value).__name__} is not a list ({desc})")
        arr: Any = ct
        if len(value) > arr._length_:
            raise ValueCheckError(f"{where}: {len(value)} items do not fit {desc}")
        return arr(*[check_value(arr._type_, v, f"{where}[{i}]") for i, v in enumerate(value)])
    if isinstance(ct, type) and issubclass(ct, ctypes.Structure | ctypes.Union):
        if isinstance(value, ct):
            return value
        if isinstance(value, dict):
            obj = ct()
            for k, v in value.items():
                _set_checked(obj, k, v, where)
            return obj
        if isinstance(value, bytes | bytearray) and len(value) == ctypes.sizeof(ct):
            return ct.from_buffer_copy(value)
        raise ValueCheckError(f"{where}: {type(value).__name__} is not a {desc} (pass a "
                              f"{ct.__name__} or a dict of its fields)")
    return value


def _set_checked(obj: Any, name: str, value: Any, where: str) -> None:
    try:
        setattr(obj, name, value)
    except ValueCheckError as e:
        raise ValueCheckError(f"{where}: {e}") from None


# -- string fields and bitfields ---------------------------------------------------------


class _StrField:
    """A ``char[N]`` field as ``str``: the bytes before the first NUL, decoded as UTF-8
    (undecodable bytes replaced)."""

    __slots__ = ("cfield",)

    def __init__(self, cfield: Any):
        self.cfield = cfield

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        return self.cfield.__get__(obj, owner).decode("utf-8", "replace")

    def __set__(self, obj: Any, value: Any) -> None:
        self.cfield.__set__(obj, value)

    @property
    def offset(self) -> int:
        return int(self.cfield.offset)

    @property
    def size(self) -> int:
        return int(self.cfield.size)


class Bitfield:
    """A bitfield that ctypes cannot place (it kept the bytes as ``raw``): read and written
    here by bit offset from the start of the ``raw`` field, in the machine's byte order."""

    __slots__ = ("bit_offset", "bits", "raw", "signed")

    def __init__(self, raw: str, bit_offset: int, bits: int, signed: bool = False):
        self.raw, self.bit_offset, self.bits, self.signed = raw, bit_offset, bits, signed

    def _storage(self, obj: Any) -> tuple[Any, int]:
        cf = getattr(type(obj), self.raw)
        return cf, int.from_bytes(bytes(cf.__get__(obj, type(obj))), _native_order())

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        _, word = self._storage(obj)
        v = (word >> self.bit_offset) & ((1 << self.bits) - 1)
        if self.signed and v >> (self.bits - 1):
            v -= 1 << self.bits
        return v

    def __set__(self, obj: Any, value: Any) -> None:
        lo, hi = ((-(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1) if self.signed
                  else (0, (1 << self.bits) - 1))
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueCheckError(f"{type(obj).__name__}: {value!r} does not fit a "
                                  f"{'signed' if self.signed else 'unsigned'} "
                                  f"{self.bits}-bit field ({lo}..{hi})")
        cf, word = self._storage(obj)
        mask = ((1 << self.bits) - 1) << self.bit_offset
        word = (word & ~mask) | ((value << self.bit_offset) & mask)
        n = cf.size
        cf.__set__(obj, type(cf.__get__(obj, type(obj))).from_buffer_copy(
            word.to_bytes(n, _native_order())))


def _native_order() -> Any:
    import sys

    return sys.byteorder


# -- the base classes ----------------------------------------------------------------------


def _prepare(cls: Any) -> None:
    """After ctypes laid ``cls`` out: its fields' types (anonymous members' promoted too),
    ``str`` access for char arrays, and no writes that bypass the checks."""
    types: dict[str, tuple[Any, int]] = {}
    anon = set(cls.__dict__.get("_anonymous_", ()))
    for f in cls.__dict__.get("_fields_", ()):
        name, ct = f[0], f[1]
        bits = f[2] if len(f) > 2 else 0
        if name in anon:
            for sub, spec in getattr(ct, "_field_types_", {}).items():
                types.setdefault(sub, spec)
            continue
        types[name] = (ct, bits)
    for name, (ct, _) in types.items():
        if _is_char_array(ct) and not name.startswith("_"):
            cfield = cls.__dict__.get(name)
            if cfield is not None and not isinstance(cfield, _StrField):
                setattr(cls, name, _StrField(cfield))
    for name, attr in list(cls.__dict__.items()):
        if isinstance(attr, Bitfield):
            types[name] = (None, attr.bits)
    cls._field_types_ = types


class _StructMeta(_StructMetaBase):
    def __init__(cls, name: str, bases: tuple[type, ...], ns: dict[str, Any]):
        super().__init__(name, bases, ns)
        if "_fields_" in ns:
            _prepare(cls)


class _UnionMeta(_UnionMetaBase):
    def __init__(cls, name: str, bases: tuple[type, ...], ns: dict[str, Any]):
        super().__init__(name, bases, ns)
        if "_fields_" in ns:
            _prepare(cls)


class _Common:
    """What Struct and Union share (mixed in before the ctypes base)."""

    __slots__ = ()
    _field_types_: dict[str, tuple[Any, int]]
    _c_name_: str

    def __setattr__(self, name: str, value: Any) -> None:
        ft = type(self)._field_types_.get(name)
        if ft is None:
            known = ", ".join(n for n in type(self)._field_types_ if not n.startswith("_"))
            raise ValueCheckError(f"{self._where(None)} has no {self._member_word} {name!r} "
                                  f"({self._member_word}s: {known or 'none'})")
        ct, bits = ft
        if ct is None:  # a Bitfield descriptor checks itself
            object.__setattr__(self, name, value)
            return
        super().__setattr__(name, check_value(ct, value, self._where(name), bits))

    _member_word = "field"

    def _where(self, name: str | None) -> str:
        """How messages name this value's type, or one of its fields."""
        desc = ctype_desc(type(self))
        return desc if name is None else f"{desc}.{name}"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return bool(bytes(self) == bytes(other))  # type: ignore[call-overload]

    def __hash__(self) -> int:
        return hash(bytes(self))  # type: ignore[call-overload]

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={_short(getattr(self, k))!r}" for k in type(self)._field_types_
                          if not k.startswith("_"))
        return f"{type(self).__name__}({inner})"

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values: nested structs as dicts, arrays as lists, char arrays as
        str, bytes (``u8`` arrays) as bytes."""
        return {k: to_python(getattr(self, k)) for k in type(self)._field_types_
                if not k.startswith("_")}

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        """A copy of ``data`` read as this type; a short record (variable-length events)
        is zero-padded, a longer one cut."""
        size = ctypes.sizeof(cls)  # type: ignore[arg-type]
        if len(data) < size:
            data = bytes(data).ljust(size, b"\0")
        return cls.from_buffer_copy(data)  # type: ignore[attr-defined, no-any-return]


class Struct(_Common, ctypes.Structure, metaclass=_StructMeta):
    """Base of generated struct classes."""

    __slots__ = ()

    def __init__(self, **fields: Any):
        super().__init__()
        for k, v in fields.items():
            setattr(self, k, v)


class Union(_Common, ctypes.Union, metaclass=_UnionMeta):
    """Base of generated union classes."""

    __slots__ = ()

    def __init__(self, **fields: Any):
        super().__init__()
        for k, v in fields.items():
            setattr(self, k, v)


def _short(value: Any) -> Any:
    """Arrays as lists in a repr (nested structs keep their own repr)."""
    return to_python(value) if isinstance(value, ctypes.Array) else value


def to_python(value: Any) -> Any:
    """A ctypes value as plain Python: dicts, lists, str, bytes, int, float."""
    if isinstance(value, _Common):
        return value.to_dict()
    if isinstance(value, ctypes.Array):
        if value._type_ is ctypes.c_char:
            return bytes(value.value).decode("utf-8", "replace")
        if value._type_ in (ctypes.c_uint8, ctypes.c_ubyte):
            return bytes(value)
        return [to_python(v) for v in value]
    if isinstance(value, ctypes.Structure | ctypes.Union):
        return {f[0]: to_python(getattr(value, f[0])) for f in value._fields_}
    return value


def field_bytes(obj: Any, name: str, length: int | None = None) -> bytes:
    """The raw bytes of field ``name`` of a struct value (all of them, or the first
    ``length``): for char arrays that hold more than one string (argv as NUL-separated
    strings), which the ``str`` view cuts at the first NUL."""
    attr = type(obj).__dict__.get(name)
    if isinstance(attr, _StrField):
        attr = attr.cfield
    if attr is None or not hasattr(attr, "offset"):
        raise ValueCheckError(f"{ctype_desc(type(obj))} has no field {name!r}")
    size = int(attr.size)
    n = size if length is None else max(0, min(int(length), size))
    return ctypes.string_at(ctypes.addressof(obj) + int(attr.offset), n)
