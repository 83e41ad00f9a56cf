"""Encoding types to raw BTF, and a builder for new BTF.

The string table is deduplicated: each distinct string is stored once, in order of first
use. A builder started from an existing spec keeps that spec's string section as it is
and appends what is new (as libbpf's btf__add_* do), which is why re-encoding an
unmodified kernel BTF reproduces it byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from ..errors import BTFError
from .spec import BTF_MAGIC, HEADER_LEN, Spec
from .types import (
    Array,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Pointer,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    Void,
    Volatile,
)


class StringTable:
    """A deduplicated BTF string section (offset 0 is the empty string)."""

    def __init__(self, base_size: int = 0, base_lookup: dict[str, int] | None = None):
        self._base_size = base_size
        self._base = base_lookup or {}
        self._offsets: dict[str, int] = {} if base_size else {"": 0}
        self._chunks: list[bytes] = [] if base_size else [b"\0"]
        self._size = 0 if base_size else 1

    def add(self, s: str) -> int:
        off = self._offsets.get(s)
        if off is not None:
            return off
        off = self._base.get(s)
        if off is not None:
            return off
        raw = s.encode("utf-8", "surrogateescape")
        if b"\0" in raw:
            raise BTFError(f"string {s!r} contains a NUL byte")
        off = self._base_size + self._size
        self._offsets[s] = off
        self._chunks.append(raw + b"\0")
        self._size += len(raw) + 1
        return off

    def encode(self) -> bytes:
        return b"".join(self._chunks)

    @classmethod
    def from_section(cls, data: bytes, base_size: int = 0,
                     base_lookup: dict[str, int] | None = None) -> StringTable:
        """Start from an existing string section, kept byte for byte; new strings append."""
        table = cls(base_size, base_lookup)
        if not data:
            return table
        offsets: dict[str, int] = {}
        off = base_size
        for piece in data.split(b"\0")[:-1]:
            offsets.setdefault(piece.decode("utf-8", "surrogateescape"), off)
            off += len(piece) + 1
        table._offsets = offsets
        table._chunks = [data]
        table._size = len(data)
        return table


def _base_strings(base: Spec) -> dict[str, int]:
    """First offset of each string in a base spec's string space (for split BTF)."""
    chain = []
    spec: Spec | None = base
    while spec is not None:
        chain.append(spec)
        spec = spec.base
    lookup: dict[str, int] = {}
    for s in reversed(chain):
        s.preload_strings()
        for off, text in sorted(s._str_cache.items()):
            lookup.setdefault(text, off)
    return lookup


class Builder:
    """Accumulates types and encodes them as raw BTF.

    Ids are handed out in order starting after ``base`` (split BTF) or at 1.
    """

    def __init__(self, base: Spec | None = None):
        self.base = base
        self.types: list[Type] = []
        self.first_id = base.type_count if base is not None else 1
        self.strings = (
            StringTable(base.strings_size, _base_strings(base)) if base is not None
            else StringTable()
        )

    @classmethod
    def from_spec(cls, spec: Spec) -> Builder:
        """A builder holding every own type of ``spec`` (same ids), ready to extend."""
        b = cls(spec.base)
        b.strings = StringTable.from_section(spec._strings, b.strings._base_size, b.strings._base)
        spec.preload_strings()
        b.types = [spec.type(tid) for tid in spec.ids()]
        return b

    @property
    def next_id(self) -> int:
        return self.first_id + len(self.types)

    def add(self, t: Type) -> int:
        """Append a type; returns its id."""
        if isinstance(t, Void):
            raise BTFError("void (id 0) is implicit and cannot be added")
        self.types.append(t)
        return self.next_id - 1

    def __getitem__(self, type_id: int) -> Type:
        if type_id == 0:
            return Void()
        if type_id < self.first_id:
            if self.base is None:
                raise BTFError(f"type id {type_id} out of range")
            return self.base.type(type_id)
        if type_id >= self.next_id:  # a reference past the end, from a corrupt input
            raise BTFError(f"type id {type_id} out of range (the last type is "
                           f"[{self.next_id - 1}])")
        return self.types[type_id - self.first_id]

    def encode(self, endian: str = "<") -> bytes:
        """Raw BTF: header, type section, string section."""
        if endian not in "<>" or len(endian) != 1:
            raise ValueError(f"endian must be '<' or '>', not {endian!r}")
        words: list[int] = []
        add = self.strings.add
        for tid, t in enumerate(self.types, self.first_id):
            try:
                _encode_type(t, add, words)
            except (struct.error, OverflowError, ValueError) as e:
                raise BTFError(f"type [{tid}] {t.kind.name} {t.name!r}: cannot encode: {e}") \
                    from None
        if any(not 0 <= w <= 0xFFFFFFFF for w in words):
            bad = next(w for w in words if not 0 <= w <= 0xFFFFFFFF)
            raise BTFError(f"value {bad} does not fit in 32 bits")
        types = struct.pack(f"{endian}{len(words)}I", *words)
        strs = self.strings.encode()
        header = struct.pack(
            endian + "HBBIIIII", BTF_MAGIC, 1, 0, HEADER_LEN, 0, len(types), len(types), len(strs)
        )
        return header + types + strs


