"""A readable listing of a BPF object: sections, programs disassembled kernel-style, maps,
with each CO-RE relocation and ELF relocation annotated where it applies."""

from __future__ import annotations

from collections.abc import Callable

from ._text import plural
from .asm import decode, disassemble
from .core.relo import CoreError, parse_spec
from .errors import BTFError
from .obj import ObjectSpec, RelocKind
from .obj.sections import map_type_name


def dump_object(obj: ObjectSpec, write: Callable[[str], object]) -> None:
    write(f"{obj.source}: license {obj.license!r}, {plural(len(obj.programs), 'program')}, "
          f"{plural(len(obj.maps), 'map')}\n")
    for m in obj.maps.values():
        what = "data" if m.is_data else map_type_name(m.type)
        write(f"map {m.name}: {what} key {m.key_size} value {m.value_size} "
              f"max_entries {m.max_entries} flags {m.flags:#x}\n")
    for p in obj.programs.values():
        kind = "subprogram" if p.is_subprog else p.prog_type.name.lower()
        write(f"\n{p.name} (section {p.section}, {kind}, {p.insn_count} instructions):\n")
        notes: dict[int, list[str]] = {}
        for r in p.relocations:
            notes.setdefault(r.insn, []).append(f"{r.type.value} {r.target or r.symbol}")
        for cr in p.core_relos:
            kind_name = RelocKind(cr.kind).libbpf_name if cr.kind <= 12 else str(cr.kind)
            try:
                assert obj.btf is not None
                spec = parse_spec(obj.btf, cr).format()
            except (CoreError, BTFError, AssertionError) as e:
                spec = f"<{kind_name}> unparsable: {e}"
            notes.setdefault(cr.insn_off // 8, []).append(f"CO-RE relo #{cr.index}: {spec}")
        insns = decode(p.insns, obj.endian)

        for line in disassemble(insns, annotate=_annotator(notes)):
            write(f"  {line}\n")


def _annotator(notes: dict[int, list[str]]) -> Callable[[int], str | None]:
    def annotate(slot: int) -> str | None:
        got = notes.get(slot)
        return "; ".join(got) if got else None

    return annotate
