"""CO-RE: relocating an object's field, type and enum accesses to a target BTF, making
libbpf's decisions. Pure data: no syscalls."""

from .engine import Candidate, RelocationReport, Relocator, Target, as_target, relocate
from .relo import (
    CoreError,
    CoreSpec,
    RelocResult,
    essential_name,
    essential_name_len,
    parse_spec,
    spec_match,
    types_are_compat,
    types_match,
)

__all__ = [
    "Candidate",
    "CoreError",
    "CoreSpec",
    "RelocResult",
    "RelocationReport",
    "Relocator",
    "Target",
    "as_target",
    "essential_name",
    "essential_name_len",
    "parse_spec",
    "relocate",
    "spec_match",
    "types_are_compat",
    "types_match",
]
