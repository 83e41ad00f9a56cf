"""CO-RE relocation arithmetic, decision for decision as libbpf 1.1's relo_core.c makes it.

Each function names the libbpf function it mirrors. Error conditions that libbpf signals
with -EINVAL/-E2BIG raise :class:`CoreError` with libbpf's wording; "poison the
instruction" is a result, not an error.
"""

from __future__ import annotations

import struct
from functools import lru_cache

from .._record import field, record
from ..btf import Spec
from ..btf import types as bt
from ..errors import BTFError, RelocationError
from ..obj.btf_ext import CoreRelo, RelocKind

SPEC_MAX_LEN = 64  # BPF_CORE_SPEC_MAX_LEN
MAX_DEPTH = 32

K = bt.Kind


class CoreError(RelocationError):
    """A relocation that libbpf refuses outright (the whole load fails)."""


def essential_name_len(name: str) -> int:
    """bpf_core_essential_name_len: the name up to its last "X___Y" flavor separator."""
    n = len(name)
    for i in range(n - 5, -1, -1):
        if (name[i] != "_" and name[i + 1:i + 4] == "___" and name[i + 4] != "_"):
            return i + 1
    return n


def essential_name(name: str) -> str:
    return name[:essential_name_len(name)]


def kinds_core_compat(k1: int, k2: int) -> bool:
    """btf_kind_core_compat: same kind, or both enums (ENUM/ENUM64)."""
    return k1 == k2 or (k1 in (K.ENUM, K.ENUM64) and k2 in (K.ENUM, K.ENUM64))


def skip_mods_and_typedefs(btf: Spec, tid: int) -> tuple[int, bt.Type]:
    for _ in range(MAX_DEPTH + 1):
        t = btf.type(tid)
        if isinstance(t, bt.Typedef | bt.Const | bt.Volatile | bt.Restrict | bt.TypeTag):
            tid = t.type
            continue
        return tid, t
    raise CoreError(f"type [{tid}]: typedef/modifier chain too long")


def _skip_kind(btf: Spec, tid: int) -> tuple[int, int]:
    """skip_mods_and_typedefs without decoding anything: (id, kind)."""
    got = btf.resolve_kind(tid, MAX_DEPTH + 1)
    if got is None:
        raise CoreError(f"type [{tid}]: typedef/modifier chain too long")
    return got


_COMPOSITE_KINDS = frozenset({K.STRUCT, K.UNION})
#: kinds types_are_compat accepts on kind alone
_SHALLOW_COMPAT_KINDS = frozenset({K.UNKN, K.STRUCT, K.UNION, K.ENUM, K.FWD, K.ENUM64})


def _raw_word_after_header(btf: Spec, tid: int) -> int:
    """The u32 after a type's 12-byte header, whatever the kind (libbpf reads it blindly
    as BTF_INT_ENCODING for FIELD_SIGNED of non-int fields)."""
    owner = btf
    while tid < owner.first_id and owner.base is not None:
        owner = owner.base
    off = owner.record_offset(tid) + 12
    raw = owner.raw
    if off + 4 > len(raw):
        return 0
    return int(struct.unpack_from(owner.endian + "I", raw, off)[0])


@record
class Accessor:
    type_id: int
    idx: int
    name: str | None = None


@record
class CoreSpec:
    """bpf_core_spec: the high-level accessors, the raw access string, the bit offset."""

    btf: Spec
    root_type_id: int
    kind: RelocKind
    spec: list[Accessor] = field(default_factory=list)
    raw_spec: list[int] = field(default_factory=list)
    bit_offset: int = 0

    def format(self) -> str:
        """bpf_core_format_spec: "<byte_off> [7] struct task_struct.pid (0:1 @ offset 8)"."""
        btf = self.btf
        t = btf.type(self.root_type_id)
        name = t.name or "<anon>"
        out = f"<{self.kind.libbpf_name}> [{self.root_type_id}] {_kind_str(t.kind)} {name}"
        if self.kind.is_type:
            return out
        if self.kind.is_enumval:
            _, et = skip_mods_and_typedefs(btf, self.root_type_id)
            if isinstance(et, bt.Enum | bt.Enum64) and self.raw_spec:
                e = et.values[self.raw_spec[0]]
                val = e.value
                if not et.signed:
                    val &= (1 << (32 if isinstance(et, bt.Enum) else 64)) - 1
                out += f"::{e.name} = {val}"
            return out
        for i, acc in enumerate(self.spec):
            if acc.name:
                out += f".{acc.name}"
            elif i > 0 or acc.idx > 0:
                out += f"[{acc.idx}]"
        raw = ":".join(str(x) for x in self.raw_spec)
        if self.bit_offset % 8:
            return out + f" ({raw} @ offset {self.bit_offset // 8}.{self.bit_offset % 8})"
        return out + f" ({raw} @ offset {self.bit_offset // 8})"


