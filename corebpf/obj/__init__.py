"""BPF ELF objects as pure data (no syscalls)."""

from .btf_ext import BTFExt, CoreRelo, FuncInfo, LineInfo, RelocKind, parse_btf_ext
from .object import (
    ExternSpec,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    RelocType,
    VariableSpec,
)
from .sections import (
    SECTION_DEFS,
    AttachKind,
    AttachType,
    MapType,
    ProgramType,
    SectionDef,
    section_def,
)

__all__ = [
    "SECTION_DEFS",
    "AttachKind",
    "AttachType",
    "BTFExt",
    "CoreRelo",
    "ExternSpec",
    "FuncInfo",
    "LineInfo",
    "MapSpec",
    "MapType",
    "ObjectSpec",
    "ProgramSpec",
    "ProgramType",
    "RelocKind",
    "RelocType",
    "Relocation",
    "SectionDef",
    "VariableSpec",
    "parse_btf_ext",
    "section_def",
]
