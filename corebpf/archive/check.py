"""Check before you ship: every CO-RE relocation of some objects against every kernel of an
archive, without loading anything.

Each kernel's BTF is read and parsed once, in the worker that handles it, and every
object is relocated against it with the same engine the loader uses, so a relocation
shown resolved here is one libbpf would resolve the same way on that kernel.

A kernel's status: "ok" when every relocation resolved, "poisoned" when some instruction
would be poisoned (the verifier rejects the program if that code is reachable), "failed"
when a relocation failed outright (libbpf refuses to load the object: e.g. ambiguous
candidates) or the kernel's file could not be read.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._record import field, record
from .._text import plural
from ..errors import Error

if TYPE_CHECKING:
    from ..btfgen import ObjectBlob
    from .parallel import ExecutorLike
    from .sources import KernelEntry

OK, POISONED, FAILED = "ok", "poisoned", "failed"
RESOLVED = "resolved"


@record
class RelocationCheck:
    """One relocation of one object on one kernel."""

    object: str
    program: str
    section: str
    index: int
    insn: int
    kind: str
    #: the raw access string from .BTF.ext ("0:1:2")
    access: str
    #: the local access in words ("struct task_struct.pid")
    spec: str
    result: str  # "resolved" | "poisoned" | "failed"
    local: int | None = None
    target: int | None = None
    message: str = ""

    @property
    def key(self) -> tuple[str, str, int]:
        """Same on every kernel: names the matrix column."""
        return self.object, self.section, self.index

    def to_json(self) -> dict[str, Any]:  # (a field called "object" hides the builtin)
        return {"object": self.object, "program": self.program, "section": self.section,
                "index": self.index, "insn": self.insn, "kind": self.kind,
                "access": self.access, "spec": self.spec, "result": self.result,
                "local": self.local, "target": self.target, "message": self.message}


@record
class KernelCheck:
    """One kernel's row of the matrix."""

    kernel: str
    path: str
    distro: str = ""
    version: str = ""
    arch: str = ""
    relocations: list[RelocationCheck] = field(default_factory=list)
    #: set when the kernel's BTF could not be read: the row has no relocations
    error: str | None = None

    @property
    def status(self) -> str:
        if self.error is not None or any(r.result == FAILED for r in self.relocations):
            return FAILED
        if any(r.result == POISONED for r in self.relocations):
            return POISONED
        return OK

    def count(self, result: str) -> int:
        return sum(1 for r in self.relocations if r.result == result)

    @property
    def first_problem(self) -> str:
        if self.error is not None:
            return self.error
        for want in (FAILED, POISONED):
            for r in self.relocations:
                if r.result == want:
                    return f"{os.path.basename(r.object)} {r.program} #{r.index}: {r.message}"
        return ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"kernel": self.kernel, "path": self.path,
                                  "status": self.status,
                                  "relocations": [r.to_json() for r in self.relocations]}
        if self.error is not None:
            out["error"] = self.error
        return out


@record
class CheckReport:
    """The whole matrix: kernels (rows) x relocations (columns)."""

    objects: list[str]
    kernels: list[KernelCheck]

    @property
    def failed(self) -> bool:
        return any(k.status == FAILED for k in self.kernels)

    @property
    def poisoned(self) -> bool:
        return any(k.status == POISONED for k in self.kernels)

    def exit_code(self, *, strict: bool = False) -> int:
        """1 when a kernel failed (or, with ``strict``, has poisoned relocations)."""
        if self.failed or (strict and self.poisoned):
            return 1
        return 0

    def columns(self) -> list[RelocationCheck]:
        """One relocation per column, in object then .BTF.ext order, from the first
        kernel that has it."""
        seen: dict[tuple[str, str, int], RelocationCheck] = {}
        for k in self.kernels:
            for r in k.relocations:
                seen.setdefault(r.key, r)
        order = {o: i for i, o in enumerate(self.objects)}
        return sorted(seen.values(), key=lambda r: order.get(r.object, len(order)))

    def to_json(self) -> dict[str, object]:
        return {"kernels": [k.to_json() for k in self.kernels]}


def _missing(spec: str, kind: str) -> str:
    """'struct task_struct.__state' -> 'struct task_struct has no field __state'."""
    if not spec:
        return "the target has no match"
    if "::" in spec:  # enum value
        typ, _, val = spec.partition("::")
        return f"{typ} has no value {val.split(' = ')[0]}"
    typ, _, path = spec.partition(".")
    if path and not kind.startswith("type"):
        return f"{typ} has no field {path}"
    return f"{typ} does not exist"


def _words(local_spec: str) -> str:
    """'<byte_off> [7] struct task_struct.pid (0:1 @ offset 8)' -> 'struct task_struct.pid'."""
    return local_spec.split("] ", 1)[-1].split(" (", 1)[0] if local_spec else ""