_KIND_STR = {K.UNKN: "UNKNOWN", K.INT: "int", K.PTR: "ptr", K.ARRAY: "array", K.STRUCT: "struct",
             K.UNION: "union", K.ENUM: "enum", K.FWD: "fwd", K.TYPEDEF: "typedef",
             K.VOLATILE: "volatile", K.CONST: "const", K.RESTRICT: "restrict", K.FUNC: "func",
             K.FUNC_PROTO: "func_proto", K.VAR: "var", K.DATASEC: "datasec", K.FLOAT: "float",
             K.DECL_TAG: "decl_tag", K.TYPE_TAG: "type_tag", K.ENUM64: "enum64"}


def _kind_str(kind: int) -> str:
    return _KIND_STR.get(K(kind), "unknown")


def _resolve_size(btf: Spec, tid: int) -> int:
    try:
        return btf.size_of(tid)
    except Exception as e:
        raise CoreError(f"cannot size type [{tid}]: {e}") from None


def _is_flex_arr(btf: Spec, acc: Accessor | None, arr: bt.Array) -> bool:
    """is_flex_arr: a zero-length array that is the last member of its struct."""
    if acc is None or not acc.name or arr.nelems > 0:
        return False
    return btf.kind(acc.type_id) in _COMPOSITE_KINDS and acc.idx == btf.vlen(acc.type_id) - 1


def parse_access_string(s: str) -> list[int]:
    """The access string "0:1:2" as libbpf's sscanf("%d%n") loop reads it."""
    if not s or s[0] == ":":
        raise CoreError(f"bad access string {s!r}")
    out: list[int] = []
    pos = 0
    while pos < len(s):
        if s[pos] == ":":
            pos += 1
        j = pos
        while j < len(s) and s[j] in " \t\n":
            j += 1
        k = j
        if k < len(s) and s[k] in "+-":
            k += 1
        m = k
        while m < len(s) and s[m].isdigit():
            m += 1
        if m == k:
            raise CoreError(f"bad access string {s!r}")
        val = int(s[j:m])
        if not -(1 << 31) <= val < (1 << 31):
            raise CoreError(f"bad access string {s!r}")
        if len(out) == SPEC_MAX_LEN:
            raise CoreError(f"access string {s!r} too long", )
        out.append(val)
        pos = m
    if not out:
        raise CoreError(f"bad access string {s!r}")
    return out


