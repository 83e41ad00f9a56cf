"""BTF from DWARF: CO-RE targets for user-space programs and libraries.

Pure data, no syscalls. Reading DWARF needs pyelftools (the optional extra
``corebpf[dwarf]``); importing this package does not.
"""

from __future__ import annotations

from ..errors import DWARFError

TYPE_CHECKING = False

if TYPE_CHECKING:
    import os

    from ..btf.spec import Spec

__all__ = ["DWARFError", "btf_from_dwarf"]


def btf_from_dwarf(path_or_bytes: str | os.PathLike[str] | bytes, *,
                   base: Spec | None = None) -> bytes:
    """Raw BTF for every type, function and global variable in an ELF file's DWARF.

    With ``base``, the result is split BTF on it (types equal to a base type are not
    repeated), as ``pahole --btf_base`` writes.
    """
    try:
        from .convert import btf_from_dwarf as convert
    except ImportError as e:
        if getattr(e, "name", "") and str(e.name).split(".")[0] == "elftools":
            raise DWARFError(
                "reading DWARF needs pyelftools: pip install 'corebpf[dwarf]'") from None
        raise
    return convert(path_or_bytes, base=base)