def _info(kind: int, vlen: int = 0, kflag: bool = False) -> int:
    if not 0 <= vlen <= 0xFFFF:
        raise ValueError(f"vlen {vlen} out of range")
    return (int(kflag) << 31) | (kind << 24) | vlen


def _encode_type(t: Type, s: object, out: list[int]) -> None:
    add = s  # the string table's add()
    assert callable(add)
    name = add(t.name)
    if isinstance(t, Int):
        if t.bits > 128 or t.bit_offset > 255:
            raise ValueError(f"bits {t.bits} / bit_offset {t.bit_offset} out of range")
        out += (name, _info(Kind.INT), t.size, (t.encoding << 24) | (t.bit_offset << 16) | t.bits)
    elif isinstance(t, Pointer | Typedef | Volatile | Const | Restrict):
        out += (name, _info(t.kind), t.type)
    elif isinstance(t, TypeTag):
        out += (name, _info(Kind.TYPE_TAG, 0, t.attribute), t.type)
    elif isinstance(t, Array):
        out += (name, _info(Kind.ARRAY), 0, t.type, t.index_type, t.nelems)
    elif isinstance(t, Struct | Union):
        out += (name, _info(t.kind, len(t.members), t.bitfield_encoding), t.size)
        for m in t.members:
            if t.bitfield_encoding:
                if m.offset > 0xFFFFFF or m.bitfield_size > 0xFF:
                    raise ValueError(f"member {m.name!r} offset/bitfield size too large")
                off = (m.bitfield_size << 24) | m.offset
            elif m.bitfield_size:
                raise ValueError(f"member {m.name!r} is a bitfield but kind_flag is off")
            else:
                off = m.offset
            out += (add(m.name), m.type, off)
    elif isinstance(t, Enum):
        out += (name, _info(Kind.ENUM, len(t.values), t.signed), t.size)
        for v in t.values:
            if not -(1 << 31) <= v.value <= 0xFFFFFFFF:
                raise ValueError(f"enumerator {v.name!r} value {v.value} exceeds 32 bits")
            out += (add(v.name), v.value & 0xFFFFFFFF)
    elif isinstance(t, Enum64):
        out += (name, _info(Kind.ENUM64, len(t.values), t.signed), t.size)
        for v in t.values:
            if not -(1 << 63) <= v.value <= (1 << 64) - 1:
                raise ValueError(f"enumerator {v.name!r} value {v.value} exceeds 64 bits")
            u = v.value & 0xFFFF_FFFF_FFFF_FFFF
            out += (add(v.name), u & 0xFFFFFFFF, u >> 32)
    elif isinstance(t, Fwd):
        out += (name, _info(Kind.FWD, 0, t.is_union), 0)
    elif isinstance(t, Func):
        out += (name, _info(Kind.FUNC, int(t.linkage)), t.type)
    elif isinstance(t, FuncProto):
        out += (name, _info(Kind.FUNC_PROTO, len(t.params)), t.return_type)
        for p in t.params:
            out += (add(p.name), p.type)
    elif isinstance(t, Var):
        out += (name, _info(Kind.VAR), t.type, int(t.linkage))
    elif isinstance(t, Datasec):
        out += (name, _info(Kind.DATASEC, len(t.vars)), t.size)
        for si in t.vars:
            out += (si.type, si.offset, si.size)
    elif isinstance(t, Float):
        out += (name, _info(Kind.FLOAT), t.size)
    elif isinstance(t, DeclTag):
        out += (name, _info(Kind.DECL_TAG, 0, t.attribute), t.type, t.component_idx & 0xFFFFFFFF)
    else:  # pragma: no cover - Void is rejected by add()
        raise ValueError(f"cannot encode {type(t).__name__}")


def encode(types: Iterable[Type], *, base: Spec | None = None, endian: str = "<") -> bytes:
    """Raw BTF for ``types`` (ids 1.. or after ``base``)."""
    b = Builder(base)
    for t in types:
        b.add(t)
    return b.encode(endian)


def to_bytes(spec: Spec, endian: str | None = None) -> bytes:
    """Re-encode every own type of ``spec`` (decoded, then written anew)."""
    return Builder.from_spec(spec).encode(endian or spec.endian)
