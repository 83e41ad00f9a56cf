"""Bundles: minimized BTF for a set of objects across a whole archive, in one file to ship
with the program, and the lookup that picks this machine's BTF out of it.

A bundle is an xz-compressed tar holding ``index.json`` and ``btf/<sha256>.btf`` blobs.
Blobs are content-addressed: kernels whose minimized BTF comes out identical (common:
a program needs a few types, and point releases rarely move them) share one blob, which
is what makes a bundle for thousands of kernels small. The index maps each kernel
(distro, version, arch, release, as BTFHub names them) to its blob.

Reading a bundle treats it as untrusted: only the expected member names, regular files,
bounded sizes, JSON of the expected shape, and each blob's sha256 checked before use.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import lzma
import os
import re
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._record import field, record
from .._text import plural
from ..errors import ArchiveError, Error
from .parallel import ExecutorLike, map_kernels
from .sources import (
    KernelEntry,
    discover,
    machine_key,
    normalize_arch,
    read_btf,
)

if TYPE_CHECKING:
    from ..btf.spec import Spec
    from ..btfgen import ObjectBlob
    from .service import ServiceClient

BUNDLE_FORMAT = "corebpf-btf-bundle"
BUNDLE_VERSION = 1
INDEX_NAME = "index.json"
#: a bundle may expand to this much (thousands of kernels' minimized BTF are a few MB)
MAX_BUNDLE = 512 << 20
_BLOB_NAME = re.compile(r"^btf/([0-9a-f]{64})\.btf$")
_KEY_FIELDS = ("distro", "version", "arch", "release")


@record
class BundledKernel:
    """One kernel's row of a bundle index."""

    distro: str
    version: str
    arch: str
    release: str
    #: sha256 of its minimized BTF (the blob's name)
    btf: str
    size: int
    types: int
    relocations: int

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.distro, self.version, self.arch, self.release

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__match_args__}


def minimize_entry(entry: KernelEntry, objects: Sequence[str | ObjectBlob],
                   arch_objects: Mapping[str, Sequence[str | ObjectBlob]] | None = None
                   ) -> tuple[bytes, int, int]:
    """One kernel's minimized BTF for ``objects`` and the ``arch_objects`` of its
    architecture: (raw BTF, type count, relocations). Read and parsed once in the
    worker, for all objects."""
    from ..btf import from_bytes
    from ..btfgen import Minimizer, load_object
    from ..core import Target
    from ..core.engine import FLAVOR_SEP, objects_root_names

    extra = (arch_objects or {}).get(entry.arch, ())
    objs = [load_object(p) for p in (*objects, *extra)]
    raw = read_btf(entry)
    spec = from_bytes(raw, source=entry.path, find_names=objects_root_names(objs),
                      prefix_sep=FLAVOR_SEP)
    m = Minimizer(Target(spec))
    relocations = len(m.add_objects(objs))
    return m.to_bytes(), m.type_count, relocations