def parse_spec(btf: Spec, relo: CoreRelo) -> CoreSpec:
    """bpf_core_parse_spec."""
    kind = RelocKind(relo.kind)
    spec_str = btf.string(relo.access_str_off)
    if not spec_str or spec_str[0] == ":":
        raise CoreError(f"bad access string {spec_str!r}")
    spec = CoreSpec(btf, relo.type_id, kind)
    if kind.is_type:
        if spec_str != "0":
            raise CoreError(f"type-based relocation with access string {spec_str!r}")
        return spec
    spec.raw_spec = parse_access_string(spec_str)
    tid, t = skip_mods_and_typedefs(btf, relo.type_id)
    access_idx = spec.raw_spec[0]
    acc = Accessor(tid, access_idx)
    spec.spec.append(acc)
    if kind.is_enumval:
        if (not isinstance(t, bt.Enum | bt.Enum64) or len(spec.raw_spec) > 1
                or not 0 <= access_idx < len(t.values)):
            raise CoreError(f"enum value access {spec_str!r} on [{tid}] {t.kind.name}")
        acc.name = t.values[access_idx].name
        return spec
    if not kind.is_field:
        raise CoreError(f"unknown relocation kind {relo.kind}")
    sz = _resolve_size(btf, tid)
    spec.bit_offset = access_idx * sz * 8
    for i in range(1, len(spec.raw_spec)):
        tid, t = skip_mods_and_typedefs(btf, tid)
        access_idx = spec.raw_spec[i]
        if isinstance(t, bt.Struct | bt.Union):
            if not 0 <= access_idx < len(t.members):
                raise CoreError(f"access index {access_idx} past the {len(t.members)} members "
                                f"of [{tid}] {t.name or '<anon>'}")
            m = t.members[access_idx]
            spec.bit_offset += m.offset
            if m.name:
                spec.spec.append(Accessor(tid, access_idx, m.name))
            tid = m.type
        elif isinstance(t, bt.Array):
            prev = spec.spec[-1] if spec.spec else None
            tid, _ = skip_mods_and_typedefs(btf, t.type)
            flex = _is_flex_arr(btf, prev, t)
            if access_idx < 0 or (not flex and access_idx >= t.nelems):
                raise CoreError(f"array index {access_idx} out of bounds ({t.nelems})")
            spec.spec.append(Accessor(tid, access_idx))
            spec.bit_offset += access_idx * _resolve_size(btf, tid) * 8
        else:
            raise CoreError(f"relo for [{relo.type_id}] {spec_str} (at idx {i}) captures type "
                            f"[{tid}] of unexpected kind {_kind_str(t.kind)}")
    return spec


# -- compatibility ----------------------------------------------------------------------

def _names_match_essential(a: str, b: str) -> bool:
    la, lb = essential_name_len(a), essential_name_len(b)
    return la == 0 or lb == 0 or (la == lb and a[:la] == b[:lb])


def fields_are_compat(lbtf: Spec, lid: int, tbtf: Spec, tid: int) -> bool:
    """bpf_core_fields_are_compat (kinds read raw: an embedded struct is not decoded)."""
    for _ in range(10_000):
        lid, lk = _skip_kind(lbtf, lid)
        tid, tk = _skip_kind(tbtf, tid)
        if lk in _COMPOSITE_KINDS and tk in _COMPOSITE_KINDS:
            return True
        if not kinds_core_compat(lk, tk):
            return False
        if lk in (K.PTR, K.FLOAT):
            return True
        if lk in (K.FWD, K.ENUM, K.ENUM64):
            return _names_match_essential(lbtf.name(lid), tbtf.name(tid))
        if lk == K.INT:
            lt, tt = lbtf.type(lid), tbtf.type(tid)
            assert isinstance(lt, bt.Int) and isinstance(tt, bt.Int)
            return lt.bit_offset == 0 and tt.bit_offset == 0
        if lk == K.ARRAY:
            la, ta = lbtf.type(lid), tbtf.type(tid)
            assert isinstance(la, bt.Array) and isinstance(ta, bt.Array)
            lid, tid = la.type, ta.type
            continue
        return False
    raise CoreError("array nesting too deep")


