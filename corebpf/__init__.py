"""corebpf: portable eBPF (compile once - run everywhere) in pure Python."""

from .errors import (
    ArchiveError,
    AttachError,
    BTFError,
    Error,
    KernelImageError,
    LoadError,
    NotFoundError,
    ObjectError,
    PrivilegeError,
    RelocationError,
    VerifierError,
)

__version__ = "0.1.0"

__all__ = [
    "ArchiveError",
    "AttachError",
    "BTFError",
    "Error",
    "KernelImageError",
    "LoadError",
    "NotFoundError",
    "ObjectError",
    "PrivilegeError",
    "RelocationError",
    "VerifierError",
    "__version__",
]