@record
class BundleReport:
    """What :func:`build_bundle` wrote."""

    path: str
    kernels: int
    blobs: int
    #: minimized bytes of every kernel, before and after content addressing
    raw_bytes: int
    stored_bytes: int
    #: the bundle file's size (compressed)
    file_size: int
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def dedup_ratio(self) -> float:
        """Kernels per stored blob (how many times deduplication shrank the set)."""
        return self.kernels / self.blobs if self.blobs else 0.0


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tar_add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build_bundle(objects: Sequence[str | os.PathLike[str]],
                 archive: str | os.PathLike[str] | Iterable[KernelEntry],
                 out_path: str | os.PathLike[str], *,
                 executor: ExecutorLike | None = None,
                 jobs: int | None = None, progress: bool | None = None,
                 arch_objects: Mapping[str, Sequence[str | os.PathLike[str]]] | None = None
                 ) -> BundleReport:
    """Minimize every kernel of ``archive`` for ``objects`` and pack the results.

    ``arch_objects`` maps an architecture (as :func:`~.sources.normalize_arch` names it)
    to objects that only its kernels run (built with ``-D__TARGET_ARCH_...``: their
    pt_regs reads relocate against that architecture's layout only).

    Kernels that cannot be read or minimized are skipped and listed in the report and
    the bundle's index; two entries with the same (distro, version, arch, release) keep
    the first. The same inputs give the same bytes.
    """
    from ..btfgen import load_object, object_blob

    # the workers get the objects' bytes: a cluster's need not see the files
    sent = [object_blob(p) for p in objects]
    per_arch = {normalize_arch(a): [object_blob(p) for p in ps]
                for a, ps in sorted((arch_objects or {}).items())}
    for b in (*sent, *(q for ps in per_arch.values() for q in ps)):
        load_object(b)  # a bad object fails the whole job, before any kernel
    entries = (discover(archive) if isinstance(archive, str | os.PathLike)
               else list(archive))
    outcomes = map_kernels(functools.partial(minimize_entry, objects=sent,
                                             arch_objects=per_arch or None), entries,
                           executor=executor, jobs=jobs, progress=progress)
    blobs: dict[str, bytes] = {}
    rows: list[BundledKernel] = []
    seen: set[tuple[str, str, str, str]] = set()
    skipped: list[tuple[str, str]] = []
    raw_bytes = 0
    for outcome in outcomes:
        entry = outcome.item
        assert isinstance(entry, KernelEntry)
        if outcome.value is None:
            skipped.append((outcome.path, outcome.error or "unknown error"))
            continue
        if entry.key in seen:
            skipped.append((outcome.path, "same distro/version/arch/release as an earlier "
                                          "kernel"))
            continue
        seen.add(entry.key)
        data, types, relocations = outcome.value
        sha = hashlib.sha256(data).hexdigest()
        blobs.setdefault(sha, data)
        raw_bytes += len(data)
        rows.append(BundledKernel(entry.distro, entry.version, entry.arch, entry.release,
                                  sha, len(data), types, relocations))
    index = {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
        "objects": [{"name": os.path.basename(b.name), "sha256": _sha(b.data)} for b in sent]
        + [{"name": os.path.basename(b.name), "sha256": _sha(b.data), "arch": a}
           for a, bs in per_arch.items() for b in bs],
        "kernels": [r.to_json() for r in rows],
        "skipped": [{"path": p, "error": e} for p, e in skipped],
    }
    out = os.fspath(out_path)
    try:
        with lzma.open(out, "wb", preset=9 | lzma.PRESET_EXTREME) as xz, \
                tarfile.open(fileobj=xz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _tar_add(tar, INDEX_NAME, json.dumps(index, indent=1).encode() + b"\n")
            for sha in sorted(blobs):
                _tar_add(tar, f"btf/{sha}.btf", blobs[sha])
    except OSError as e:
        raise ArchiveError(f"{out}: cannot write: {e.strerror}") from None
    return BundleReport(out, len(rows), len(blobs), raw_bytes,
                        sum(len(b) for b in blobs.values()), os.path.getsize(out), skipped)


# -- reading and lookup ------------------------------------------------------------------


@record
class Match:
    """What :meth:`Bundle.lookup` found, and by which rule."""

    kernel: BundledKernel
    #: "exact" (distro, version, arch, release) or "release" (arch and release only,
    #: every such kernel sharing one blob)
    rule: str
    btf: bytes


class Bundle:
    """A bundle read into memory and checked; :meth:`lookup` finds a machine's BTF."""

    def __init__(self, path: str, index: dict[str, Any], kernels: list[BundledKernel],
                 blobs: dict[str, bytes]):
        self.path = path
        self.index = index
        self.kernels = kernels
        self._blobs = blobs

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, max_size: int = MAX_BUNDLE) -> Bundle:
        """Read and validate a bundle; ArchiveError names the file and what is wrong."""
        src = os.fspath(path)
        try:
            with open(src, "rb") as f:
                data = f.read(max_size + 1)
        except OSError as e:
            raise ArchiveError(f"{src}: cannot read: {e.strerror}") from None
        return cls.from_bytes(data, src, max_size=max_size)

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bundle>", *,
                   max_size: int = MAX_BUNDLE) -> Bundle:
        if len(data) > max_size:
            raise ArchiveError(f"{source}: more than {max_size} bytes")
        try:
            d = lzma.LZMADecompressor()
            body = d.decompress(data, max_length=max_size + 1)
            if len(body) > max_size:
                raise ArchiveError(f"{source}: decompresses to more than {max_size} bytes")
            if not d.eof:
                raise ArchiveError(f"{source}: truncated xz stream")
        except (lzma.LZMAError, EOFError) as e:
            raise ArchiveError(f"{source}: not an xz-compressed bundle: {e}") from None
        members: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
                for m in tar:
                    if not m.isreg():
                        raise ArchiveError(f"{source}: member {m.name!r} is not a regular "
                                           "file")
                    if m.name != INDEX_NAME and not _BLOB_NAME.match(m.name):
                        raise ArchiveError(f"{source}: unexpected member {m.name!r}")
                    if m.name in members:
                        raise ArchiveError(f"{source}: member {m.name!r} appears twice")
                    f = tar.extractfile(m)
                    assert f is not None
                    members[m.name] = f.read(m.size)
        except (tarfile.TarError, EOFError, ValueError, OSError) as e:
            raise ArchiveError(f"{source}: corrupt bundle: {e}") from None
        if INDEX_NAME not in members:
            raise ArchiveError(f"{source}: no {INDEX_NAME}")
        try:
            index = json.loads(members.pop(INDEX_NAME))
        except (ValueError, UnicodeDecodeError) as e:
            raise ArchiveError(f"{source}: {INDEX_NAME} is not JSON: {e}") from None
        kernels = _check_index(index, source)
        blobs = {_BLOB_NAME.match(name)[1]: blob  # type: ignore[index]
                 for name, blob in members.items()}
        for k in kernels:
            if k.btf not in blobs:
                raise ArchiveError(f"{source}: kernel {k.release} names blob {k.btf} "
                                   "which the bundle does not hold")
        return cls(source, index, kernels, blobs)

    def blob(self, sha: str) -> bytes:
        """A stored BTF, its sha256 checked."""
        data = self._blobs.get(sha)
        if data is None:
            raise ArchiveError(f"{self.path}: no blob {sha}")
        if hashlib.sha256(data).hexdigest() != sha:
            raise ArchiveError(f"{self.path}: blob btf/{sha}.btf does not match its sha256")
        return data

    def lookup(self, *, distro: str | None = None, version: str | None = None,
               arch: str | None = None, release: str | None = None) -> Match | None:
        """This machine's BTF (or the one described): each argument left out is read
        from /etc/os-release (ID, VERSION_ID), ``uname -m`` and ``uname -r``, the key
        Tracee and Inspektor Gadget use for BTFHub.

        An exact (distro, version, arch, release) match wins; failing that, kernels of
        the same arch and release that all share one blob (the same kernel packaged for
        another distro version) are a match too. None when nothing fits.
        """
        want = machine_key(distro, version, arch, release)
        arch, release = want[2], want[3]
        for k in self.kernels:
            if k.key == want:
                return Match(k, "exact", self.blob(k.btf))
        same = [k for k in self.kernels if (k.arch, k.release) == (arch, release)]
        if same and len({k.btf for k in same}) == 1:
            return Match(same[0], "release", self.blob(same[0].btf))
        return None

    def require(self, *, distro: str | None = None, version: str | None = None,
                arch: str | None = None, release: str | None = None) -> Match:
        """:meth:`lookup`, or :class:`NoBTFError` naming the key searched (each part as
        read from this machine when not given) and the bundle's nearest entries."""
        match = self.lookup(distro=distro, version=version, arch=arch, release=release)
        if match is not None:
            return match
        want = machine_key(distro, version, arch, release)
        near = nearest_kernels(self.kernels, want)
        if near:
            hint = "nearest entries: " + ", ".join("/".join(k.key) for k in near)
        else:
            arches = sorted({k.arch for k in self.kernels})
            hint = (f"it has no {want[2]} kernels (only {', '.join(arches) or 'none'})")
        raise NoBTFError(f"{self.path}: no BTF for {_key_text(want)} "
                         f"({plural(len(self.kernels), 'kernel')}); {hint}", key=want,
                         tried=[self.path], nearest=near)

    @property
    def blob_count(self) -> int:
        return len(self._blobs)


