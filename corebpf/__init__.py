"""corebpf: portable eBPF (compile once - run everywhere) in pure Python."""

from .errors import (
    AttachError,
    BTFError,
    Error,
    LoadError,
    NotFoundError,
    ObjectError,
    RelocationError,
    VerifierError,
)

__version__ = "0.1.0"

__all__ = [
    "AttachError",
    "BTFError",
    "Error",
    "LoadError",
    "NotFoundError",
    "ObjectError",
    "RelocationError",
    "VerifierError",
    "__version__",
]