def types_are_compat(lbtf: Spec, lid: int, tbtf: Spec, tid: int, level: int = 32) -> bool:
    """__bpf_core_types_are_compat (level-limited recursion into func protos)."""
    if not kinds_core_compat(lbtf.kind(lid), tbtf.kind(tid)):
        return False
    depth = 32
    while True:
        depth -= 1
        if depth < 0:
            raise CoreError(f"type [{lid}]: compatibility check too deep")
        lid, lk = _skip_kind(lbtf, lid)
        tid, tk = _skip_kind(tbtf, tid)
        if not kinds_core_compat(lk, tk):
            return False
        if lk in _SHALLOW_COMPAT_KINDS:
            return True
        lt, tt = lbtf.type(lid), tbtf.type(tid)
        if isinstance(lt, bt.Int):
            assert isinstance(tt, bt.Int)
            return lt.bit_offset == 0 and tt.bit_offset == 0
        if isinstance(lt, bt.Pointer):
            assert isinstance(tt, bt.Pointer)
            lid, tid = lt.type, tt.type
            continue
        if isinstance(lt, bt.Array):
            assert isinstance(tt, bt.Array)
            lid, tid = lt.type, tt.type
            continue
        if isinstance(lt, bt.FuncProto):
            assert isinstance(tt, bt.FuncProto)
            if len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if level <= 0:
                    raise CoreError("func proto nesting too deep")
                a, _ = _skip_kind(lbtf, lp.type)
                b, _ = _skip_kind(tbtf, tp.type)
                if not types_are_compat(lbtf, a, tbtf, b, level - 1):
                    return False
            lid, _ = _skip_kind(lbtf, lt.return_type)
            tid, _ = _skip_kind(tbtf, tt.return_type)
            continue
        return False


def _names_match(lname: str, tname: str) -> bool:
    """bpf_core_names_match: an anonymous target matches only an anonymous local."""
    if not tname:
        return not lname
    lt, ll = essential_name_len(tname), essential_name_len(lname)
    return lt == ll and lname[:ll] == tname[:lt]


def types_match(lbtf: Spec, lid: int, tbtf: Spec, tid: int, behind_ptr: bool = False,
                level: int = 32) -> bool:
    """__bpf_core_types_match (the TYPE_MATCHES relation)."""
    if level <= 0:
        raise CoreError("type match recursion too deep")
    depth = 32
    while True:
        depth -= 1
        if depth < 0:
            raise CoreError("type match chain too deep")
        lid, lk = _skip_kind(lbtf, lid)
        tid, tk = _skip_kind(tbtf, tid)
        if not _names_match(lbtf.name(lid), tbtf.name(tid)):
            return False
        if lk == K.UNKN:
            return lk == tk
        if lk in _COMPOSITE_KINDS:  # before decoding: the target may be a huge struct
            if behind_ptr:
                if lk == tk:
                    return True
                if tk != K.FWD:
                    return False
                fwd = tbtf.type(tid)
                assert isinstance(fwd, bt.Fwd)
                return (lk == K.UNION) == fwd.is_union
            if lk != tk:
                return False
            return _composites_match(lbtf, lid, tbtf, tid, behind_ptr, level)
        lt, tt = lbtf.type(lid), tbtf.type(tid)
        if isinstance(lt, bt.Fwd):
            if behind_ptr:
                if lk == tk:
                    assert isinstance(tt, bt.Fwd)
                    return lt.is_union == tt.is_union
                return (tk == K.STRUCT and not lt.is_union) or (tk == K.UNION and lt.is_union)
            if lk != tk:
                return False
            assert isinstance(tt, bt.Fwd)
            return lt.is_union == tt.is_union
        if isinstance(lt, bt.Enum | bt.Enum64):
            if not isinstance(tt, bt.Enum | bt.Enum64):
                return False
            return _enums_match(lt, tt)
        if isinstance(lt, bt.Int):
            if not isinstance(tt, bt.Int):
                return False
            return lt.size == tt.size and (lt.encoding & 1) == (tt.encoding & 1)
        if isinstance(lt, bt.Pointer):
            if not isinstance(tt, bt.Pointer):
                return False
            behind_ptr = True
            lid, tid = lt.type, tt.type
            continue
        if isinstance(lt, bt.Array):
            if not isinstance(tt, bt.Array) or lt.nelems != tt.nelems:
                return False
            lid, tid = lt.type, tt.type
            continue
        if isinstance(lt, bt.FuncProto):
            if not isinstance(tt, bt.FuncProto) or len(lt.params) != len(tt.params):
                return False
            for lp, tp in zip(lt.params, tt.params, strict=True):
                if not types_match(lbtf, lp.type, tbtf, tp.type, behind_ptr, level - 1):
                    return False
            lid, tid = lt.return_type, tt.return_type
            continue
        return False


