"""Where an archive's kernels come from: a BTFHub-layout tree, Debian/Ubuntu kernel packages,
vmlinux ELF files and raw BTF files, found by :func:`discover` and read by :func:`read_btf`.

Discovery looks at names and a few header bytes only, so listing an archive of thousands
of kernels costs no decompression; the BTF itself is read (bounded) by the worker that
uses it. Tarballs of whole trees are unpacked by :func:`safe_extract`, which writes
nothing outside its target: no absolute paths, no ``..``, no links or devices, bounded
member and total sizes.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Iterator

from .._record import field, record
from ..errors import ArchiveError, Error

#: what one input may weigh, on disk or decompressed (the largest kernel BTF is ~10 MB,
#: the largest Debian kernel package ~120 MB)
MAX_SIZE = 256 << 20

BTFHUB, DEB, VMLINUX, RAW = "btfhub", "deb", "vmlinux", "raw"

_ARCH_NAMES = {"aarch64": "arm64", "arm64": "arm64", "amd64": "x86_64", "x86_64": "x86_64",
               "x86-64": "x86_64", "ppc64el": "ppc64le", "ppc64le": "ppc64le",
               "s390x": "s390x", "riscv64": "riscv64", "i386": "x86", "i686": "x86"}
#: raw BTF suffixes, longest first: what is left is the kernel release
_RAW_SUFFIXES = (".btf.xz", ".btf.gz", ".btf")
_BTF_MAGIC = (b"\x9f\xeb", b"\xeb\x9f")
_ELF_MAGIC = b"\x7fELF"


def normalize_arch(name: str) -> str:
    """One name per architecture: BTFHub's ``arm64`` and ``aarch64`` directories (and
    Debian's ``amd64``) are the same machines."""
    return _ARCH_NAMES.get(name.lower(), name.lower())


@record
class KernelEntry:
    """One kernel of an archive: its file and what is known of it before reading it."""

    path: str
    distro: str = ""
    version: str = ""
    arch: str = ""
    release: str = ""
    #: btfhub (a .btf.tar.xz), deb (a kernel package), vmlinux (ELF), raw (BTF, maybe .xz/.gz)
    kind: str = RAW
    #: for split (module) BTF: the vmlinux it continues
    base: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What a lookup matches on: (distro, version, arch, release)."""
        return self.distro, self.version, self.arch, self.release


# -- discovery ---------------------------------------------------------------------------

_DEB_NAME = re.compile(
    r"^linux-image-(?:(?P<unsigned>unsigned)-)?(?P<release>\d[^_]*?)(?:-unsigned)?"
    r"(?:-dbg(?:sym)?)?_(?P<pkgver>[^_]+)_(?P<arch>[^_.]+)\.d?deb$")


def _deb_entry(path: str) -> KernelEntry | None:
    m = _DEB_NAME.match(os.path.basename(path))
    if m is None:
        return None
    pkgver = m["pkgver"]
    # Ubuntu's signed/unsigned split names its packages linux-image-unsigned-<release>;
    # its versions carry "ubuntu" or look like 5.15.0-91.101; Debian's end in -N or +debN.
    ubuntu = bool(m["unsigned"]) or "ubuntu" in pkgver or re.fullmatch(
        r"\d+\.\d+\.\d+-\d+\.\d+(~.*)?", pkgver) is not None
    return KernelEntry(path, distro="ubuntu" if ubuntu else "debian", arch=normalize_arch(
        m["arch"]), release=m["release"], kind=DEB, extra={"package_version": pkgver})


def _sniff(path: str) -> str | None:
    """vmlinux (ELF), raw (BTF or compressed) or None, from the first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError:
        return None
    if head.startswith(_ELF_MAGIC):
        return VMLINUX
    if head[:2] in _BTF_MAGIC:
        return RAW
    return None


