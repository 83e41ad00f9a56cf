"""The BTF type kinds as plain data.

Types refer to each other by type id, as BTF itself does: a type is only meaningful
together with the :class:`~corebpf.btf.Spec` (or :class:`~corebpf.btf.Builder`) that holds
it. That keeps decoding lazy (no object graph to inflate) and makes a type a value that
can be compared, copied between specs and re-encoded byte for byte.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, TypeAlias


class Kind(enum.IntEnum):
    """BTF_KIND_* numbers as the kernel defines them."""

    UNKN = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


KIND_MAX = Kind.ENUM64


class IntEncoding(enum.IntFlag):
    """BTF_INT_* encoding bits of an INT."""

    NONE = 0
    SIGNED = 1
    CHAR = 2
    BOOL = 4


class FuncLinkage(enum.IntEnum):
    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


class VarLinkage(enum.IntEnum):
    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


@dataclass(slots=True)
class Void:
    """Type id 0: ``void``. Never encoded."""

    name: str = ""
    kind: ClassVar[Kind] = Kind.UNKN


@dataclass(slots=True)
class Int:
    name: str
    size: int
    encoding: int = 0
    bit_offset: int = 0
    bits: int = 0
    kind: ClassVar[Kind] = Kind.INT

    @property
    def signed(self) -> bool:
        return bool(self.encoding & IntEncoding.SIGNED)


@dataclass(slots=True)
class Pointer:
    type: int
    name: str = ""
    kind: ClassVar[Kind] = Kind.PTR


@dataclass(slots=True)
class Array:
    type: int
    index_type: int
    nelems: int
    name: str = ""
    kind: ClassVar[Kind] = Kind.ARRAY


@dataclass(slots=True)
class Member:
    """A struct/union member; ``offset`` is in bits from the start of the composite."""

    name: str
    type: int
    offset: int
    bitfield_size: int = 0


@dataclass(slots=True)
class Struct:
    name: str
    size: int
    members: list[Member] = field(default_factory=list)
    #: kind_flag: member offsets carry a bitfield size in their top 8 bits.
    bitfield_encoding: bool = False
    kind: ClassVar[Kind] = Kind.STRUCT


@dataclass(slots=True)
class Union:
    name: str
    size: int
    members: list[Member] = field(default_factory=list)
    bitfield_encoding: bool = False
    kind: ClassVar[Kind] = Kind.UNION


@dataclass(slots=True)
class EnumValue:
    name: str
    value: int


@dataclass(slots=True)
class Enum:
    """32-bit enum; with ``signed`` (kind_flag) values are read as signed."""

    name: str
    size: int
    values: list[EnumValue] = field(default_factory=list)
    signed: bool = False
    kind: ClassVar[Kind] = Kind.ENUM


@dataclass(slots=True)
class Enum64:
    name: str
    size: int
    values: list[EnumValue] = field(default_factory=list)
    signed: bool = False
    kind: ClassVar[Kind] = Kind.ENUM64


@dataclass(slots=True)
class Fwd:
    """Forward declaration; kind_flag says ``union`` rather than ``struct``."""

    name: str
    is_union: bool = False
    kind: ClassVar[Kind] = Kind.FWD


@dataclass(slots=True)
class Typedef:
    name: str
    type: int
    kind: ClassVar[Kind] = Kind.TYPEDEF


@dataclass(slots=True)
class Volatile:
    type: int
    name: str = ""
    kind: ClassVar[Kind] = Kind.VOLATILE


@dataclass(slots=True)
class Const:
    type: int
    name: str = ""
    kind: ClassVar[Kind] = Kind.CONST


@dataclass(slots=True)
class Restrict:
    type: int
    name: str = ""
    kind: ClassVar[Kind] = Kind.RESTRICT


@dataclass(slots=True)
class Func:
    name: str
    type: int
    linkage: int = FuncLinkage.STATIC
    kind: ClassVar[Kind] = Kind.FUNC


@dataclass(slots=True)
class Param:
    name: str
    type: int


@dataclass(slots=True)
class FuncProto:
    return_type: int
    params: list[Param] = field(default_factory=list)
    name: str = ""
    kind: ClassVar[Kind] = Kind.FUNC_PROTO


@dataclass(slots=True)
class Var:
    name: str
    type: int
    linkage: int = VarLinkage.STATIC
    kind: ClassVar[Kind] = Kind.VAR


@dataclass(slots=True)
class VarSecinfo:
    type: int
    offset: int
    size: int


@dataclass(slots=True)
class Datasec:
    name: str
    size: int
    vars: list[VarSecinfo] = field(default_factory=list)
    kind: ClassVar[Kind] = Kind.DATASEC


@dataclass(slots=True)
class Float:
    name: str
    size: int
    kind: ClassVar[Kind] = Kind.FLOAT


@dataclass(slots=True)
class DeclTag:
    """``component_idx`` is -1 for the type itself, else a member/param index."""

    name: str
    type: int
    component_idx: int = -1
    #: kind_flag: a plain ``__attribute__((name))`` rather than btf_decl_tag.
    attribute: bool = False
    kind: ClassVar[Kind] = Kind.DECL_TAG


@dataclass(slots=True)
class TypeTag:
    name: str
    type: int
    attribute: bool = False
    kind: ClassVar[Kind] = Kind.TYPE_TAG


Type: TypeAlias = (
    Void
    | Int
    | Pointer
    | Array
    | Struct
    | Union
    | Enum
    | Enum64
    | Fwd
    | Typedef
    | Volatile
    | Const
    | Restrict
    | Func
    | FuncProto
    | Var
    | Datasec
    | Float
    | DeclTag
    | TypeTag
)
Composite: TypeAlias = Struct | Union
AnyEnum: TypeAlias = Enum | Enum64
#: Kinds that only qualify another type (skipped when resolving).
MODIFIER_KINDS = frozenset({Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG})
#: Kinds whose size/type word is another type's id.
REFERENCE_KINDS = frozenset(
    {
        Kind.PTR,
        Kind.TYPEDEF,
        Kind.VOLATILE,
        Kind.CONST,
        Kind.RESTRICT,
        Kind.FUNC,
        Kind.VAR,
        Kind.DECL_TAG,
        Kind.TYPE_TAG,
    }
)


def referenced_ids(t: Type) -> list[int]:
    """Every type id ``t`` points at, in encoding order (used by dedup, printers, btfgen)."""
    if isinstance(t, Struct | Union):
        return [m.type for m in t.members]
    if isinstance(t, Array):
        return [t.type, t.index_type]
    if isinstance(t, FuncProto):
        return [t.return_type, *(p.type for p in t.params)]
    if isinstance(t, Datasec):
        return [v.type for v in t.vars]
    ref = getattr(t, "type", None)
    return [ref] if isinstance(ref, int) else []