def _check_index(index: Any, source: str) -> list[BundledKernel]:
    if not isinstance(index, dict) or index.get("format") != BUNDLE_FORMAT:
        raise ArchiveError(f"{source}: {INDEX_NAME} is not a corebpf bundle index")
    if index.get("version") != BUNDLE_VERSION:
        raise ArchiveError(f"{source}: bundle version {index.get('version')!r} is not "
                           f"{BUNDLE_VERSION}")
    rows = index.get("kernels")
    if not isinstance(rows, list):
        raise ArchiveError(f"{source}: {INDEX_NAME} has no kernel list")
    names = BundledKernel.__match_args__
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != set(names):
            raise ArchiveError(f"{source}: kernel #{i} does not have a bundle row's fields")
        for name in names:
            want = str if name in (*_KEY_FIELDS, "btf") else int
            if type(row[name]) is not want:
                raise ArchiveError(f"{source}: kernel #{i}: {name} is not {want.__name__}")
        out.append(BundledKernel(**row))
    return out


def lookup_btf(bundle: str | os.PathLike[str], **key: str | None) -> bytes | None:
    """This machine's minimized BTF from ``bundle`` (see :meth:`Bundle.lookup`)."""
    match = Bundle.open(bundle).lookup(**key)
    return None if match is None else match.btf


