"""Applying an object's CO-RE relocations to a target BTF, as libbpf's
bpf_object__relocate_core does: candidate search with a per-local-type cache that is
compacted as candidates fail, every decision recorded, instructions patched or poisoned.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from .._record import record
from ..btf import Spec
from ..errors import BTFError, RelocationError
from ..obj.btf_ext import CoreRelo, RelocKind
from ..obj.object import ObjectSpec, ProgramSpec
from .relo import (
    CoreError,
    CoreSpec,
    RelocResult,
    calc_local,
    calc_relo,
    essential_name,
    essential_name_len,
    kinds_core_compat,
    parse_spec,
    spec_match,
)

POISON_IMM = 0xBAD2310  # "bad relo": call to an invalid helper
BPF_JMP_CALL = 0x85
_INSN = {e: struct.Struct(e + "BBhi") for e in "<>"}


@record
class Candidate:
    btf: Spec
    type_id: int


class Target:
    """The BTF relocations are resolved against: the kernel's (vmlinux) and optionally
    split module BTFs, searched the way libbpf searches them (vmlinux first; modules only
    when vmlinux has no candidate).

    ``then``: further targets (a user program's BTF, another kernel's), searched in order
    by the same rule when none before has a candidate: for each local type the first
    target with a candidate decides, as vmlinux does before modules. Listing a user BTF
    first makes its ``struct data`` win over a kernel type of that name while kernel types
    it lacks (``task_struct``) still come from the kernel listed after it.
    """

    def __init__(self, vmlinux: Spec, modules: Sequence[Spec] = (), *,
                 then: Sequence[Target | Spec] = ()):
        self.vmlinux = vmlinux
        self.modules = list(modules)
        self.then = [t if isinstance(t, Target) else Target(t) for t in then]

    @classmethod
    def ordered(cls, targets: Sequence[Target | Spec]) -> Target:
        """One target searching ``targets`` in order (see ``then``)."""
        if not targets:
            raise RelocationError("no CO-RE target BTF given")
        head, *rest = targets
        if isinstance(head, Spec):
            return cls(head, then=rest)
        return cls(head.vmlinux, head.modules, then=[*head.then, *rest])

    def specs(self) -> list[Spec]:
        """Every BTF searched, in search order."""
        return [self.vmlinux, *self.modules, *(s for t in self.then for s in t.specs())]

    def prefetch(self, local: Spec, records: Iterable[CoreRelo]) -> None:
        """Look up every root type name the records will search for in one pass over
        each target's strings, before the first candidate search."""
        self.prefetch_names(root_names(local, records))

    def prefetch_names(self, names: Iterable[str]) -> None:
        """:meth:`prefetch` for essential names gathered already (several objects')."""
        names = set(names)
        for spec in self.specs():
            spec.prefetch_string_offsets(names, prefix_sep=FLAVOR_SEP)

    def candidates(self, local: Spec, local_id: int) -> list[Candidate]:
        """bpf_core_find_cands, over each target in turn."""
        lt = local.type(local_id)
        name = lt.name
        if not name:
            raise CoreError(f"target candidate search failed for [{local_id}] "
                            f"{lt.kind.name.lower()} <anon>: -22")
        ess = essential_name(name)
        cands = _add_cands(self.vmlinux, lt.kind, ess, 1)
        if cands:
            return cands
        for mod in self.modules:
            cands += _add_cands(mod, lt.kind, ess, mod.first_id)
        if cands:
            return cands
        for more in self.then:
            cands = more.candidates(local, local_id)
            if cands:
                return cands
        return cands


def root_names(local: Spec, records: Iterable[CoreRelo]) -> set[str]:
    """The essential names of the records' root types: what their candidate searches
    will look up in the target."""
    names = set()
    for rec in records:
        if 0 < rec.type_id < local.type_count:
            name = local.name(rec.type_id)
            if name:
                names.add(essential_name(name))
    return names


def objects_root_names(objects: Iterable[ObjectSpec]) -> set[str]:
    """:func:`root_names` of every CO-RE relocation of these objects."""
    return {name for obj in objects if obj.btf is not None and obj.btf_ext is not None
            for name in root_names(obj.btf, (r for recs in obj.btf_ext.core_relos.values()
                                             for r in recs))}


#: what separates a type's essential name from its flavor (``task_struct___old``)
FLAVOR_SEP = "___"