def entry_for(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
              ) -> KernelEntry | None:
    """What one file is, or None when it holds no kernel BTF corebpf knows how to read.

    Under ``root``, a file at ``<distro>/<version>/<arch>/<file>`` takes its distro,
    version and arch from the directories, as BTFHub lays them out.
    """
    p = os.fspath(path)
    name = os.path.basename(p)
    entry: KernelEntry | None
    if os.path.realpath(p) == "/sys/kernel/btf/vmlinux":
        return running_kernel(p)
    if name.endswith(".btf.tar.xz"):
        entry = KernelEntry(p, release=name.removesuffix(".btf.tar.xz"), kind=BTFHUB)
    elif name.endswith((".deb", ".ddeb")):
        entry = _deb_entry(p)
    elif name.endswith(_RAW_SUFFIXES):
        release = next(name.removesuffix(s) for s in _RAW_SUFFIXES if name.endswith(s))
        entry = KernelEntry(p, release=release, kind=RAW)
    else:
        kind = _sniff(p)
        if kind is None:
            return None
        release = name.removeprefix("vmlinux-") if name.startswith("vmlinux-") else ""
        entry = KernelEntry(p, release=release, kind=kind)
    if entry is None:
        return None
    if root is not None:
        parts = os.path.relpath(p, root).split(os.sep)
        if len(parts) >= 4:
            entry.distro, entry.version, arch = parts[-4], parts[-3], parts[-2]
            entry.arch = normalize_arch(arch)
        elif len(parts) == 3 and parts[1].lower() in _ARCH_NAMES:  # <distro>/<arch>/<file>
            entry.distro, entry.arch = parts[0], normalize_arch(parts[1])
    if not entry.arch and entry.release:
        entry.arch = _arch_from_release(entry.release)
    return entry


def os_release(path: str = "/etc/os-release") -> dict[str, str]:
    """The KEY=value pairs of an os-release file (quotes removed); empty when missing."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.strip().partition("=")
                if sep and key and not key.startswith("#"):
                    out[key] = value.strip().strip("\"'")
    except OSError:
        pass
    return out


def machine_key(distro: str | None = None, version: str | None = None,
                arch: str | None = None, release: str | None = None
                ) -> tuple[str, str, str, str]:
    """(distro, version, arch, release) with each one left out read from this machine:
    /etc/os-release's ID and VERSION_ID, ``uname -m`` and ``uname -r``, the key Tracee
    and Inspektor Gadget use for BTFHub."""
    if distro is None or version is None:
        osr = os_release()
        distro = osr.get("ID", "") if distro is None else distro
        version = osr.get("VERSION_ID", "") if version is None else version
    u = os.uname()
    return (distro, version, normalize_arch(arch if arch is not None else u.machine),
            u.release if release is None else release)


def running_kernel(path: str = "/sys/kernel/btf/vmlinux") -> KernelEntry:
    """This machine as an archive entry, keyed as a lookup here would look it up."""
    distro, version, arch, release = machine_key()
    return KernelEntry(path, distro=distro, version=version, arch=arch, release=release,
                       kind=RAW)


def _arch_from_release(release: str) -> str:
    """Many releases end in their architecture (``4.18.0-147.el8.aarch64``, ``-amd64``)."""
    m = re.search(r"[.-](aarch64|arm64|x86_64|amd64|ppc64le|s390x)$", release)
    return normalize_arch(m[1]) if m else ""


def _walk(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        # split module BTF is not a kernel of its own (modules/<release>/<module>.btf)
        dirnames[:] = sorted(d for d in dirnames if d != "modules")
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if os.path.isfile(path) and not os.path.islink(path):
                yield path


def discover(root: str | os.PathLike[str]) -> list[KernelEntry]:
    """Every kernel under ``root`` (a directory, or one file), in a stable order.

    Files that are not kernel BTF in any form corebpf reads (READMEs, checksums) are
    passed over; files that look like BTF but turn out corrupt are found here and fail
    when read, so that the failure is reported with the kernel's path.
    """
    r = os.fspath(root)
    if os.path.isfile(r):
        entry = entry_for(r)
        if entry is None:
            raise ArchiveError(f"{r}: not a kernel BTF, package or vmlinux")
        return [entry]
    if not os.path.isdir(r):
        raise ArchiveError(f"{r}: no such file or directory")
    entries = [e for e in (entry_for(p, r) for p in _walk(r)) if e is not None]
    return entries


# -- reading -----------------------------------------------------------------------------


def _read_file(path: str, max_size: int) -> bytes:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_size:
                raise ArchiveError(f"{path}: {size} bytes is more than the "
                                   f"{max_size >> 20} MiB an archive input may weigh")
            return f.read(max_size + 1)
    except OSError as e:
        raise ArchiveError(f"{path}: cannot read: {e.strerror}") from None


def read_btf(entry: KernelEntry | str | os.PathLike[str], *, max_size: int = MAX_SIZE
             ) -> bytes:
    """The raw BTF of one kernel, whatever it came in; ArchiveError names the file."""
    from .. import kernel_image
    from ..btf.files import unwrap

    if not isinstance(entry, KernelEntry):
        found = entry_for(entry)
        entry = found if found is not None else KernelEntry(os.fspath(entry))
    path = entry.path
    data = _read_file(path, max_size)
    try:
        if entry.kind == DEB:
            _, image = kernel_image.deb_vmlinuz(data)
            del data
            btf = kernel_image.elf_section(kernel_image.extract_vmlinux(image, max_size),
                                           ".BTF")
            if not btf:
                raise ArchiveError(f"{path}: the package's vmlinux has no .BTF section")
            return btf
        raw, _ = unwrap(data, path)
    except ArchiveError:
        raise
    except Error as e:
        text = str(e)
        raise ArchiveError(text if path in text else f"{path}: {text}") from None
    if raw[:2] not in _BTF_MAGIC:
        raise ArchiveError(f"{path}: not BTF (magic {raw[:2].hex() or 'missing'})")
    return raw


def file_sha256(path: str | os.PathLike[str]) -> str:
    """A file's sha256, read in chunks (kernel packages weigh ~100 MB)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# -- safe extraction ---------------------------------------------------------------------


