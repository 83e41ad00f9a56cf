"""Several BTF blobs in one, as libbpf's ``btf__add_btf`` (and the "merge-btf" tools built
on it) make it: for tools that take a single BTF file, such as libbpf's
``btf_custom_path``, which then needs kernel and user types side by side.

The first spec's types keep their ids (and its string section stays as it is); each
further spec's types follow with their ids shifted past everything before them. Strings
are stored once. Pure data: no syscalls.

``dedup`` drops a type of a later spec when it is structurally identical to an earlier
type: same kind, name and every non-id field, and the types it refers to identical in
turn (cycles through pointers included; the coarsest such equivalence). It does not do
what ``btf__dedup`` does beyond that: a forward declaration is not resolved to its
struct, and two structs that differ anywhere (a member's name, offset, or a member type
that is itself different) both stay. The first spec's types are never dropped. Two
same-named types with different layouts therefore both stay, which is what makes libbpf
report an ambiguous CO-RE candidate; corebpf's ordered targets
(``load(obj, btf=[user, kernel])``) avoid needing a merged file at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..errors import BTFError
from .spec import Spec
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
    Member,
    Param,
    Pointer,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
    referenced_ids,
)
from .writer import Builder

__all__ = ["merge", "remap_ids"]


def remap_ids(t: Type, f: Callable[[int], int]) -> Type:
    """A copy of ``t`` with every type id it refers to replaced by ``f(id)``."""
    if isinstance(t, Int | Float | Enum | Enum64 | Fwd | Void):
        return t
    if isinstance(t, Pointer):
        return Pointer(f(t.type), t.name)
    if isinstance(t, Const):
        return Const(f(t.type), t.name)
    if isinstance(t, Volatile):
        return Volatile(f(t.type), t.name)
    if isinstance(t, Restrict):
        return Restrict(f(t.type), t.name)
    if isinstance(t, Typedef):
        return Typedef(t.name, f(t.type))
    if isinstance(t, Func):
        return Func(t.name, f(t.type), t.linkage)
    if isinstance(t, Var):
        return Var(t.name, f(t.type), t.linkage)
    if isinstance(t, TypeTag):
        return TypeTag(t.name, f(t.type), t.attribute)
    if isinstance(t, DeclTag):
        return DeclTag(t.name, f(t.type), t.component_idx, t.attribute)
    if isinstance(t, Array):
        return Array(f(t.type), f(t.index_type), t.nelems, t.name)
    if isinstance(t, Struct | Union):
        members = [Member(m.name, f(m.type), m.offset, m.bitfield_size) for m in t.members]
        return type(t)(t.name, t.size, members, t.bitfield_encoding)
    if isinstance(t, FuncProto):
        return FuncProto(f(t.return_type), [Param(p.name, f(p.type)) for p in t.params],
                         t.name)
    if isinstance(t, Datasec):
        return Datasec(t.name, t.size, [VarSecinfo(f(v.type), v.offset, v.size)
                                        for v in t.vars])
    raise BTFError(f"cannot remap {type(t).__name__}")  # pragma: no cover


def _shape(t: Type) -> tuple[object, ...]:
    """Everything about ``t`` but the ids it refers to (hashable)."""
    k = int(t.kind)
    if isinstance(t, Struct | Union):
        return (k, t.name, t.size, t.bitfield_encoding,
                tuple((m.name, m.offset, m.bitfield_size) for m in t.members))
    if isinstance(t, Enum | Enum64):
        return (k, t.name, t.size, t.signed, tuple((v.name, v.value) for v in t.values))
    if isinstance(t, Int):
        return (k, t.name, t.size, t.encoding, t.bit_offset, t.bits)
    if isinstance(t, Array):
        return (k, t.name, t.nelems)
    if isinstance(t, FuncProto):
        return (k, t.name, tuple(p.name for p in t.params))
    if isinstance(t, Func | Var):
        return (k, t.name, int(t.linkage))
    if isinstance(t, Datasec):
        return (k, t.name, t.size, tuple((v.offset, v.size) for v in t.vars))
    if isinstance(t, Float):
        return (k, t.name, t.size)
    if isinstance(t, Fwd):
        return (k, t.name, t.is_union)
    if isinstance(t, DeclTag):
        return (k, t.name, t.component_idx, t.attribute)
    if isinstance(t, TypeTag):
        return (k, t.name, t.attribute)
    return (k, t.name)  # pointer, typedef, const, volatile, restrict


def _all_types(spec: Spec) -> list[Type]:
    """Every type of ``spec`` by id from 1, a split spec's base types included (it is
    merged whole)."""
    return [spec.type(tid) for tid in range(1, spec.type_count)]


def _check(spec: Spec, types: Sequence[Type], first_id: int = 1) -> None:
    """Each reference stays inside its own spec (shifted, it would name another's)."""
    last = spec.type_count - 1
    for tid, t in enumerate(types, first_id):
        for ref in referenced_ids(t):
            if not 0 <= ref <= last:
                raise BTFError(f"type [{tid}] {t.kind.name} {t.name!r} refers to type "
                               f"[{ref}], past its last type [{last}]", source=spec.source)


def _equivalence(types: Sequence[Type]) -> list[int]:
    """A class number per index (index 0 is void): equal numbers are structurally
    identical types. Partition refinement from the shapes: a class splits while its
    members refer to different classes, until no class splits (the coarsest equivalence,
    so identical cycles merge too)."""
    refs = [referenced_ids(t) for t in types]
    intern: dict[object, int] = {}
    cls = [intern.setdefault(_shape(t) if i else ("void",), len(intern))
           for i, t in enumerate(types)]
    count = len(intern)
    while True:
        intern = {}
        new = [intern.setdefault((c, *(cls[r] for r in rs)) if rs else c, len(intern))
               for c, rs in zip(cls, refs, strict=True)]
        if len(intern) == count:
            return cls
        cls, count = new, len(intern)


def _dedup(types: list[Type], keep: int) -> list[Type]:
    """``types`` (index = id, 0 void) without the types past index ``keep`` identical to
    an earlier type; ids renumbered densely and references remapped."""
    cls = _equivalence(types)
    first: dict[int, int] = {}
    for i, c in enumerate(cls):
        first.setdefault(c, i)
    new_id = [0] * len(types)
    out: list[Type] = [types[0]]
    for i in range(1, len(types)):
        rep = first[cls[i]]
        if i <= keep or rep == i:
            new_id[i] = len(out)
            out.append(types[i])
        else:
            new_id[i] = new_id[rep]
    # the first spec's types refer only to its own, which keep their ids
    return [*out[:keep + 1], *(remap_ids(t, new_id.__getitem__) for t in out[keep + 1:])]


def _shifter(shift: int) -> Callable[[int], int]:
    return lambda r: r + shift if r else 0


def _split_mapper(base_map: Callable[[int], int], first_id: int,
                  shift: int) -> Callable[[int], int]:
    """Ids of a split spec: its base's where the base's types went, its own shifted."""
    return lambda r: base_map(r) if r < first_id else r - first_id + 1 + shift


def merge(specs: Sequence[Spec], *, dedup: bool = False) -> bytes:
    """Raw BTF holding the first spec's types at their own ids, then each further
    spec's types with ids shifted past all before them (libbpf's ``btf__add_btf`` in a
    row), strings stored once, in the first spec's byte order.

    A split spec whose base is an earlier spec of ``specs`` (``from-dwarf --base``'s
    output on the kernel's BTF) adds only its own types, its references to the base
    pointing where the base's types are; any other split spec is merged whole (its
    base's types too). ``dedup``: see the module's docstring."""
    if not specs:
        raise BTFError("no BTF to merge")
    first = specs[0]
    if first.base is None:
        b = Builder.from_spec(first)
    else:
        b = Builder()
        b.types = _all_types(first)
    _check(first, b.types)
    types: list[Type] = [Void(), *b.types]
    maps: dict[int, Callable[[int], int]] = {id(first): lambda r: r}
    for spec in specs[1:]:
        shift = len(types) - 1
        base_map = maps.get(id(spec.base)) if spec.base is not None else None
        if base_map is not None:
            own = [spec.type(tid) for tid in spec.ids()]
            _check(spec, own, spec.first_id)
            f = _split_mapper(base_map, spec.first_id, shift)
        else:
            own = _all_types(spec)
            _check(spec, own)
            f = _shifter(shift)
        types += [remap_ids(t, f) for t in own]
        maps[id(spec)] = f
    if dedup:
        types = _dedup(types, keep=first.type_count - 1)
    b.types = types[1:]
    return b.encode(first.endian)