def _add_cands(btf: Spec, local_kind: int, ess: str, start_id: int) -> list[Candidate]:
    """bpf_core_add_cands: every type with a compatible kind and the same essential name,
    in id order. Found through the string table: the exact name, and "name___flavor"."""
    ids = set(btf.find_by_name(ess))
    spec: Spec | None = btf
    while spec is not None:  # split BTF: its types may name strings of its bases
        for off in _flavored_string_offsets(spec, ess):
            ids.update(btf._ids_with_name_offset(off))
        spec = spec.base
    out = []
    for tid in sorted(ids):
        if tid < start_id:
            continue
        if not kinds_core_compat(btf.kind(tid), local_kind):
            continue
        tname = btf.name(tid)
        if not tname or essential_name_len(tname) != len(ess) or not tname.startswith(ess):
            continue
        out.append(Candidate(btf, tid))
    return out




def _flavored_string_offsets(btf: Spec, ess: str) -> list[int]:
    """Offsets of strings "ess___X..." in this spec's own string section.

    Names with a "___" flavor separator are rare (dozens in a kernel), so one scan per
    spec indexes them all by essential name; every candidate search then costs a lookup.
    """
    prefetched = btf.prefixed_string_offsets(ess, FLAVOR_SEP)
    if prefetched is not None:  # "ess___X" found with the names: keep those whose
        # essential name is ess ("ess___X___Y"'s is "ess___X")
        return [off for off in prefetched if essential_name(btf.string(off)) == ess]
    index: dict[str, list[int]] | None = getattr(btf, "_flavor_index", None)
    if index is None:
        index = {}
        strs = btf._strings
        pos = strs.find(b"___")
        while pos >= 0:
            start = strs.rfind(b"\0", 0, pos) + 1
            end = strs.find(b"\0", pos)
            name = strs[start:end].decode("utf-8", "surrogateescape")
            off = btf._str_base + start
            lst = index.setdefault(essential_name(name), [])
            if off not in lst:
                lst.append(off)
            pos = strs.find(b"___", end)
        btf._flavor_index = index  # type: ignore[attr-defined]
    return [off for off in index.get(ess, []) if btf.string(off) != ess]


@record
class RelocationReport:
    """One CO-RE relocation's outcome, in the shape `corebpf core relocate --json` prints."""

    program: str
    section: str
    index: int
    insn: int
    kind: RelocKind
    local: int | None = None
    target: int | None = None
    poisoned: bool = False
    error: str | None = None
    local_spec: str = ""
    target_spec: str = ""

    def to_json(self) -> dict[str, object]:
        if self.error is not None:
            return {"program": self.program, "section": self.section, "index": self.index,
                    "error": self.error}
        return {"program": self.program, "section": self.section, "index": self.index,
                "insn": self.insn, "kind": self.kind.libbpf_name, "local": self.local,
                "target": None if self.poisoned else self.target, "poisoned": self.poisoned}


