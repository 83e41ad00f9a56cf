"""BTFGen: minimized kernel BTF for a set of BPF objects (bpftool's ``gen min_core_btf``),
for one kernel (:func:`minimize`) or one file at a time for archive-wide jobs
(:func:`minimize_file`, picklable, so any Executor can map it over kernels)."""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Sequence
from functools import lru_cache

from .._record import record
from ..btf import Spec, load
from ..core import Target
from ..core.engine import FLAVOR_SEP, objects_root_names
from ..errors import Error
from ..obj.object import ObjectSpec
from .minimize import Minimizer, RelocationNeeds, minimize, needs_of

TYPE_CHECKING = False

if TYPE_CHECKING:
    from ..archive.parallel import ExecutorLike

#: Container suffixes stripped from an input's name to name its output
_SUFFIXES = (".tar.xz", ".xz", ".deb", ".ddeb", ".btf")


def output_name(btf_path: str | os.PathLike[str]) -> str:
    """``5.4.0-1.btf.tar.xz`` -> ``5.4.0-1.btf``; ``vmlinux`` -> ``vmlinux.btf``."""
    name = os.path.basename(os.fspath(btf_path))
    for suffix in _SUFFIXES:
        name = name.removesuffix(suffix)
    return name + ".btf"


@record
class MinimizeResult:
    """One kernel's minimized BTF: where it went and what it holds."""

    btf_path: str
    out_path: str
    size: int
    types: int
    relocations: int
    sha256: str


@record
class ObjectBlob:
    """An object file's bytes under its name: what archive jobs send to their workers,
    so that a cluster's workers need not see the file (only the kernels they read)."""

    name: str
    data: bytes


def object_blob(path: str | os.PathLike[str] | ObjectBlob) -> ObjectBlob:
    """The file at ``path`` read into an :class:`ObjectBlob` named by the path."""
    if isinstance(path, ObjectBlob):
        return path
    try:
        with open(path, "rb") as f:
            return ObjectBlob(os.fspath(path), f.read())
    except OSError as e:
        raise Error(f"{os.fspath(path)}: cannot read: {e.strerror}") from None


def object_name(obj: str | os.PathLike[str] | ObjectBlob) -> str:
    """How reports name an object: its path, or the path its blob was read from."""
    return obj.name if isinstance(obj, ObjectBlob) else os.fspath(obj)


@lru_cache(maxsize=64)
def _object(path: str, mtime_ns: int, size: int) -> ObjectSpec:
    return ObjectSpec.load(path)


@lru_cache(maxsize=64)
def _object_data(name: str, data: bytes) -> ObjectSpec:
    return ObjectSpec(data, source=name)


