"""What every inspection verb shares: selecting objects the way bpftool does (``id N``,
``name NAME``, ``tag TAG``, ``pinned PATH``), bpffs pins by object id, the loaded BTF a
program or map points at, and load times as wall-clock times."""

from __future__ import annotations

import errno as E
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from .. import sys as ksys
from .._record import record
from ..errors import Error

TYPE_CHECKING = False

if TYPE_CHECKING:
    from ..btf import Spec

__all__ = [
    "BTFCache",
    "InspectError",
    "Selector",
    "boot_to_epoch",
    "format_boot_time",
    "hex_text",
    "iter_ids",
    "iter_open",
    "offload_text",
    "open_matching",
    "parse_selector",
    "pinned_paths",
]

#: The object kinds and what each is selected by (bpftool: maps have no tag; links and
#: BTF objects are taken by id or pin only).
KEYWORDS: dict[str, tuple[str, ...]] = {
    "prog": ("id", "tag", "name", "pinned"),
    "map": ("id", "name", "pinned"),
    "link": ("id", "pinned"),
    "btf": ("id",),
}
_WHAT = {"prog": "program", "map": "map", "link": "link", "btf": "BTF object"}
OBJ_NAME_LEN = 16  # BPF_OBJ_NAME_LEN
PROG_FULL_NAME_LEN = 128  # bpftool's MAX_PROG_FULL_NAME


class InspectError(Error):
    """A selection that matches nothing or cannot be parsed, an object that went away,
    or one the kernel will not describe."""


@record(frozen=True)
class Selector:
    """One bpftool handle: ``kind`` is id, name, tag or pinned."""

    kind: str
    value: str | int | bytes

    def __str__(self) -> str:
        v = self.value.hex() if isinstance(self.value, bytes) else self.value
        return f"{self.kind} {v}"


def _is_prefix(word: str, full: str) -> bool:
    """bpftool's is_prefix: any non-empty prefix names the keyword."""
    return bool(word) and full.startswith(word)


def parse_selector(words: Sequence[str], obj: str) -> tuple[Selector, list[str]]:
    """The handle at the start of ``words`` for an ``obj`` (prog, map, link, btf) and the
    words after it. Keywords may be abbreviated as bpftool allows (``i 5``)."""
    allowed = KEYWORDS[obj]
    expected = ", ".join(f"'{k}'" for k in allowed)
    if not words:
        raise InspectError(f"expected {expected} to select a {_WHAT[obj]}")
    word = words[0]
    kind = next((k for k in allowed if _is_prefix(word, k)), None)
    if kind is None:
        raise InspectError(f"expected {expected}, got: {word!r}")
    if len(words) < 2:
        raise InspectError(f"{kind}: missing its value")
    arg = words[1]
    value: str | int | bytes
    if kind == "id":
        try:
            value = int(arg, 0)
        except ValueError:
            raise InspectError(f"can't parse {arg!r} as an id") from None
        if not 0 <= value < 1 << 32:
            raise InspectError(f"id {arg} is out of range")
    elif kind == "tag":
        try:
            value = bytes.fromhex(arg)
        except ValueError:
            value = b""
        if len(value) != 8:
            raise InspectError(f"can't parse tag {arg!r}: expected 16 hex digits")
    elif kind == "name":
        limit = PROG_FULL_NAME_LEN if obj == "prog" else OBJ_NAME_LEN
        if len(arg.encode()) > limit - 1:
            raise InspectError(f"name {arg!r} is longer than a {_WHAT[obj]} name can be "
                               f"({limit - 1} bytes)")
        value = arg
    else:
        value = arg
    return Selector(kind, value), list(words[2:])


def reason(e: OSError) -> str:
    """An errno as text; for a refusal, what it takes (listing BPF objects and opening them
    by id need CAP_SYS_ADMIN, not only CAP_BPF)."""
    text = os.strerror(e.errno or 0)
    if e.errno in (E.EPERM, E.EACCES):
        text += " (inspecting loaded BPF objects needs root: CAP_SYS_ADMIN)"
    return text


def iter_ids(next_id: Callable[[int], int | None]) -> Iterator[int]:
    """Every id BPF_*_GET_NEXT_ID hands out, in increasing order."""
    cur = 0
    while True:
        try:
            nxt = next_id(cur)
        except OSError as e:
            raise InspectError(f"can't list the kernel's BPF objects: {reason(e)}") from None
        if nxt is None:
            return
        yield nxt
        cur = nxt


def open_pinned(path: str, obj: str) -> ksys.FD:
    """The object pinned at ``path``, checked to be a ``obj`` (bpftool's
    open_obj_pinned_any)."""
    try:
        fd = ksys.obj_get(path)
    except OSError as e:
        why = reason(e)
        if e.errno == E.EACCES and not _on_bpffs(os.path.dirname(path) or "."):
            why = "directory not in bpf file system (bpffs)"
        raise InspectError(f"{path}: cannot open pinned object: {why}") from None
    kind = ksys.fd_kind(fd.fd)
    if kind != obj:
        fd.close()
        raise InspectError(f"{path}: incorrect object type: {kind} (expected {obj})")
    return fd


def _on_bpffs(path: str) -> bool:
    real = os.path.realpath(path)
    return any(real == m or real.startswith(m.rstrip("/") + "/") for m in bpffs_mounts())


