"""``corebpf btf install``: this machine's BTF written where unmodified libbpf tools find
it (``/boot/vmlinux-$(uname -r)``, the first of libbpf's vmlinux paths, as Inspektor
Gadget does), so that a C tool built with libbpf runs on a kernel without BTF of its own.

The file is an ELF holding only ``.BTF`` (:func:`corebpf.btf.vmlinux.vmlinux_elf`), with
a ``.note.corebpf`` note that says where the BTF came from and marks the file as
corebpf's: a file without it (a real vmlinux, another tool's) is never replaced or
removed without ``force``. It is written through a temporary file in the same directory
and a rename, so a reader sees the old file or the new one, and a failure leaves nothing.

Whose BTF it is: BTF carries no kernel release, so a file given by the user is trusted
as ``--btf`` is. Where it can be checked, it is: a bundle's or the service's entry is
looked up by this machine's (distro, version, arch, release); on a kernel that exposes
its own BTF, anything but that BTF is refused without ``force`` (libbpf reads
/sys/kernel/btf/vmlinux first anyway, so such a file could only mislead other readers).
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any

from .._record import field, record
from ..errors import ArchiveError, Error
from .bundle import VMLINUX_PATHS
from .sources import MAX_SIZE, machine_key

#: the note's "format": a file corebpf wrote
INSTALL_FORMAT = "corebpf-btf-install"
INSTALL_VERSION = 1
KERNEL_BTF = "/sys/kernel/btf/vmlinux"
#: the tools' bundle, the last resort of the default source
TOOLS_BUNDLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "tools", "objects", "btf-bundle.tar.xz")
#: a corebpf file is BTF plus a few hundred bytes; anything larger is not one
_MAX_OWN = MAX_SIZE + (1 << 20)


class InstallError(ArchiveError):
    """BTF that cannot be installed or uninstalled where asked."""


@record
class Installed:
    """What :func:`install_btf` wrote."""

    path: str
    #: where the BTF came from, for a human
    source: str
    #: "file", "bundle", "service", or select_core_btf's "kernel"/"vmlinux"/"bundle"
    kind: str
    #: the machine it is for: (distro, version, arch, release)
    key: tuple[str, str, str, str]
    btf_sha256: str
    btf_size: int
    file_size: int
    #: minimized BTF (a bundle's entry): only the programs it was made for relocate on it
    minimized: bool
    #: what was there before: None, "corebpf" (an earlier install) or what else (--force)
    replaced: str | None = None
    warnings: list[str] = field(default_factory=list)


def search_paths(release: str | None = None) -> list[str]:
    """libbpf's vmlinux paths for ``release`` (default: ``uname -r``), in its order."""
    r = release if release is not None else os.uname().release
    return [p.format(r=r) for p in VMLINUX_PATHS]


def default_path(release: str | None = None) -> str:
    return search_paths(release)[0]