@record
class ExtractReport:
    """What :func:`safe_extract` wrote, and each member it refused with why."""

    written: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)


def _member_problem(m: tarfile.TarInfo, max_member: int) -> str | None:
    name = m.name
    if not (m.isreg() or m.isdir()):
        return "not a regular file or directory (links, devices and fifos are refused)"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "path leaves the target directory"
    if "\0" in name:
        return "NUL in name"
    if m.isreg() and m.size > max_member:
        return f"{m.size} bytes is more than the {max_member} a member may weigh"
    return None


def safe_extract(tarball: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                 max_member: int = MAX_SIZE, max_total: int = 16 << 30,
                 max_members: int = 1_000_000) -> ExtractReport:
    """Unpack a tar (plain, .gz, .xz, .bz2) into ``dest``, refusing what could write
    outside it: absolute names, ``..``, symbolic and hard links, devices and fifos, and
    members past ``max_member`` bytes. A refused member is reported, not fatal; a corrupt
    tarball or one past ``max_total``/``max_members`` raises ArchiveError naming it after
    what came before was written. Never follows a link already inside ``dest``.
    """
    src = os.fspath(tarball)
    root = os.path.realpath(dest)
    os.makedirs(root, exist_ok=True)
    report = ExtractReport()
    total = count = 0
    try:
        with tarfile.open(src, mode="r:*") as tar:
            for m in tar:
                count += 1
                if count > max_members:
                    raise ArchiveError(f"{src}: more than {max_members} members")
                problem = _member_problem(m, max_member)
                if problem is None:
                    target = os.path.realpath(os.path.join(root, m.name))
                    if target != root and not target.startswith(root + os.sep):
                        problem = "path leaves the target directory"
                if problem is not None:
                    report.refused.append((m.name, problem))
                    continue
                if m.isdir():
                    os.makedirs(target, exist_ok=True)
                    continue
                total += m.size
                if total > max_total:
                    raise ArchiveError(f"{src}: members add up to more than {max_total} bytes")
                os.makedirs(os.path.dirname(target), exist_ok=True)
                if os.path.islink(target):  # never write through a link
                    os.unlink(target)
                f = tar.extractfile(m)
                if f is None:
                    report.refused.append((m.name, "no data"))
                    continue
                written = 0
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                             0o644)
                with os.fdopen(fd, "wb") as out:
                    while chunk := f.read(1 << 20):
                        written += len(chunk)
                        if written > m.size:  # the header lied
                            raise ArchiveError(f"{src}: member {m.name!r} is longer than "
                                               "its header says")
                        out.write(chunk)
                report.written.append(target)
    except (tarfile.TarError, EOFError, OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise ArchiveError(f"{src}: corrupt or unreadable tarball: {why}") from None
    return report


__all__ = [
    "BTFHUB",
    "DEB",
    "MAX_SIZE",
    "RAW",
    "VMLINUX",
    "ExtractReport",
    "KernelEntry",
    "discover",
    "entry_for",
    "file_sha256",
    "machine_key",
    "normalize_arch",
    "os_release",
    "read_btf",
    "running_kernel",
    "safe_extract",
]