def bpffs_mounts() -> list[str]:
    """Mount points of every bpf file system (from /proc/mounts)."""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and parts[2].startswith("bpf"):
            out.append(parts[1].replace("\\040", " "))
    return out


def pinned_paths(obj: str) -> dict[int, list[str]]:
    """Object id -> the paths it is pinned at, over every bpffs mount (bpftool's ``-f``),
    for ``obj`` objects (prog, map, link)."""
    table: dict[int, list[str]] = {}
    for mount in bpffs_mounts():
        for root, dirs, files in os.walk(mount, followlinks=False):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                try:
                    fd = ksys.obj_get(path)
                except OSError:
                    continue
                try:
                    if ksys.fd_kind(fd.fd) != obj:
                        continue
                    info = ksys.obj_info(fd.fd, 16)  # type, then id, in all three
                    obj_id = int.from_bytes(info[4:8], sys.byteorder)
                    table.setdefault(obj_id, []).append(path)
                except OSError:
                    continue
                finally:
                    fd.close()
    return table


def boot_to_epoch(boot_ns: int) -> int:
    """A time in nanoseconds since boot (CLOCK_BOOTTIME, as load_time is) as Unix
    seconds, computed as bpftool does (so the two agree to the second they read the
    clocks in)."""
    real = time.clock_gettime_ns(time.CLOCK_REALTIME)
    boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    rs, rns = divmod(real, 10**9)
    bs, bns = divmod(boot, 10**9)
    return (rs - bs) + (rns - bns + boot_ns) // 10**9


def format_boot_time(epoch: int) -> str:
    """bpftool's plain ``loaded_at``: local time as ``%FT%T%z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(epoch))


class BTFCache:
    """Loaded BTF objects by id, fetched once per operation (BTF_GET_FD_BY_ID and
    BPF_OBJ_GET_INFO_BY_FD for the bytes); split BTF (a module's) is read on the
    kernel's vmlinux BTF."""

    def __init__(self) -> None:
        self._specs: dict[int, Spec] = {}
        self._vmlinux: Spec | None = None

    def get(self, btf_id: int) -> Spec:
        spec = self._specs.get(btf_id)
        if spec is None:
            spec = self._specs[btf_id] = self._load(btf_id)
        return spec

    def _load(self, btf_id: int) -> Spec:
        from ..btf import Spec

        try:
            with ksys.btf_get_fd_by_id(btf_id) as fd:
                info = ksys.btf_info(fd.fd, data=True)
        except OSError as e:
            raise InspectError(f"BTF id {btf_id}: {reason(e)}") from None
        if info.data is None:
            raise InspectError(f"BTF id {btf_id}: its size changed while it was read")
        base = None
        if info.kernel and info.name != "vmlinux":
            base = self.vmlinux()
        return Spec(info.data, base=base, source=f"BTF id {btf_id}"
                    + (f" ({info.name})" if info.name else ""))

    def vmlinux(self) -> Spec:
        if self._vmlinux is None:
            from ..btf import kernel

            self._vmlinux = kernel()
        return self._vmlinux


def ifname_in_netns(ifindex: int, ns_dev: int, ns_ino: int) -> str | None:
    """The interface's name when it lives in this process's network namespace (as
    bpftool's ifindex_to_name_ns), else None."""
    import socket

    try:
        st = os.stat("/proc/self/ns/net")
    except OSError:
        return None
    if (st.st_dev, st.st_ino) != (ns_dev, ns_ino):
        return None
    try:
        return socket.if_indextoname(ifindex)
    except OSError:
        return None


def offload_text(ifindex: int, ns_dev: int, ns_ino: int) -> str:
    """bpftool's ``offloaded_to`` value: the device's name, or where to find it."""
    name = ifname_in_netns(ifindex, ns_dev, ns_ino)
    if name is not None:
        return name
    return f"ifindex {ifindex} ns_dev {ns_dev} ns_ino {ns_ino}"


def iter_open(next_id: Callable[[int], int | None],
              get_fd: Callable[[int], ksys.FD]) -> Iterator[tuple[int, ksys.FD]]:
    """(id, new fd) for every object still there when opened (the caller closes each)."""
    for obj_id in iter_ids(next_id):
        try:
            fd = get_fd(obj_id)
        except OSError:
            continue
        yield obj_id, fd


def open_matching(next_id: Callable[[int], int | None],
                  get_fd: Callable[[int], ksys.FD],
                  matches: Callable[[ksys.FD], bool],
                  missing: str) -> list[ksys.FD]:
    """New fds for every object ``matches`` accepts (several may share a name or tag);
    objects freed while listed are passed over. An error saying ``missing`` if none."""
    out: list[ksys.FD] = []
    try:
        for _, fd in iter_open(next_id, get_fd):
            try:
                hit = matches(fd)
            except OSError:
                hit = False
            if hit:
                out.append(fd)
            else:
                fd.close()
    except BaseException:
        for fd in out:
            fd.close()
        raise
    if not out:
        raise InspectError(missing)
    return out


def hex_text(data: bytes) -> str:
    """bpftool's fprint_hex: bytes in hex, two spaces after every 8th, a line every 16."""
    parts = []
    for i, b in enumerate(data):
        pfx = "" if not i else "\n" if not i % 16 else "  " if not i % 8 else " "
        parts.append(f"{pfx}{b:02x}")
    return "".join(parts)