def core_btf_for(bundle: str | os.PathLike[str], *,
                 kernel_btf: str = "/sys/kernel/btf/vmlinux", **key: str | None
                 ) -> bytes | None:
    """What the loader relocates against given a bundle: None (the kernel's own BTF)
    when the kernel has one, else the raw BTF :func:`select_core_btf` finds (a vmlinux
    on disk, or this machine's entry of the bundle). :class:`NoBTFError` when there is
    none, naming the machine looked for and the bundle's nearest kernels."""
    choice = select_core_btf(bundle=bundle, kernel_btf=kernel_btf, distro=key.get("distro"),
                             version=key.get("version"), arch=key.get("arch"),
                             release=key.get("release"))
    return None if choice.kind == "kernel" else choice.spec.raw


# -- choosing the CO-RE target -----------------------------------------------------------

#: where libbpf (btf__load_vmlinux_btf) looks for a vmlinux ELF with .BTF when the
#: kernel exposes no /sys/kernel/btf/vmlinux, in its order; {r} is ``uname -r``
VMLINUX_PATHS = (
    "/boot/vmlinux-{r}",
    "/lib/modules/{r}/vmlinux-{r}",
    "/lib/modules/{r}/build/vmlinux",
    "/usr/lib/modules/{r}/kernel/vmlinux",
    "/usr/lib/debug/boot/vmlinux-{r}",
    "/usr/lib/debug/boot/vmlinux-{r}.debug",
    "/usr/lib/debug/lib/modules/{r}/vmlinux",
)
#: how many of a bundle's kernels a :class:`NoBTFError` names
NEAREST = 5