def relocate_object(path: str | ObjectBlob, target: object) -> list[RelocationCheck]:
    """Every CO-RE relocation of the object at ``path`` (or in a blob, named as the blob
    is) against ``target`` (a corebpf.core.Target), as check reports them."""
    from ..btfgen import load_object, object_name  # parsed once per worker
    from ..core import Relocator, Target

    obj = load_object(path)
    path = object_name(path)
    assert isinstance(target, Target)
    access: dict[tuple[str, int], str] = {}
    if obj.btf is not None and obj.btf_ext is not None:
        for sec, recs in obj.btf_ext.core_relos.items():
            for rec in recs:
                try:
                    access[sec, rec.index] = obj.btf.string(rec.access_str_off)
                except Error:
                    access[sec, rec.index] = "?"
    reports, _ = Relocator(obj, target).run()
    out = []
    for r in reports:
        spec = _words(r.local_spec)
        kind = r.kind.libbpf_name
        if r.error is not None:
            result, message = FAILED, r.error
        elif r.poisoned:
            result = POISONED
            if r.target_spec:
                message = (f"{spec} matches {_words(r.target_spec)} but the load's size "
                           "cannot be adjusted to it")
            else:
                message = _missing(spec, kind)
        else:
            result, message = RESOLVED, ""
        out.append(RelocationCheck(
            object=path, program=r.program, section=r.section, index=r.index, insn=r.insn,
            kind=kind, access=access.get((r.section, r.index), ""), spec=spec, result=result,
            local=r.local, target=None if r.poisoned or r.error else r.target,
            message=message))
    return out


def check_kernel(entry: KernelEntry, objects: Sequence[str | ObjectBlob]) -> KernelCheck:
    """One kernel's row: its BTF parsed once, every object relocated against it.

    A kernel whose file cannot be read or parsed gives a row with ``error`` set; a
    relocation that fails gives a failed cell. Module level, so process pools can run it.
    """
    from ..btf import from_bytes
    from ..btfgen import load_object
    from ..core import Target
    from ..core.engine import FLAVOR_SEP, objects_root_names
    from .sources import read_btf

    path = os.fspath(entry.path)
    row = KernelCheck(kernel=entry.release or os.path.basename(path), path=path,
                      distro=entry.distro, version=entry.version, arch=entry.arch)
    # the types of every root name are found while indexing (check_archive has parsed
    # the objects already)
    names = objects_root_names(load_object(o) for o in objects)
    try:
        target = Target(from_bytes(read_btf(entry), source=path, find_names=names,
                                   prefix_sep=FLAVOR_SEP))
    except Exception as e:  # whatever a corrupt file raises: this kernel fails, others go on
        text = str(e) if isinstance(e, Error) else f"{type(e).__name__}: {e}"
        row.error = text if path in text else f"{path}: {text}"
        return row
    for obj in objects:
        row.relocations += relocate_object(obj, target)
    return row


def check_archive(
    objects: Sequence[str | os.PathLike[str]],
    archive: str | os.PathLike[str] | Iterable[KernelEntry],
    *,
    executor: ExecutorLike | None = None,
    jobs: int | None = None,
    progress: bool | None = None,
) -> CheckReport:
    """The matrix of ``objects``' relocations over every kernel in ``archive`` (a directory
    given to corebpf.archive.sources.discover, or entries already discovered).

    The objects are parsed here first, so a bad object is an error before any work; a bad
    kernel is a failed row and the others complete.
    """
    from ..btfgen import load_object, object_blob
    from .parallel import map_kernels
    from .sources import discover

    paths = [os.fspath(o) for o in objects]
    blobs = tuple(object_blob(p) for p in paths)  # the workers get bytes, not paths
    for b in blobs:
        load_object(b)
    if isinstance(archive, str | os.PathLike):
        entries = list(discover(archive))
    else:
        entries = list(archive)
    work = functools.partial(check_kernel, objects=blobs)
    rows = []
    for outcome, entry in zip(map_kernels(work, entries, executor=executor, jobs=jobs,
                                          progress=progress), entries, strict=True):
        if outcome.value is not None:
            rows.append(outcome.value)
        else:  # the worker itself broke (e.g. a bug, or the pool died)
            path = os.fspath(entry.path)
            rows.append(KernelCheck(kernel=entry.release or os.path.basename(path), path=path,
                                    distro=entry.distro, version=entry.version,
                                    arch=entry.arch, error=outcome.error))
    return CheckReport(objects=paths, kernels=rows)


def format_table(report: CheckReport) -> str:
    """The terminal summary: one line per kernel, then the totals."""
    head = ("kernel", "distro/version/arch", "status", "ok", "poison", "fail", "first problem")
    lines = []
    for k in report.kernels:
        where = "/".join(x for x in (k.distro, k.version, k.arch) if x) or "-"
        lines.append((k.kernel, where, k.status, str(k.count(RESOLVED)),
                      str(k.count(POISONED)), str(k.count(FAILED)), k.first_problem))
    widths = [max([len(head[i])] + [len(row[i]) for row in lines]) for i in range(6)]
    right = {3, 4, 5}

    def fmt(row: tuple[str, ...]) -> str:
        cells = [c.rjust(widths[i]) if i in right else c.ljust(widths[i])
                 for i, c in enumerate(row[:6])]
        return "  ".join([*cells, row[6]]).rstrip()

    out = [fmt(head)] + [fmt(r) for r in lines]
    n = len(report.kernels)
    counts = {s: sum(1 for k in report.kernels if k.status == s) for s in (OK, POISONED, FAILED)}
    out.append(f"{plural(n, 'kernel')}: {counts[OK]} ok, {counts[POISONED]} poisoned, "
               f"{counts[FAILED]} failed; {plural(len(report.columns()), 'relocation')} in "
               f"{plural(len(report.objects), 'object')}")
    return "\n".join(out) + "\n"


__all__ = [
    "FAILED",
    "OK",
    "POISONED",
    "RESOLVED",
    "CheckReport",
    "KernelCheck",
    "RelocationCheck",
    "check_archive",
    "check_kernel",
    "format_table",
    "relocate_object",
]
