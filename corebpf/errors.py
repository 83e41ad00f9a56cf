"""corebpf's exception hierarchy: one root, then one branch per layer.

Every message names what it is about (file, byte offset, type id, field) so that a
failure on one of hundreds of kernels can be traced without a debugger.
"""

from __future__ import annotations


class Error(Exception):
    """Root of every error corebpf raises on purpose."""


class BTFError(Error):
    """Malformed or unsupported BTF, or a lookup that BTF cannot answer."""

    def __init__(self, message: str, *, source: str | None = None, offset: int | None = None):
        self.source = source
        self.offset = offset
        where = []
        if source:
            where.append(source)
        if offset is not None:
            where.append(f"offset {offset:#x}")
        super().__init__(f"{': '.join([', '.join(where), message]) if where else message}")


class NotFoundError(BTFError, KeyError):
    """A type name or id that is not in the BTF."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DWARFError(Error):
    """An ELF file whose DWARF is missing, damaged or cannot be turned into BTF."""


class KernelImageError(Error, ValueError):
    """A kernel package or image (.deb, vmlinuz, vmlinux) that cannot be unpacked."""


class ArchiveError(Error):
    """An archive input (BTFHub tree, tarball, package, bundle) that cannot be used."""


class ObjectError(Error):
    """A malformed or unsupported BPF object file."""


class RelocationError(Error):
    """A relocation (ELF or CO-RE) that cannot be applied."""


class LoadError(Error):
    """The kernel refused an object (BTF, map or program)."""

    def __init__(self, message: str, *, errno: int = 0, log: str = ""):
        self.errno = errno
        self.log = log
        super().__init__(message)


class VerifierError(LoadError):
    """The verifier rejected a program; ``log`` holds its output."""


class AttachError(Error):
    """A program could not be attached."""


class PrivilegeError(Error):
    """This process lacks the privileges a kernel operation takes (root, or CAP_BPF and
    the capabilities its program types add); ``missing`` lists the capability numbers.
    Raised before anything else is concluded from a refusal: an EPERM is never reported
    as a missing kernel feature."""

    def __init__(self, message: str, *, missing: list[int] | None = None):
        self.missing = list(missing or [])
        super().__init__(message)


__all__ = [
    "ArchiveError",
    "AttachError",
    "BTFError",
    "DWARFError",
    "Error",
    "KernelImageError",
    "LoadError",
    "NotFoundError",
    "ObjectError",
    "PrivilegeError",
    "RelocationError",
    "VerifierError",
]