class NoBTFError(ArchiveError):
    """No BTF describes this kernel: not its own, no vmlinux on disk, no bundle entry.

    ``key`` is the (distro, version, arch, release) looked for, ``tried`` the files
    and bundle looked in, ``nearest`` the bundle's closest kernels (same architecture,
    same distro first, closest release), for a human to pick one with ``--btf``.
    """

    def __init__(self, message: str, *, key: tuple[str, str, str, str],
                 tried: Sequence[str] = (), nearest: Sequence[BundledKernel] = ()):
        self.key = key
        self.tried = list(tried)
        self.nearest = list(nearest)
        super().__init__(message)


@record
class CoreBTFChoice:
    """The BTF CO-RE relocates against on this machine, and where it came from."""

    spec: Spec
    #: "explicit" (the caller's), "kernel" (/sys/kernel/btf/vmlinux), "vmlinux" (an ELF
    #: on disk), "bundle" or "service"
    kind: str
    #: for a human: the file, or "bundle B entry distro/version/arch/release (rule)"
    source: str
    #: the machine: (distro, version, arch, release)
    key: tuple[str, str, str, str]
    #: the bundle row used, for kind "bundle"
    match: Match | None = None


def _release_numbers(release: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", release)[:8])


def nearest_kernels(kernels: Iterable[BundledKernel], key: tuple[str, str, str, str],
                    limit: int = NEAREST) -> list[BundledKernel]:
    """The kernels closest to ``key``: same architecture only (another's BTF is of no
    use), then same distro and version first, then the longest run of equal leading
    release numbers and the smallest gap in the first one that differs."""
    distro, version, arch, release = key
    want = _release_numbers(release)

    def rank(k: BundledKernel) -> tuple[int, int, int, int, str]:
        have = _release_numbers(k.release)
        same = 0
        while same < min(len(want), len(have)) and want[same] == have[same]:
            same += 1
        gap = (abs(want[same] - have[same]) if same < min(len(want), len(have))
               else 0)
        return (k.distro != distro, k.version != version, -same, gap, k.release)

    return sorted((k for k in kernels if k.arch == arch), key=rank)[:limit]


def _key_text(key: tuple[str, str, str, str]) -> str:
    return ", ".join(f"{n}={v or '?'}" for n, v in zip(_KEY_FIELDS, key, strict=True))


def select_core_btf(btf: Spec | str | os.PathLike[str] | None = None,
                    bundle: Bundle | str | os.PathLike[str] | None = None, *,
                    kernel_btf: str = "/sys/kernel/btf/vmlinux",
                    vmlinux_paths: Sequence[str] = VMLINUX_PATHS,
                    distro: str | None = None, version: str | None = None,
                    arch: str | None = None, release: str | None = None,
                    service: str | ServiceClient | None = None,
                    objects: Sequence[Any] = ()) -> CoreBTFChoice:
    """Decide the BTF that describes this kernel for CO-RE, in libbpf's order and then
    the bundle's: ``btf`` when given (a Spec, or a path in any container); the kernel's
    own ``/sys/kernel/btf/vmlinux``; the first vmlinux of ``vmlinux_paths`` that holds
    BTF; this machine's entry of ``bundle``; last, a BTF ``service`` (a URL or a
    :class:`~.service.ServiceClient`): this kernel's BTF minimized for ``objects`` (paths,
    bytes or ObjectSpecs; the whole BTF without them), cached by the client. The machine
    is (``distro``, ``version``, ``arch``, ``release``), each part left out read from
    /etc/os-release and uname.

    :class:`NoBTFError` when none applies: it names the key, every place looked in (the
    service's own error too), and the bundle's nearest kernels. A ``btf`` that cannot
    be read is a BTFError naming it (an explicit choice is never passed over).
    """
    from ..btf import Spec, from_bytes, load

    want = machine_key(distro, version, arch, release)
    if isinstance(btf, Spec):
        return CoreBTFChoice(btf, "explicit", btf.source or "<btf>", want)
    if btf is not None:
        return CoreBTFChoice(load(btf), "explicit", os.fspath(btf), want)
    if os.path.exists(kernel_btf):
        return CoreBTFChoice(load(kernel_btf), "kernel", kernel_btf, want)
    tried = [f"no {kernel_btf}"]
    missing = []
    for template in vmlinux_paths:
        path = template.format(r=want[3])
        if not os.path.exists(path):
            missing.append(path)
            continue
        try:
            return CoreBTFChoice(load(path), "vmlinux", path, want)
        except Error as e:  # libbpf too goes on to the next place
            tried.append(f"{path}: {e}")
    if missing:
        tried.append(f"no {', '.join(missing)}")
    if bundle is None:
        got = _from_service(service, want, objects)
        if isinstance(got, CoreBTFChoice):
            return got
        if got is not None:
            tried.append(got)
        raise NoBTFError(f"no BTF for this kernel ({_key_text(want)}): "
                         f"{'; '.join(tried)}; give a BTF bundle or a BTF file"
                         f"{'' if service is None else ' or another service'}", key=want,
                         tried=tried)
    b = bundle if isinstance(bundle, Bundle) else Bundle.open(bundle)
    match = b.lookup(distro=want[0], version=want[1], arch=want[2], release=want[3])
    if match is not None:
        k = match.kernel
        source = f"bundle {b.path} entry {'/'.join(k.key)} ({match.rule} match)"
        return CoreBTFChoice(from_bytes(match.btf, source=f"{b.path}:{'/'.join(k.key)}"),
                             "bundle", source, want, match)
    near = nearest_kernels(b.kernels, want)
    if near:
        hint = "nearest entries: " + ", ".join("/".join(k.key) for k in near)
    else:
        arches = sorted({k.arch for k in b.kernels})
        hint = (f"the bundle has no {want[2]} kernels (only "
                f"{', '.join(arches) or 'none'})")
    tried.append(f"no entry in bundle {b.path} ({len(b.kernels)} kernels)")
    got = _from_service(service, want, objects)
    if isinstance(got, CoreBTFChoice):
        return got
    looked = tried[:-1]
    if got is not None:
        tried.append(got)
        looked.append(got)
    raise NoBTFError(f"{b.path}: no BTF for {'/'.join(want)} ({_key_text(want)}, or any "
                     f"distro's arch={want[2]} release={want[3]}); {hint}; "
                     f"{'; '.join(looked)}", key=want, tried=tried, nearest=near)


def _from_service(service: str | ServiceClient | None, want: tuple[str, str, str, str],
                  objects: Sequence[Any]) -> CoreBTFChoice | str | None:
    """The service's BTF for ``want`` as a choice; else what went wrong (None without a
    service)."""
    if service is None:
        return None
    from ..btf import from_bytes
    from .service import ServiceClient

    client = service if isinstance(service, ServiceClient) else ServiceClient(service)
    try:
        got = client.fetch(want, objects)
        names = [os.path.basename(str(getattr(o, "source", o))) if not isinstance(
            o, bytes | bytearray) else "object" for o in objects]
        what = f"minimized for {', '.join(names)}" if names else "whole BTF"
        how = {"network": "fetched", "revalidated": "cached, current",
               "stale": "cached copy: the service is unreachable"}[got.origin]
        source = f"service {client.url} entry {'/'.join(want)} ({what}; {how})"
        spec = from_bytes(got.btf, source=f"{client.url}:{'/'.join(want)}")
    except Error as e:
        text = str(e)
        return text if client.url in text else f"service {client.url}: {text}"
    return CoreBTFChoice(spec, "service", source, want)


__all__ = [
    "BUNDLE_FORMAT",
    "VMLINUX_PATHS",
    "Bundle",
    "BundleReport",
    "BundledKernel",
    "CoreBTFChoice",
    "Match",
    "NoBTFError",
    "build_bundle",
    "core_btf_for",
    "lookup_btf",
    "minimize_entry",
    "nearest_kernels",
    "select_core_btf",
]