def load_object(path: str | os.PathLike[str] | ObjectBlob) -> ObjectSpec:
    """An object parsed once per worker process (keyed by path, mtime and size, or by a
    blob's name and bytes)."""
    if isinstance(path, ObjectBlob):
        return _object_data(path.name, path.data)
    try:
        st = os.stat(path)
    except OSError as e:
        raise Error(f"{os.fspath(path)}: cannot read: {e.strerror}") from None
    return _object(os.fspath(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=2)
def _base(path: str, mtime_ns: int, size: int) -> Spec:
    return load(path, index_names=True)


def _load_base(path: str | os.PathLike[str]) -> Spec:
    """A base (vmlinux) BTF that many split inputs share, parsed once per process."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise Error(f"{os.fspath(path)}: cannot read: {e.strerror}") from None
    return _base(os.fspath(path), st.st_mtime_ns, st.st_size)


def minimize_file(object_paths: Sequence[str | os.PathLike[str] | ObjectBlob],
                  btf_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                  base: str | os.PathLike[str] | None = None,
                  modules: Sequence[str | os.PathLike[str]] = (),
                  keep_decl_tags: bool = False) -> MinimizeResult:
    """Minimize one kernel's BTF file (any container :func:`corebpf.btf.load` reads) for
    ``object_paths`` and write raw BTF to ``out_path``.

    ``base``: ``btf_path`` is split BTF (a module) on this vmlinux; the output then holds
    what is needed of both. ``modules``: split BTFs on ``btf_path`` searched after it, as
    libbpf searches kernel modules. Raises :class:`corebpf.errors.Error` naming the file
    that could not be used.
    """
    data, types, relocations = _minimized(object_paths, btf_path, base=base, modules=modules,
                                          keep_decl_tags=keep_decl_tags)
    _write(out_path, data)
    return MinimizeResult(os.fspath(btf_path), os.fspath(out_path), len(data), types,
                          relocations, hashlib.sha256(data).hexdigest())


def _write(out_path: str | os.PathLike[str], data: bytes) -> None:
    try:
        with open(out_path, "wb") as f:
            f.write(data)
    except OSError as e:
        raise Error(f"{os.fspath(out_path)}: cannot write: {e.strerror}") from None


def _minimized(object_paths: Sequence[str | os.PathLike[str] | ObjectBlob],
               btf_path: str | os.PathLike[str], *, base: str | os.PathLike[str] | None,
               modules: Sequence[str | os.PathLike[str]], keep_decl_tags: bool
               ) -> tuple[bytes, int, int]:
    """minimize_file's work without the writing: (raw BTF, type count, relocations)."""
    objects = [load_object(p) for p in object_paths]
    target: Target
    if base is not None:
        vmlinux = _load_base(base)
        target = Target(vmlinux, [load(btf_path, base=vmlinux, index_names=True)])
    else:  # the types of every root name are found while indexing
        names = objects_root_names(objects)
        if os.fspath(btf_path).endswith((".deb", ".ddeb")):  # vmlinuz inside a package
            from ..archive.sources import read_btf

            vmlinux = Spec(read_btf(btf_path), source=os.fspath(btf_path), find_names=names,
                           prefix_sep=FLAVOR_SEP)
        else:
            vmlinux = load(btf_path, find_names=names, prefix_sep=FLAVOR_SEP)
        target = Target(vmlinux, [load(m, base=vmlinux) for m in modules])
    m = Minimizer(target, keep_decl_tags=keep_decl_tags)
    relocations = len(m.add_objects(objects))
    return m.to_bytes(), m.type_count, relocations


@record
class MinimizeOutcome:
    """One input of :func:`minimize_files`: its result, or why it was skipped."""

    btf_path: str
    result: MinimizeResult | None = None
    error: str | None = None


@record
class _Job:
    """One kernel of :func:`minimize_files` for a worker (``path`` names it in errors)."""

    path: str
    out_path: str


def _minimize_job(job: _Job, objects: tuple[ObjectBlob, ...], base: str | None,
                  modules: tuple[str, ...], keep_decl_tags: bool
                  ) -> tuple[bytes, MinimizeResult]:
    """A worker's part: the minimized bytes, which the caller writes (a cluster's
    workers need not share its file system for the output)."""
    data, types, relocations = _minimized(objects, job.path, base=base, modules=modules,
                                          keep_decl_tags=keep_decl_tags)
    return data, MinimizeResult(job.path, job.out_path, len(data), types, relocations,
                                hashlib.sha256(data).hexdigest())


def minimize_files(object_paths: Sequence[str | os.PathLike[str] | ObjectBlob],
                   btf_paths: Sequence[str | os.PathLike[str]],
                   out_dir: str | os.PathLike[str], *,
                   base: str | os.PathLike[str] | None = None,
                   modules: Sequence[str | os.PathLike[str]] = (),
                   keep_decl_tags: bool = False,
                   jobs: int | None = 1,
                   executor: ExecutorLike | None = None,
                   progress: bool | None = False) -> list[MinimizeOutcome]:
    """:func:`minimize_file` for each input into ``out_dir`` (named by
    :func:`output_name`); an input that cannot be used is an outcome with its error, and
    the others go on.

    A directory input is an archive (a BTFHub tree, packages, vmlinux or raw BTF files:
    :func:`corebpf.archive.sources.discover`): each kernel under it goes to the same
    relative directory under ``out_dir``, as btfgen.sh lays out its custom archive.
    ``jobs``/``executor``/``progress`` as :func:`corebpf.archive.parallel.map_kernels`
    (one process by default)."""
    from ..archive.parallel import map_kernels
    from ..archive.sources import discover

    blobs = tuple(object_blob(p) for p in object_paths)  # sent to the workers
    for blob in blobs:
        load_object(blob)  # a bad object fails the whole run
    os.makedirs(out_dir, exist_ok=True)
    outcomes: list[MinimizeOutcome] = []
    todo: list[tuple[MinimizeOutcome, _Job]] = []
    taken: dict[str, str] = {}
    for given in btf_paths:
        root = os.fspath(given)
        if os.path.isdir(root):
            try:
                places = [(e.path, os.path.relpath(os.path.dirname(e.path), root))
                          for e in discover(root)]
            except Error as e:
                outcomes.append(MinimizeOutcome(root, error=str(e)))
                continue
        else:
            places = [(root, ".")]
        for path, rel in places:
            out = os.path.normpath(os.path.join(os.fspath(out_dir), rel, output_name(path)))
            outcome = MinimizeOutcome(path)
            outcomes.append(outcome)
            if out in taken:
                outcome.error = f"{path}: output {out} already written for {taken[out]}"
                continue
            taken[out] = path
            todo.append((outcome, _Job(path, out)))
    work = functools.partial(
        _minimize_job, objects=blobs, base=None if base is None else os.fspath(base),
        modules=tuple(os.fspath(m) for m in modules), keep_decl_tags=keep_decl_tags)
    done = map_kernels(work, [job for _, job in todo], executor=executor, jobs=jobs,
                       progress=progress)
    for (outcome, job), got in zip(todo, done, strict=True):
        if got.value is None:
            outcome.error = got.error
            continue
        data, result = got.value
        try:
            os.makedirs(os.path.dirname(job.out_path) or ".", exist_ok=True)
            _write(job.out_path, data)
        except OSError as e:  # makedirs
            outcome.error = f"{job.out_path}: cannot write: {e.strerror}"
        except Error as e:
            outcome.error = str(e)
        else:
            outcome.result = result
    return outcomes


__all__ = [
    "MinimizeOutcome",
    "MinimizeResult",
    "Minimizer",
    "ObjectBlob",
    "RelocationNeeds",
    "load_object",
    "minimize",
    "minimize_file",
    "minimize_files",
    "needs_of",
    "object_blob",
    "object_name",
    "output_name",
]