def read_marker(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The note of a file corebpf installed, or None: no such file, not a regular file,
    or no corebpf note (a real vmlinux, another tool's file)."""
    from ..btf.vmlinux import read_note

    p = os.fspath(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_OWN:
            return None
        data = f.read(_MAX_OWN + 1)
    note = read_note(data, p)
    if note is None or note.get("format") != INSTALL_FORMAT:
        return None
    return note


def _what_is_there(path: str) -> str | None:
    """None (nothing), "corebpf" (our own file), else what the file is, for a refusal."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise InstallError(f"{path}: cannot inspect: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        return f"a symbolic link to {os.readlink(path)}"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if read_marker(path) is not None:
        return "corebpf"
    return "a file corebpf did not write (no corebpf note)"


# -- where the BTF comes from ----------------------------------------------------------


def _is_bundle(path: str) -> bool:
    """A corebpf bundle (an xz tar whose first member is index.json), by its first bytes."""
    import lzma
    import tarfile

    try:
        with open(path, "rb") as f:
            if f.read(6) != b"\xfd7zXZ\x00":
                return False
        with tarfile.open(path, "r:xz") as tar:
            first = tar.next()
            return first is not None and first.name == "index.json"
    except (OSError, tarfile.TarError, lzma.LZMAError, EOFError, ValueError):
        return False


def _from_bundle(path: str, key: tuple[str, str, str, str]) -> tuple[bytes, str]:
    from .bundle import Bundle, NoBTFError, nearest_kernels

    b = Bundle.open(path)
    match = b.lookup(distro=key[0], version=key[1], arch=key[2], release=key[3])
    if match is None:
        near = nearest_kernels(b.kernels, key)
        hint = ("; nearest entries: " + ", ".join("/".join(k.key) for k in near)) if near \
            else ""
        raise NoBTFError(f"{path}: no BTF for {'/'.join(key)} in the bundle "
                         f"({len(b.kernels)} kernels){hint}", key=key, tried=[path],
                         nearest=near)
    k = match.kernel
    return match.btf, f"bundle {path} entry {'/'.join(k.key)} ({match.rule} match)"


def btf_to_install(source: str | os.PathLike[str] | None = None, *,
                   service: str | Any | None = None,
                   key: tuple[str, str, str, str] | None = None,
                   kernel_btf: str = KERNEL_BTF, bundle: str | None = TOOLS_BUNDLE
                   ) -> tuple[bytes, str, str, bool]:
    """(raw BTF, kind, description, minimized) for this machine (``key``), from:
    ``source``, a BTF file in any container corebpf reads or a corebpf bundle (its entry
    for this machine); else ``service`` (a URL or ServiceClient: the kernel's whole BTF);
    else what :func:`~.bundle.select_core_btf` finds (the kernel's own, a vmlinux on
    disk, ``bundle``'s entry)."""
    key = key if key is not None else machine_key()
    if source is not None and service is not None:
        raise InstallError("give a file or bundle, or a service, not both")
    if source is not None:
        path = os.fspath(source)
        if not os.path.exists(path):
            raise InstallError(f"{path}: no such file")
        if _is_bundle(path):
            raw, desc = _from_bundle(path, key)
            return raw, "bundle", desc, True
        from .sources import read_btf

        return read_btf(path), "file", path, False
    if service is not None:
        from .service import ServiceClient

        client = service if isinstance(service, ServiceClient) else ServiceClient(service)
        got = client.fetch(key)
        return got.btf, "service", f"service {client.url} entry {'/'.join(key)}", False
    from .bundle import select_core_btf

    choice = select_core_btf(
        bundle=bundle if bundle is not None and os.path.exists(bundle) else None,
        kernel_btf=kernel_btf, distro=key[0], version=key[1], arch=key[2], release=key[3])
    return choice.spec.raw, choice.kind, choice.source, choice.kind == "bundle"


# -- install and uninstall -------------------------------------------------------------


def install_btf(source: str | os.PathLike[str] | None = None, *,
                service: str | Any | None = None, path: str | os.PathLike[str] | None = None,
                force: bool = False, distro: str | None = None, version: str | None = None,
                arch: str | None = None, release: str | None = None,
                kernel_btf: str = KERNEL_BTF, bundle: str | None = TOOLS_BUNDLE) -> Installed:
    """Write this machine's BTF (see :func:`btf_to_install` for where it comes from) as
    an ELF file with ``.BTF`` to ``path`` (default ``/boot/vmlinux-<release>``).

    A file already there that corebpf did not write is refused (InstallError) unless
    ``force``. On a kernel that exposes its BTF at ``kernel_btf``, BTF that differs from
    it is refused unless ``force``. The BTF is parsed before anything is written.
    """
    from .. import __version__
    from ..btf import from_bytes
    from ..btf.vmlinux import vmlinux_elf

    key = machine_key(distro, version, arch, release)
    target = os.fspath(path) if path is not None else default_path(key[3])
    warnings = []
    if os.path.abspath(target) not in search_paths(key[3]):
        warnings.append(f"{target} is not one of libbpf's vmlinux paths for {key[3]} ("
                        f"{', '.join(search_paths(key[3]))}): libbpf-based tools will not "
                        "find it there by themselves")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise InstallError(f"{target}: directory {directory} does not exist")
    there = _what_is_there(target)
    if there not in (None, "corebpf") and not force:
        raise InstallError(f"{target}: exists and is {there}; refusing to replace it "
                           "(--force replaces it)")
    raw, kind, desc, minimized = btf_to_install(source, service=service, key=key,
                                                kernel_btf=kernel_btf, bundle=bundle)
    try:
        from_bytes(raw, source=desc)  # sound BTF, before anything is written
    except Error as e:
        raise InstallError(f"not usable BTF: {e}") from None
    if kind != "kernel" and key[2:] == (_this_arch(), os.uname().release) \
            and os.path.exists(kernel_btf):
        with open(kernel_btf, "rb") as f:
            own = f.read()
        if own != raw:
            if not force:
                raise InstallError(
                    f"{desc}: not this kernel's BTF: it differs from {kernel_btf}, which "
                    "libbpf reads before any vmlinux file (--force installs it anyway)")
            warnings.append(f"{desc} differs from this kernel's own {kernel_btf}")
    if minimized:
        warnings.append(f"{desc} is minimized BTF: only the programs it was minimized for "
                        "relocate against it")
    sha = hashlib.sha256(raw).hexdigest()
    note = {"format": INSTALL_FORMAT, "version": INSTALL_VERSION, "corebpf": __version__,
            "key": list(key), "kind": kind, "source": desc, "btf_sha256": sha,
            "minimized": minimized}
    elf = vmlinux_elf(raw, arch=key[2], note=note)
    from .service import write_atomic

    write_atomic(target, elf, InstallError)
    return Installed(target, desc, kind, key, sha, len(raw), len(elf), minimized, there,
                     warnings)


def _this_arch() -> str:
    from .sources import normalize_arch

    return normalize_arch(os.uname().machine)


def uninstall_btf(path: str | os.PathLike[str] | None = None, *, force: bool = False,
                  release: str | None = None) -> tuple[str, dict[str, Any] | None]:
    """Remove what :func:`install_btf` wrote at ``path`` (default
    ``/boot/vmlinux-<release>``): (path, its note). Another file there is refused
    unless ``force``; no file is an InstallError."""
    target = os.fspath(path) if path is not None else default_path(release)
    there = _what_is_there(target)
    if there is None:
        raise InstallError(f"{target}: nothing installed (no such file)")
    note = read_marker(target) if there == "corebpf" else None
    if there != "corebpf" and not force:
        raise InstallError(f"{target}: is {there}; refusing to remove it (--force "
                           "removes it)")
    try:
        os.unlink(target)
    except OSError as e:
        raise InstallError(f"{target}: cannot remove: {e.strerror}") from None
    return target, note


__all__ = [
    "INSTALL_FORMAT",
    "TOOLS_BUNDLE",
    "InstallError",
    "Installed",
    "btf_to_install",
    "default_path",
    "install_btf",
    "read_marker",
    "search_paths",
    "uninstall_btf",
]