def _enums_match(lt: bt.Enum | bt.Enum64, tt: bt.Enum | bt.Enum64) -> bool:
    if lt.size != tt.size or len(lt.values) > len(tt.values):
        return False
    return all(any(_names_match(lv.name, tv.name) for tv in tt.values) for lv in lt.values)


def _composites_match(lbtf: Spec, lid: int, tbtf: Spec, tid: int, behind_ptr: bool,
                      level: int) -> bool:
    lt = lbtf.type(lid)
    assert isinstance(lt, bt.Struct | bt.Union)
    tnames = tbtf.member_names(tid)
    if len(lt.members) > len(tnames):
        return False
    by_essential = _by_essential_name(tnames)
    for lm in lt.members:
        # the target members whose names match (bpf_core_names_match), in order
        for j in by_essential.get(essential_name(lm.name), ()):
            if types_match(lbtf, lm.type, tbtf, tbtf.member_at(tid, j)[0], behind_ptr,
                           level - 1):
                break
        else:
            return False
    return True


@lru_cache(maxsize=1024)
def _by_essential_name(names: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    """Member indexes by essential name ("" for anonymous members): the members
    bpf_core_names_match pairs with a local name, shared by every copy of a struct."""
    out: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        out.setdefault(essential_name(name), []).append(j)
    return {k: tuple(v) for k, v in out.items()}


# -- matching a local spec against one candidate ----------------------------------------

def _match_member(lbtf: Spec, lacc: Accessor, tbtf: Spec, tid: int,
                  spec: CoreSpec) -> tuple[bool, int]:
    """bpf_core_match_member: (found, next target type id); raises on errors.

    libbpf walks the members in order, descending into each anonymous one, until the
    first member of the wanted name; here that member comes from an index (shared by
    every struct with the same member names) and only the anonymous members before it
    are searched, in the same order. Target members are read one at a time."""
    tid, kind = _skip_kind(tbtf, tid)
    if kind not in _COMPOSITE_KINDS:
        return False, tid
    lmember = lbtf.member(lacc.type_id, lacc.idx)
    count = tbtf.vlen(tid)
    if count and len(spec.raw_spec) == SPEC_MAX_LEN:
        raise CoreError("struct/union/array nesting too deep")
    by_name, anon = tbtf.member_index(tid)
    named = by_name.get(lmember.name, count) if lmember.name else count
    for i in anon:
        if i > named:
            break
        mtype, moff, _ = tbtf.member_at(tid, i)
        spec.bit_offset += moff
        spec.raw_spec.append(i)
        found, nxt = _match_member(lbtf, lacc, tbtf, mtype, spec)
        if found:
            return True, nxt
        spec.bit_offset -= moff
        spec.raw_spec.pop()
    if named == count:
        return False, tid
    mtype, moff, _ = tbtf.member_at(tid, named)
    spec.bit_offset += moff
    spec.raw_spec.append(named)
    spec.spec.append(Accessor(tid, named, lmember.name))  # found by this very name
    if fields_are_compat(lbtf, lmember.type, tbtf, mtype):
        return True, mtype
    spec.spec.pop()
    return False, mtype


def spec_match(local: CoreSpec, tbtf: Spec, tid: int) -> CoreSpec | None:
    """bpf_core_spec_match: the target spec, or None when this candidate does not match."""
    targ = CoreSpec(tbtf, tid, local.kind)
    kind = local.kind
    if kind.is_type:
        if kind == RelocKind.TYPE_MATCHES:
            ok = types_match(local.btf, local.root_type_id, tbtf, tid)
        else:
            ok = types_are_compat(local.btf, local.root_type_id, tbtf, tid)
        return targ if ok else None
    if kind.is_enumval:
        lname = local.spec[0].name or ""
        tid, tt = skip_mods_and_typedefs(tbtf, tid)
        if not isinstance(tt, bt.Enum | bt.Enum64):
            return None
        ll = essential_name_len(lname)
        for i, v in enumerate(tt.values):
            if essential_name_len(v.name) != ll:
                continue
            if v.name[:ll] == lname[:ll]:
                targ.spec.append(Accessor(tid, i, v.name))
                targ.raw_spec.append(i)
                return targ
        return None
    if not kind.is_field:
        raise CoreError(f"unknown relocation kind {int(kind)}")
    for i, lacc in enumerate(local.spec):
        tid, tkind = _skip_kind(tbtf, tid)
        if lacc.name:
            found, tid = _match_member(local.btf, lacc, tbtf, tid, targ)
            if not found:
                return None
        else:
            if i > 0:
                if tkind != K.ARRAY:
                    return None
                tt = tbtf.type(tid)
                assert isinstance(tt, bt.Array)
                prev = targ.spec[-1] if targ.spec else None
                flex = _is_flex_arr(tbtf, prev, tt)
                if not flex and lacc.idx >= tt.nelems:
                    return None
                tid, _ = _skip_kind(tbtf, tt.type)
            if len(targ.raw_spec) == SPEC_MAX_LEN:
                raise CoreError("struct/union/array nesting too deep")
            targ.spec.append(Accessor(tid, lacc.idx))
            targ.raw_spec.append(lacc.idx)
            targ.bit_offset += lacc.idx * _resolve_size(tbtf, tid) * 8
    return targ


# -- values ---------------------------------------------------------------------------

@record
class RelocResult:
    """bpf_core_relo_res."""

    orig_val: int = 0
    new_val: int = 0
    poison: bool = False
    validate: bool = True
    fail_memsz_adjust: bool = False
    orig_sz: int = 0
    new_sz: int = 0
    orig_type_id: int = 0
    new_type_id: int = 0


class _Poison(Exception):
    """-EUCLEAN: libbpf's request to poison the instruction."""


U64 = (1 << 64) - 1


def _field_value(kind: RelocKind, spec: CoreSpec | None, big_endian: bool,
                 insn: int) -> tuple[int, int, int, bool]:
    """bpf_core_calc_field_relo: (value, field size, field type id, validate)."""
    if kind == RelocKind.FIELD_EXISTS:
        return (1 if spec else 0), 0, 0, True
    if spec is None:
        raise _Poison
    btf = spec.btf
    acc = spec.spec[-1]
    if acc.name is None:
        if kind == RelocKind.FIELD_BYTE_OFFSET:
            return spec.bit_offset // 8, _resolve_size(btf, acc.type_id), acc.type_id, True
        if kind == RelocKind.FIELD_BYTE_SIZE:
            return _resolve_size(btf, acc.type_id), 0, 0, True
        raise CoreError(f"relo {int(kind)} at insn #{insn} can't be applied to array access")
    mtype, _, bit_sz = btf.member_at(acc.type_id, acc.idx)
    ftid, fkind = _skip_kind(btf, mtype)
    bit_off = spec.bit_offset
    bitfield = bit_sz > 0
    field_sz = 0
    field_type = 0
    if bitfield:
        byte_sz = getattr(btf.type(ftid), "size", 0)
        if byte_sz <= 0:
            raise CoreError(f"bitfield {acc.name!r} of a type without size")
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise CoreError(f"relo {int(kind)} at insn #{insn} can't be satisfied for "
                                "bitfield")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = _resolve_size(btf, ftid)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    validate = not bitfield
    if kind == RelocKind.FIELD_BYTE_OFFSET:
        val = byte_off
        if not bitfield:
            field_sz, field_type = byte_sz, ftid
    elif kind == RelocKind.FIELD_BYTE_SIZE:
        val = byte_sz
    elif kind == RelocKind.FIELD_SIGNED:
        mt = btf.type(ftid) if fkind not in _COMPOSITE_KINDS else None
        if isinstance(mt, bt.Enum | bt.Enum64):
            val = int(mt.signed)
        elif isinstance(mt, bt.Int):
            val = int(bool(mt.encoding & 1))
        else:  # libbpf reads the word after the header as if it were an INT's
            val = int(bool((_raw_word_after_header(btf, ftid) >> 24) & 1))
        validate = True
    elif kind == RelocKind.FIELD_LSHIFT_U64:
        if big_endian:
            val = (8 - byte_sz) * 8 + (bit_off - byte_off * 8)
        else:
            val = 64 - (bit_off + bit_sz - byte_off * 8)
    elif kind == RelocKind.FIELD_RSHIFT_U64:
        val = 64 - bit_sz
        validate = True
    else:
        raise CoreError(f"unrecognized CO-RE relocation {int(kind)}")
    return val & U64, field_sz, field_type, validate


def _type_value(kind: RelocKind, spec: CoreSpec | None) -> tuple[int, bool]:
    """bpf_core_calc_type_relo: (value, validate)."""
    if spec is None:
        return 0, True
    if kind == RelocKind.TYPE_ID_TARGET:
        return spec.root_type_id, False
    if kind in (RelocKind.TYPE_EXISTS, RelocKind.TYPE_MATCHES):
        return 1, True
    if kind == RelocKind.TYPE_SIZE:
        return _resolve_size(spec.btf, spec.root_type_id), True
    raise CoreError(f"unrecognized CO-RE relocation {int(kind)}")


def _enum_value(kind: RelocKind, spec: CoreSpec | None) -> int:
    """bpf_core_calc_enumval_relo."""
    if kind == RelocKind.ENUMVAL_EXISTS:
        return 1 if spec else 0
    if spec is None:
        raise _Poison
    t = spec.btf.type(spec.spec[0].type_id)
    assert isinstance(t, bt.Enum | bt.Enum64)
    v = t.values[spec.spec[0].idx].value
    if isinstance(t, bt.Enum) and not t.signed:
        # btf_enum.val is an __s32: assigning it to a __u64 sign-extends
        v = v - (1 << 32) if v & 0x8000_0000 else v
    return v & U64


#: One side's answer: (value, field size, field type id, validate)
LocalSide = tuple[int, int, int, bool]


def _side(kind: RelocKind, spec: CoreSpec | None, big_endian: bool, insn: int) -> LocalSide:
    if kind.is_field:
        return _field_value(kind, spec, big_endian, insn)
    if kind.is_type:
        val, validate = _type_value(kind, spec)
        return val, 0, 0, validate
    if kind.is_enumval:
        return _enum_value(kind, spec), 0, 0, True
    raise CoreError(f"unrecognized CO-RE relocation {int(kind)}")


def calc_local(kind: RelocKind, local: CoreSpec, insn: int, big_endian: bool
               ) -> LocalSide | None:
    """The local half of :func:`calc_relo`, the same for every candidate: computed once
    and passed back as ``local_side`` (None when it fails: let each call fail alike)."""
    try:
        return _side(kind, local, big_endian, insn)
    except (_Poison, CoreError, BTFError):
        return None


def calc_relo(kind: RelocKind, local: CoreSpec, targ: CoreSpec | None, insn: int,
              big_endian: bool, local_side: LocalSide | None = None) -> RelocResult:
    """bpf_core_calc_relo."""
    res = RelocResult()
    try:
        lo = local_side if local_side is not None else _side(kind, local, big_endian, insn)
        res.orig_val = lo[0]
        if kind.is_field:
            res.orig_sz, res.orig_type_id, res.validate = lo[1], lo[2], lo[3]
            res.new_val, res.new_sz, res.new_type_id, _ = _field_value(
                kind, targ, big_endian, insn)
            if res.orig_sz != res.new_sz:
                assert targ is not None
                ot = local.btf.type(res.orig_type_id)
                nt = targ.btf.type(res.new_type_id)
                safe = (isinstance(ot, bt.Pointer) and isinstance(nt, bt.Pointer)) or (
                    isinstance(ot, bt.Int) and isinstance(nt, bt.Int)
                    and ot.encoding != bt.IntEncoding.SIGNED
                    and nt.encoding != bt.IntEncoding.SIGNED)
                res.fail_memsz_adjust = not safe
        elif kind.is_type:
            res.validate = lo[3]
            res.new_val = _type_value(kind, targ)[0]
        else:  # enum values: _side refused any other kind
            res.new_val = _enum_value(kind, targ)
    except _Poison:
        res.poison = True
    return res
