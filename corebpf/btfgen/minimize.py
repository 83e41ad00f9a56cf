"""Minimized BTF: the part of a kernel's BTF that a set of BPF objects' CO-RE relocations
look at, as bpftool's ``gen min_core_btf`` cuts it (BTFGen), so it can ship with the
program for kernels without built-in BTF.

What is kept, per relocation kind (bpftool's rules, src/gen.c btfgen_*):

- field relocations: every type on the target access path, composites with only the
  members accessed (sizes kept), member types marked without following pointers (a
  pointer to a type nothing else needs becomes ``void *``);
- type relocations (type_exists/type_size/type_id_target): the type, following pointers,
  composites without members;
- type_matches: the type with every member, recursively, stopping at composites behind a
  pointer (kept without members);
- enum value relocations: the whole enum.

Where this goes beyond bpftool:

- every candidate that matches a relocation is kept, not only the first, so the candidate
  list libbpf builds (and compacts) against the minimized BTF evolves as against the full
  BTF: several flavors matching, or an ambiguity error, decide the same. A candidate that
  matches exactly the relocations an earlier one matches, with the same offsets and
  values, is left out (unless needed for another reason): libbpf would keep or drop both
  together and never tell them apart (old kernels' BTF repeats task_struct & co.);
- TYPE_TAG, FWD, FUNC, VAR, DECL_TAG... anywhere on a path are kept, never an error
  (bpftool stops on them: 6.x kernels tag pointers __rcu/__user, which type_matches walks);
- split BTF: a target of vmlinux plus module BTFs gives one standalone BTF holding what is
  needed of each (libbpf's btf_custom_path takes one file);
- a candidate that did not match but is in the output for another reason (e.g. as a
  member's type) is kept whole enough that it still does not match there: dropping a
  pointee turns ``struct x *`` into ``void *``, which a local ``void *`` would match.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .._record import field, record
from ..btf import Spec
from ..btf import types as bt
from ..btf.writer import Builder
from ..core import Candidate, CoreError, CoreSpec, Target, parse_spec, spec_match
from ..core.engine import objects_root_names
from ..core.relo import calc_local, calc_relo, essential_name, skip_mods_and_typedefs
from ..errors import BTFError
from ..obj.btf_ext import RelocKind
from ..obj.object import ObjectSpec

_COMPOSITE = bt.Struct | bt.Union
#: What a matching candidate decides for one relocation, as libbpf's ambiguity check
#: compares it (bit offset, poison, value), or the error it raises; None: no match
_Verdict = tuple[int, bool, int] | tuple[str, str] | None
_CandKey = tuple[bool, int, str]
#: Type ids are global per spec chain; a type's key also says which spec owns it
#: (vmlinux, a module, ...): ``source index << 32 | type id``. Keys sort in output order.
_SHIFT = 32
_LOW = (1 << _SHIFT) - 1


@record
class RelocationNeeds:
    """What one CO-RE relocation needs from the target: the target specs of every
    candidate that matched it (empty when none did, or when it needs no kernel BTF)."""

    object: str
    section: str
    index: int
    kind: RelocKind
    local_type_id: int
    matched: list[CoreSpec] = field(default_factory=list)
    error: str | None = None


class _Relocation:
    """One relocation against one candidate list: each candidate's target spec and
    verdict (None where it does not match), and which candidates were recorded."""

    __slots__ = ("kind", "recorded", "specs", "verdicts")

    def __init__(self, kind: RelocKind, specs: list[CoreSpec | None],
                 verdicts: list[_Verdict]):
        self.kind = kind
        self.specs = specs
        self.verdicts = verdicts
        self.recorded: set[int] = set()


class Minimizer:
    """Records what relocations need from one parsed target, for any number of objects,
    then writes the minimized BTF.

    Only the types reached from the relocations are decoded: the target spec stays lazy.
    """

    def __init__(self, target: Spec | Target, *, keep_decl_tags: bool = False):
        self.target = target if isinstance(target, Target) else Target(target)
        self.keep_decl_tags = keep_decl_tags
        self._sources: list[Spec] = []
        self._source_index: dict[int, int] = {}
        self._register(self.target.vmlinux)
        for mod in self.target.modules:
            self._register(mod)
        self._marked: set[int] = set()
        self._followed: set[int] = set()  # marked with pointers followed
        self._match_marked: set[tuple[int, bool]] = set()
        self._members: dict[int, set[int]] = {}
        # candidates per (kind class, essential name): shared by all objects
        self._cands: dict[_CandKey, list[Candidate]] = {}
        # relocations per candidate list, recorded into the output by _settle
        self._relos: dict[_CandKey, list[_Relocation]] = {}
        # type relocations' candidates that did not match, by key: spec, id, local specs
        self._unmatched: dict[int, tuple[Spec, int, list[CoreSpec]]] = {}
        # target specs per local access path: every field kind on one field (offset,
        # size, signedness, ...) matches the candidates alike
        self._matched: dict[tuple[Spec, int, tuple[int, ...], int], list[CoreSpec | None]] = {}

    # -- sources and keys ------------------------------------------------------------

    def _register(self, spec: Spec) -> None:
        if spec.base is not None and id(spec.base) not in self._source_index:
            self._register(spec.base)
        if id(spec) not in self._source_index:
            self._source_index[id(spec)] = len(self._sources)
            self._sources.append(spec)

    def _key(self, btf: Spec, tid: int) -> int:
        while tid < btf.first_id and btf.base is not None:
            btf = btf.base
        idx = self._source_index.get(id(btf))
        if idx is None:
            self._register(btf)
            idx = self._source_index[id(btf)]
        return (idx << _SHIFT) | tid

    def _spec_of(self, key: int) -> Spec:
        return self._sources[key >> _SHIFT]

    # -- recording -------------------------------------------------------------------

    def add_objects(self, objects: Iterable[ObjectSpec]) -> list[RelocationNeeds]:
        """:meth:`add_object` for each, with every object's root type names looked up in
        the target in one pass first (one pass for all, not one per object)."""
        objects = list(objects)
        self.target.prefetch_names(objects_root_names(objects))
        return [n for obj in objects for n in self._add_object(obj)]

    def add_object(self, obj: ObjectSpec) -> list[RelocationNeeds]:
        """Record every CO-RE relocation of ``obj`` (all of .BTF.ext, whether or not its
        program is loaded by default, as bpftool does)."""
        return self.add_objects([obj])

    def _add_object(self, obj: ObjectSpec) -> list[RelocationNeeds]:
        out: list[RelocationNeeds] = []
        if obj.btf is None or obj.btf_ext is None:
            return out
        local = obj.btf
        for sec, records in obj.btf_ext.core_relos.items():
            for rec in records:
                try:
                    kind = RelocKind(rec.kind)
                except ValueError:
                    out.append(RelocationNeeds(obj.source, sec, rec.index, RelocKind.FIELD_EXISTS,
                                               rec.type_id, error=f"unknown kind {rec.kind}"))
                    continue
                needs = RelocationNeeds(obj.source, sec, rec.index, kind, rec.type_id)
                out.append(needs)
                if kind == RelocKind.TYPE_ID_LOCAL:
                    continue  # answered by the object's own BTF
                try:
                    if not 0 < rec.type_id < local.type_count:
                        raise CoreError(f"bad local type id {rec.type_id}")
                    local_spec = parse_spec(local, rec)
                    if not local.name(rec.type_id):
                        continue  # libbpf refuses anonymous roots: nothing to keep
                    needs.matched = self._match(local_spec, kind, obj.endian == ">")
                except (CoreError, BTFError) as e:
                    needs.error = f"{obj.source}: {sec} relo #{rec.index}: {e}"
        return out

    def _cand_key(self, local: Spec, local_id: int) -> _CandKey:
        kind = local.kind(local_id)
        enumish = kind in (bt.Kind.ENUM, bt.Kind.ENUM64)
        return (enumish, 0 if enumish else int(kind), essential_name(local.name(local_id)))

    def _match(self, local_spec: CoreSpec, kind: RelocKind, big_endian: bool) -> list[CoreSpec]:
        """Target specs of every candidate the relocation matches, in libbpf's order.

        Matching is against the whole candidate list, never the compacted one libbpf keeps
        per object: what matched anywhere is kept, which makes libbpf's candidate
        compaction against the minimized BTF follow the full BTF's whatever is loaded."""
        ck = self._cand_key(local_spec.btf, local_spec.root_type_id)
        cands = self._cands.get(ck)
        if cands is None:
            cands = self._cands[ck] = self.target.candidates(local_spec.btf,
                                                             local_spec.root_type_id)
        mkey = (local_spec.btf, local_spec.root_type_id, tuple(local_spec.raw_spec),
                 -1 if kind.is_field else int(kind))
        specs = self._matched.get(mkey)
        if specs is None:
            specs = self._matched[mkey] = [
                spec_match(local_spec, cand.btf, cand.type_id) for cand in cands]
        verdicts: list[_Verdict] = []
        local_side = calc_local(kind, local_spec, 0, big_endian)
        is_type = kind.is_type
        for cand, cspec in zip(cands, specs, strict=True):
            if cspec is None:
                verdicts.append(None)
                if is_type:
                    key = self._key(cand.btf, cand.type_id)
                    self._unmatched.setdefault(key, (cand.btf, cand.type_id, []))[2].append(
                        local_spec)
                continue
            try:
                res = calc_relo(kind, local_spec, cspec, 0, big_endian, local_side)
                verdicts.append((cspec.bit_offset, res.poison, res.new_val))
            except (CoreError, BTFError) as e:
                verdicts.append(("error", type(e).__name__))
        self._relos.setdefault(ck, []).append(_Relocation(kind, specs, verdicts))
        return [cs if cs.kind == kind else
                CoreSpec(cs.btf, cs.root_type_id, kind, cs.spec, cs.raw_spec, cs.bit_offset)
                for cs in specs if cs is not None]

    def _settle(self) -> None:
        """Record the candidates the output needs: each that matches some relocation,
        except one whose verdicts on every relocation sharing its candidate list equal an
        earlier candidate's and that nothing else keeps. libbpf keeps or compacts such a
        pair together and never decides differently with one than with both; a repeat
        that is in the output anyway gets all it matched, as any candidate."""
        changed = True
        while changed:
            changed = False
            for ck, relos in self._relos.items():
                cands = self._cands[ck]
                seen: set[tuple[_Verdict, ...]] = set()
                for j, cand in enumerate(cands):
                    column = tuple(r.verdicts[j] for r in relos)
                    key = self._key(cand.btf, cand.type_id)
                    if column in seen:
                        if key not in self._marked:
                            continue
                    else:
                        seen.add(column)
                    for r in relos:
                        targ = r.specs[j]
                        if targ is not None and j not in r.recorded:
                            r.recorded.add(j)
                            self._record(targ, r.kind)
                            changed = True

    def _record(self, targ: CoreSpec, kind: RelocKind) -> None:
        if kind.is_field:
            self._record_field(targ)
        elif kind == RelocKind.TYPE_MATCHES:
            self._mark_match(targ.btf, targ.root_type_id, False)
        elif kind.is_type:
            self._mark(targ.btf, targ.root_type_id, True)
        else:  # enum values: the whole enum
            self._mark(targ.btf, targ.root_type_id, False)

    def _record_field(self, targ: CoreSpec) -> None:
        """btfgen_record_field_relo: the root, then each member on the access path."""
        btf, tid = targ.btf, targ.root_type_id
        self._mark(btf, tid, False)
        for idx in targ.raw_spec[1:]:
            tid, t = skip_mods_and_typedefs(btf, tid)
            if isinstance(t, _COMPOSITE):
                self._members.setdefault(self._key(btf, tid), set()).add(idx)
                tid = t.members[idx].type
                self._mark(btf, tid, False)
            elif isinstance(t, bt.Array):
                tid = t.type
            else:
                raise CoreError(f"{btf.source}: access path through [{tid}] "
                                f"{t.kind.name.lower()}")

    def _mark(self, btf: Spec, tid: int, follow_pointers: bool) -> None:
        """btfgen_mark_type: a type and what it needs, composites without members."""
        stack = [(btf, tid)]
        marked, followed = self._marked, self._followed
        while stack:
            btf, tid = stack.pop()
            if tid == 0:
                continue
            key = self._key(btf, tid)
            if key in followed or (not follow_pointers and key in marked):
                continue
            marked.add(key)
            if follow_pointers:
                followed.add(key)
            t = btf.type(tid)
            if isinstance(t, _COMPOSITE | bt.Int | bt.Float | bt.Enum | bt.Enum64 | bt.Fwd):
                continue
            if isinstance(t, bt.Pointer):
                if follow_pointers:
                    stack.append((btf, t.type))
                continue
            stack.extend((btf, ref) for ref in bt.referenced_ids(t))

    def _mark_match(self, btf: Spec, tid: int, behind_ptr: bool) -> None:
        """btfgen_mark_type_match: all members, recursively, up to composites behind a
        pointer (kept without members): what type_matches compares."""
        stack = [(btf, tid, behind_ptr)]
        seen, marked = self._match_marked, self._marked
        while stack:
            btf, tid, behind = stack.pop()
            if tid == 0:
                continue
            key = self._key(btf, tid)
            if (key, behind) in seen:
                continue
            seen.add((key, behind))
            marked.add(key)
            t = btf.type(tid)
            if isinstance(t, _COMPOSITE):
                if not behind:
                    self._members.setdefault(key, set()).update(range(len(t.members)))
                    stack.extend((btf, m.type, False) for m in t.members)
            elif isinstance(t, bt.Pointer):
                stack.append((btf, t.type, True))
            elif isinstance(t, bt.Typedef | bt.Const | bt.Volatile | bt.Restrict | bt.TypeTag):
                stack.append((btf, t.type, behind))
            else:
                stack.extend((btf, ref, False) for ref in bt.referenced_ids(t))

    def _false_matches(self, builder: Builder, new_ids: dict[int, int]) -> list[int]:
        """Type relocations' candidates that did not match in the full BTF but match in
        the output, where they are for another reason (e.g. as a member's type): a
        dropped pointee reads as void there, which a local ``void *`` matches."""
        present = [k for k in self._unmatched if k in new_ids]
        if not present:
            return []
        out = Spec(builder.encode(), source="<minimized>")
        return [k for k in present
                if any(spec_match(ls, out, new_ids[k]) is not None
                       for ls in self._unmatched[k][2])]

    def _mark_decl_tags(self) -> None:
        """DECL_TAGs naming a kept type, or a kept member of one."""
        for spec in self._sources:
            words = spec._words
            for tid, off in enumerate(spec.offsets, spec.first_id):
                if (words[off + 1] >> 24) & 0x1F != bt.Kind.DECL_TAG:
                    continue
                t = spec.type(tid)
                assert isinstance(t, bt.DeclTag)
                target = self._key(spec, t.type)
                if target not in self._marked:
                    continue
                if t.component_idx >= 0 and isinstance(spec.type(t.type), _COMPOSITE) \
                        and t.component_idx not in self._members.get(target, ()):
                    continue
                self._marked.add(self._key(spec, tid))

    # -- output ----------------------------------------------------------------------

    @property
    def type_count(self) -> int:
        """Types the output holds (void not counted). Candidates are chosen when the
        output is built, so this settles them first; build() may add a few more."""
        self._settle()
        return len(self._marked)

    def build(self) -> Builder:
        """The minimized types, renumbered in the target's id order (which keeps
        libbpf's candidate order)."""
        while True:
            self._settle()
            if self.keep_decl_tags:
                self._mark_decl_tags()
            order = sorted(self._marked)
            new_ids = {key: i for i, key in enumerate(order, 1)}
            builder = Builder()
            for key in order:
                spec = self._spec_of(key)
                tid = key & _LOW
                builder.add(self._rewrite(spec, tid, spec.type(tid), new_ids))
            false = self._false_matches(builder, new_ids)
            if not false:
                return builder
            for key in false:  # keep what the comparison looks at, as in the full BTF
                btf, tid, locals_ = self._unmatched.pop(key)
                for ls in locals_:
                    if ls.kind == RelocKind.TYPE_MATCHES:
                        self._mark_match(btf, tid, False)
                    else:
                        self._mark(btf, tid, True)

    def to_bytes(self, endian: str | None = None) -> bytes:
        """Raw BTF in ``endian`` (default: the target's)."""
        return self.build().encode(endian or self.target.vmlinux.endian)

    def _rewrite(self, spec: Spec, tid: int, t: bt.Type, new_ids: dict[int, int]) -> bt.Type:
        """``t`` with ids renumbered (dropped types read as void) and members filtered."""

        def new(ref: int) -> int:
            return new_ids.get(self._key(spec, ref), 0) if ref else 0

        if isinstance(t, _COMPOSITE):
            kept = self._members.get(self._key(spec, tid), set())
            members = [bt.Member(m.name, new(m.type), m.offset, m.bitfield_size)
                       for i, m in enumerate(t.members) if i in kept]
            cls = bt.Struct if isinstance(t, bt.Struct) else bt.Union
            return cls(t.name, t.size, members, t.bitfield_encoding)
        if isinstance(t, bt.Pointer):
            return bt.Pointer(new(t.type), t.name)
        if isinstance(t, bt.Typedef):
            return bt.Typedef(t.name, new(t.type))
        if isinstance(t, bt.Const):
            return bt.Const(new(t.type), t.name)
        if isinstance(t, bt.Volatile):
            return bt.Volatile(new(t.type), t.name)
        if isinstance(t, bt.Restrict):
            return bt.Restrict(new(t.type), t.name)
        if isinstance(t, bt.TypeTag):
            return bt.TypeTag(t.name, new(t.type), t.attribute)
        if isinstance(t, bt.Array):
            return bt.Array(new(t.type), new(t.index_type), t.nelems, t.name)
        if isinstance(t, bt.FuncProto):
            return bt.FuncProto(new(t.return_type),
                                [bt.Param(p.name, new(p.type)) for p in t.params], t.name)
        if isinstance(t, bt.Func):
            return bt.Func(t.name, new(t.type), t.linkage)
        if isinstance(t, bt.Var):
            return bt.Var(t.name, new(t.type), t.linkage)
        if isinstance(t, bt.Datasec):
            return bt.Datasec(t.name, t.size, [bt.VarSecinfo(new(v.type), v.offset, v.size)
                                               for v in t.vars if new(v.type)])
        if isinstance(t, bt.DeclTag):
            idx = t.component_idx
            if idx >= 0 and isinstance(spec.type(t.type), _COMPOSITE):
                kept_sorted = sorted(self._members.get(self._key(spec, t.type), ()))
                idx = kept_sorted.index(idx)
            return bt.DeclTag(t.name, new(t.type), idx, t.attribute)
        return t  # Int, Float, Enum, Enum64, Fwd: no ids inside


def minimize(objects: Sequence[ObjectSpec], target: Spec | Target, *,
             keep_decl_tags: bool = False) -> bytes:
    """Raw minimized BTF (in the target's byte order) for ``objects`` against ``target``."""
    m = Minimizer(target, keep_decl_tags=keep_decl_tags)
    m.add_objects(objects)
    return m.to_bytes()


def needs_of(objects: Iterable[ObjectSpec], target: Spec | Target) -> list[RelocationNeeds]:
    """What each relocation of ``objects`` needs from ``target`` (for reports)."""
    return Minimizer(target).add_objects(objects)


__all__ = ["Minimizer", "RelocationNeeds", "minimize", "needs_of"]
