"""An object's BTF rewritten for a kernel that lacks some BTF kinds, as libbpf rewrites it
before BPF_BTF_LOAD (bpf_object__sanitize_btf).

clang emits every kind the language needs (DATASEC for global data, FUNC for BTF-described
programs, FLOAT, DECL_TAG, TYPE_TAG, ENUM64); an older kernel rejects the whole blob over
one unknown kind. Each unsupported kind becomes an older one of the same size and shape,
so type ids, sizes and member offsets stay where programs and maps expect them.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._record import record
from . import types as bt

TYPE_CHECKING = False

if TYPE_CHECKING:
    from .types import Type


@record
class BTFFeatures:
    """Which BTF kinds and flags the kernel accepts (libbpf's FEAT_BTF_* probes)."""

    func: bool = True
    global_func: bool = True
    datasec: bool = True
    float: bool = True
    decl_tag: bool = True
    type_tag: bool = True
    enum64: bool = True

    @property
    def complete(self) -> bool:
        """Nothing to rewrite."""
        return all(getattr(self, name) for name in self.__match_args__)


ENUM64_PLACEHOLDER = "enum64_placeholder"


def _rewrite(t: Type, f: BTFFeatures, placeholder: int, var_names: dict[int, str]) -> Type:
    if (isinstance(t, bt.Var) and not f.datasec) or (
            isinstance(t, bt.DeclTag) and not f.decl_tag):
        # one byte: wider would fail validation where the variable was narrower
        return bt.Int(t.name, 1, 0, 0, 8)
    if isinstance(t, bt.Datasec) and not f.datasec:
        # the variables' names become the members' (their types are now 1-byte INTs)
        return bt.Struct(t.name.replace(".", "_"), t.size,
                         [bt.Member(var_names.get(v.type, ""), v.type, v.offset * 8)
                          for v in t.vars])
    if isinstance(t, bt.FuncProto) and not f.func:
        # parameters read as enum values: (name, type id)
        return bt.Enum("", 4, [bt.EnumValue(p.name, p.type) for p in t.params])
    if isinstance(t, bt.Func):
        if not f.func:
            return bt.Typedef(t.name, t.type)
        if not f.global_func and t.linkage == bt.FuncLinkage.GLOBAL:
            return bt.Func(t.name, t.type, bt.FuncLinkage.STATIC)
        return t
    if isinstance(t, bt.Float) and not f.float:
        return bt.Struct("", t.size)  # C accepts no struct called "float": anonymous
    if isinstance(t, bt.TypeTag) and not f.type_tag:
        return bt.Const(t.type)
    if isinstance(t, bt.Enum) and not f.enum64 and t.signed:
        return bt.Enum(t.name, t.size, t.values, False)  # kind_flag came with ENUM64
    if isinstance(t, bt.Enum64) and not f.enum64:
        return bt.Union(t.name, t.size, [bt.Member(v.name, placeholder, 0) for v in t.values])
    return t


def sanitize(types: Sequence[Type], features: BTFFeatures, *, first_id: int = 1
             ) -> list[Type]:
    """``types`` (ids ``first_id``...) with every kind ``features`` lacks replaced, in
    place of the original (ids unchanged); a 1-byte INT for ENUM64 members is appended
    when needed."""
    out = list(types)
    if features.complete:
        return out
    placeholder = 0
    if not features.enum64 and any(isinstance(t, bt.Enum64) for t in out):
        placeholder = first_id + len(out)
    var_names = {first_id + i: t.name for i, t in enumerate(out) if isinstance(t, bt.Var)}
    out = [_rewrite(t, features, placeholder, var_names) for t in out]
    if placeholder:
        out.append(bt.Int(ENUM64_PLACEHOLDER, 1, 0, 0, 8))
    return out


__all__ = ["ENUM64_PLACEHOLDER", "BTFFeatures", "sanitize"]