class Relocator:
    """Relocates the CO-RE records of one object against one target, like one
    bpf_object__relocate_core call (one candidate cache for the whole object)."""

    def __init__(self, obj: ObjectSpec, target: Target | Spec | Sequence[Target | Spec]):
        if obj.btf is None:
            raise RelocationError(f"{obj.source}: no .BTF section: cannot apply CO-RE")
        self.obj = obj
        self.local: Spec = obj.btf
        self.target = as_target(target)
        self._cache: dict[int, list[Candidate]] = {}
        self.big_endian = obj.endian == ">"

    def run(self) -> tuple[list[RelocationReport], dict[str, bytes]]:
        """All relocations in .BTF.ext order; returns the reports and patched instructions
        of every program that has CO-RE relocations."""
        reports: list[RelocationReport] = []
        patched: dict[str, bytearray] = {}
        ext = self.obj.btf_ext
        if ext is None:
            return reports, {}
        self.target.prefetch(self.local, (r for recs in ext.core_relos.values() for r in recs))
        by_sec: dict[str, list[ProgramSpec]] = {}
        for p in self.obj.programs.values():
            by_sec.setdefault(p.elf_section, []).append(p)
        for sec, records in ext.core_relos.items():
            for rec in records:
                prog = next((p for p in by_sec.get(sec, [])
                             if p.offset <= rec.insn_off < p.offset + len(p.insns)), None)
                if prog is None:
                    continue  # libbpf: belongs to an eliminated weak subprogram
                if not prog.autoload:
                    continue
                insn_idx = (rec.insn_off - prog.offset) // 8
                buf = patched.setdefault(prog.name, bytearray(prog.insns))
                reports.append(self._one(prog, prog.section, rec, insn_idx, buf))
        return reports, {k: bytes(v) for k, v in patched.items()}

    def _one(self, prog: ProgramSpec, sec: str, rec: CoreRelo, insn_idx: int,
             buf: bytearray) -> RelocationReport:
        try:
            kind = RelocKind(rec.kind)
        except ValueError:
            return RelocationReport(prog.name, sec, rec.index, insn_idx, RelocKind.FIELD_EXISTS,
                                    error=f"unrecognized CO-RE relocation kind {rec.kind}")
        report = RelocationReport(prog.name, sec, rec.index, insn_idx, kind)
        try:
            res, local_spec, targ_spec = self.resolve(rec, insn_idx)
            report.local, report.target, report.poisoned = res.orig_val, res.new_val, res.poison
            report.local_spec = local_spec.format()
            report.target_spec = targ_spec.format() if targ_spec is not None else ""
            # a load/store whose size cannot be adjusted safely gets poisoned by the patch
            if self._patch(buf, insn_idx, res):
                report.poisoned = True
        except (CoreError, BTFError) as e:
            report.error = f"prog '{prog.name}': relo #{rec.index}: {e}"
        return report

    def resolve(self, rec: CoreRelo,
                insn_idx: int) -> tuple[RelocResult, CoreSpec, CoreSpec | None]:
        """bpf_core_resolve_relo + bpf_core_calc_relo_insn for one record."""
        local = self.local
        kind = RelocKind(rec.kind)
        if not 0 < rec.type_id < local.type_count:
            raise CoreError(f"bad local type id {rec.type_id}")
        lt = local.type(rec.type_id)
        cands: list[Candidate] | None = None
        if kind != RelocKind.TYPE_ID_LOCAL:
            cands = self._cache.get(rec.type_id)
            if cands is None:
                cands = self.target.candidates(local, rec.type_id)
                self._cache[rec.type_id] = cands
        try:
            local_spec = parse_spec(local, rec)
        except CoreError as e:
            try:
                s = local.string(rec.access_str_off)
            except BTFError:
                s = "<?>"
            raise CoreError(f"parsing [{rec.type_id}] {lt.kind.name.lower()} "
                            f"{lt.name or '<anon>'} + {s} failed: {e}") from None
        if kind == RelocKind.TYPE_ID_LOCAL:
            res = RelocResult(orig_val=rec.type_id, new_val=rec.type_id, validate=False)
            return res, local_spec, None
        if not lt.name:
            raise CoreError(f"<{kind.libbpf_name}> ({int(kind)}) relocation doesn't support "
                            "anonymous types")
        assert cands is not None
        chosen: RelocResult | None = None
        chosen_spec: CoreSpec | None = None
        kept: list[Candidate] = []
        local_side = calc_local(kind, local_spec, insn_idx, self.big_endian)
        for cand in cands:
            cspec = spec_match(local_spec, cand.btf, cand.type_id)
            if cspec is None:
                continue
            cres = calc_relo(kind, local_spec, cspec, insn_idx, self.big_endian, local_side)
            if chosen is None:
                chosen, chosen_spec = cres, cspec
            elif chosen_spec is not None and cspec.bit_offset != chosen_spec.bit_offset:
                raise CoreError(f"field offset ambiguity: {cspec.bit_offset} != "
                                f"{chosen_spec.bit_offset}")
            elif cres.poison != chosen.poison or cres.new_val != chosen.new_val:
                raise CoreError(
                    "relocation decision ambiguity: "
                    f"{'failure' if cres.poison else 'success'} {cres.new_val} != "
                    f"{'failure' if chosen.poison else 'success'} {chosen.new_val}")
            kept.append(cand)
        if kept:
            cands[:] = kept  # libbpf compacts the cached list: later relos see fewer
        if chosen is None:
            chosen = calc_relo(kind, local_spec, None, insn_idx, self.big_endian)
        return chosen, local_spec, chosen_spec

    def _patch(self, buf: bytearray, idx: int, res: RelocResult) -> bool:
        """bpf_core_patch_insn; True when the instruction was poisoned."""
        e = self.obj.endian
        st = _INSN[e]
        n = len(buf) // 8
        if not 0 <= idx < n:
            raise CoreError(f"instruction #{idx} outside the program")
        where = f"insn #{idx}"
        code, regs, off, imm = st.unpack_from(buf, idx * 8)
        cls = code & 0x07
        if res.poison:
            self._poison(buf, idx, code)
            return True
        orig, new = res.orig_val, res.new_val
        if cls in (0x04, 0x07):  # ALU, ALU64
            if code & 0x08:
                raise CoreError(f"{where} (ALU/ALU64) uses a register source")
            if res.validate and (imm & ((1 << 64) - 1)) != orig:
                raise CoreError(f"unexpected {where} (ALU/ALU64) value: got {imm & 0xFFFFFFFF}, "
                                f"exp {orig} -> {new}")
            st.pack_into(buf, idx * 8, code, regs, off, _s32(new))
        elif cls in (0x01, 0x02, 0x03):  # LDX, ST, STX
            if res.validate and (off & ((1 << 64) - 1)) != orig:
                raise CoreError(f"unexpected {where} (LDX/ST/STX) value: got {off & 0xFFFF}, "
                                f"exp {orig} -> {new}")
            if new > 0x7FFF:
                raise CoreError(f"{where} (LDX/ST/STX) value too big: {new}")
            if res.fail_memsz_adjust:
                self._poison(buf, idx, code)
                return True
            if res.new_sz != res.orig_sz:
                sizes = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}
                have = sizes.get(code & 0x18, -1)
                if have != res.orig_sz:
                    raise CoreError(f"{where} (LDX/ST/STX) unexpected mem size: got {have}, "
                                    f"exp {res.orig_sz}")
                bpf_sz = {8: 0x18, 4: 0x00, 2: 0x08, 1: 0x10}.get(res.new_sz)
                if bpf_sz is None:
                    raise CoreError(f"{where} (LDX/ST/STX) invalid new mem size: {res.new_sz}")
                code = (code & 0xE0) | bpf_sz | cls
            st.pack_into(buf, idx * 8, code, regs, new, imm)
        elif cls == 0x00:  # LD
            if idx + 1 >= n:
                raise CoreError(f"{where} (LDIMM64) has unexpected form")
            code2, regs2, off2, imm2 = st.unpack_from(buf, idx * 8 + 8)
            src = (regs >> 4) if e == "<" else (regs & 0xF)
            if code != 0x18 or src != 0 or off != 0 or code2 != 0 or regs2 != 0 or off2 != 0:
                raise CoreError(f"{where} (LDIMM64) has unexpected form")
            val = (imm & 0xFFFFFFFF) | ((imm2 & 0xFFFFFFFF) << 32)
            if res.validate and val != orig:
                raise CoreError(f"unexpected {where} (LDIMM64) value: got {val}, exp {orig} -> "
                                f"{new}")
            st.pack_into(buf, idx * 8, code, regs, off, _s32(new & 0xFFFFFFFF))
            st.pack_into(buf, idx * 8 + 8, code2, regs2, off2, _s32((new >> 32) & 0xFFFFFFFF))
        else:
            raise CoreError(f"trying to relocate unrecognized {where}, code:{code:#x}")
        return False

    def _poison(self, buf: bytearray, idx: int, code: int) -> None:
        st = _INSN[self.obj.endian]
        if code == 0x18 and idx + 1 < len(buf) // 8:
            st.pack_into(buf, idx * 8 + 8, BPF_JMP_CALL, 0, 0, POISON_IMM)
        st.pack_into(buf, idx * 8, BPF_JMP_CALL, 0, 0, POISON_IMM)


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def as_target(target: Target | Spec | Sequence[Target | Spec]) -> Target:
    """A Target from one spec, a Target, or several of them searched in order."""
    if isinstance(target, Target):
        return target
    if isinstance(target, Spec):
        return Target(target)
    return Target.ordered(list(target))


def relocate(obj: ObjectSpec, target: Target | Spec | Sequence[Target | Spec]
             ) -> tuple[list[RelocationReport], dict[str, bytes]]:
    """Relocate every CO-RE record of ``obj`` against ``target`` (several: searched in
    order, see :class:`Target`)."""
    return Relocator(obj, target).run()
