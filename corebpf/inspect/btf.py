"""BTF objects loaded in the kernel (``bpftool btf list``, ``btf dump id``): the kernel's
own (vmlinux, modules) and those programs and maps were loaded with."""

from __future__ import annotations

import errno as E
from collections.abc import Callable, Iterator

from .. import sys as ksys
from .._record import record
from ..btf import Spec
from .common import BTFCache, InspectError, Selector, iter_ids, iter_open, reason
from .values import Obj

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

__all__ = ["BTFObject", "btf_json", "btf_text", "iter_btf", "load_btf", "select_btf"]


@record
class BTFObject:
    """One BTF object: ``size`` in bytes, ``name`` (``vmlinux``, a module's, or empty),
    ``kernel`` for the kernel's own; the programs and maps that use it, each list in the
    order bpftool prints it (last found first)."""

    id: int
    size: int
    name: str
    kernel: bool
    prog_ids: list[int]
    map_ids: list[int]


def _users() -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """BTF id -> the program ids, and the map ids, that point at it."""
    progs: dict[int, list[int]] = {}
    maps: dict[int, list[int]] = {}
    def prog_btf(fd: int) -> int:
        return int(ksys.prog_info(fd, map_ids=False).btf_id)

    def map_btf(fd: int) -> int:
        return int(ksys.map_info(fd).btf_id)

    sources: tuple[tuple[dict[int, list[int]], Callable[[int], int | None],
                         Callable[[int], ksys.FD], Callable[[int], int]], ...] = (
        (progs, ksys.prog_get_next_id, ksys.prog_get_fd_by_id, prog_btf),
        (maps, ksys.map_get_next_id, ksys.map_get_fd_by_id, map_btf))
    for table, next_id, get_fd, read in sources:
        for obj_id, fd in iter_open(next_id, get_fd):
            try:
                btf_id = read(fd.fd)
            except OSError:
                continue
            finally:
                fd.close()
            if btf_id:
                table.setdefault(btf_id, []).insert(0, obj_id)  # bpftool's hashmap order
    return progs, maps


def _read(fd: int, progs: dict[int, list[int]], maps: dict[int, list[int]]) -> BTFObject:
    try:
        info = ksys.btf_info(fd)
    except OSError as e:
        raise InspectError(f"can't get BTF object info: {reason(e)}") \
            from None
    return BTFObject(info.id, info.size, info.name, info.kernel, progs.get(info.id, []),
                     maps.get(info.id, []))


def iter_btf() -> Iterator[BTFObject]:
    """Every loaded BTF object, by increasing id, with its users."""
    ids = list(iter_ids(ksys.btf_get_next_id))  # first: a refusal names BTF_GET_NEXT_ID
    progs, maps = _users()
    for btf_id in ids:
        try:
            fd = ksys.btf_get_fd_by_id(btf_id)
        except OSError as e:
            if e.errno == E.ENOENT:
                continue
            raise InspectError(f"can't get BTF object by id ({btf_id}): "
                               f"{reason(e)}") from None
        try:
            obj = _read(fd.fd, progs, maps)
        except InspectError:
            continue
        finally:
            fd.close()
        yield obj


def select_btf(sel: Selector) -> list[BTFObject]:
    """The BTF object ``sel`` (``id N``) names."""
    if sel.kind != "id":
        raise InspectError(f"BTF objects are selected by id, not {sel.kind}")
    try:
        fd = ksys.btf_get_fd_by_id(int(sel.value))
    except OSError as e:
        raise InspectError(f"can't get BTF object by id ({sel.value!s}): "
                           f"{reason(e)}") from None
    try:
        progs, maps = _users()
        return [_read(fd.fd, progs, maps)]
    finally:
        fd.close()


def load_btf(btf_id: int) -> Spec:
    """The types of a loaded BTF object (a module's split BTF on the kernel's)."""
    return BTFCache().get(btf_id)


def btf_json(b: BTFObject) -> Obj:
    """``bpftool -j btf show``'s object for one BTF object."""
    out = Obj([("id", b.id), ("size", b.size), ("prog_ids", list(b.prog_ids)),
               ("map_ids", list(b.map_ids)), ("kernel", b.kernel)])
    if b.name:
        out.append(("name", b.name))
    return out


def btf_text(b: BTFObject) -> str:
    """``bpftool btf show``'s line for one BTF object."""
    if b.kernel:
        line = f"{b.id}: name [{b.name}]  "
    elif b.name:
        line = f"{b.id}: name {b.name}  "
    else:
        line = f"{b.id}: name <anon>  "
    line += f"size {b.size}B"
    if b.prog_ids:
        line += "  prog_ids " + ",".join(map(str, b.prog_ids))
    if b.map_ids:
        line += "  map_ids " + ",".join(map(str, b.map_ids))
    return line + "\n"


def btfs_json(objs: list[BTFObject]) -> Any:
    items = [btf_json(b) for b in objs]
    return items[0] if len(items) == 1 else items
