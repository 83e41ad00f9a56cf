"""Attachments as objects that detach on close: BPF links where the kernel has them, the
older way (PROG_ATTACH, setsockopt, perf event ioctl) otherwise, as libbpf does."""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Callable

from . import sys as ksys
from .errors import AttachError
from .obj.sections import AttachKind, AttachType

TYPE_CHECKING = False

if TYPE_CHECKING:
    import socket

    from .loader import Collection

SO_ATTACH_BPF = 50
SO_DETACH_BPF = 27
BPF_F_ALLOW_MULTI = 1 << 1


class Link:
    """Something attached; close() undoes it. Also a context manager."""

    def __init__(self, fd: ksys.FD | None, description: str,
                 detach: Callable[[], None] | None = None):
        self.fd = fd
        self.description = description
        self._detach = detach
        self.pinned: str | None = None

    def pin(self, path: str) -> None:
        """Keep the attachment alive in bpffs after close() and process exit, until
        :meth:`unpin` (or ``rm``) removes the pin and the last fd is closed."""
        if self.fd is None:
            raise AttachError(f"{self.description}: not a BPF link, cannot be pinned")
        try:
            ksys.obj_pin(self.fd.fd, path)
        except OSError as e:
            raise _fail(f"{self.description}: pin {path}", e) from None
        self.pinned = path

    def unpin(self) -> None:
        """Remove this link's pin; the attachment then ends when its fds are closed."""
        if self.pinned is None:
            raise AttachError(f"{self.description}: not pinned")
        try:
            os.unlink(self.pinned)
        except OSError as e:
            raise _fail(f"{self.description}: unpin {self.pinned}", e) from None
        self.pinned = None

    @classmethod
    def from_pin(cls, path: str) -> Link:
        """Reopen a pinned link (e.g. from another process): close() drops this fd only,
        the pin keeps the program attached; :meth:`unpin` then close() detaches it."""
        try:
            fd = ksys.obj_get(path)
        except OSError as e:
            raise _fail(f"pinned link {path}", e) from None
        link = cls(fd, f"pinned link {path}")
        link.pinned = path
        return link

    def close(self) -> None:
        if self._detach is not None:
            detach, self._detach = self._detach, None
            detach()
        if self.fd is not None:
            self.fd.close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Link({self.description!r}, fd={self.fd.fd if self.fd else None})"


def _fail(what: str, e: OSError) -> AttachError:
    return AttachError(f"{what}: {e.strerror or e}")


def attach_raw_tracepoint(prog_fd: int, name: str) -> Link:
    try:
        return Link(ksys.raw_tracepoint_open(name, prog_fd), f"raw_tp/{name}")
    except OSError as e:
        raise _fail(f"raw_tp/{name}", e) from None


def attach_tracing(prog_fd: int, attach_type: int, what: str) -> Link:
    """fentry/fexit/fmod_ret/tp_btf/lsm: the target was fixed at load (attach_btf_id)."""
    try:
        return Link(ksys.link_create(prog_fd, 0, attach_type), what)
    except OSError as e:
        if attach_type == AttachType.TRACE_RAW_TP or e.errno == 22:
            try:  # older kernels: tracing programs attach through RAW_TRACEPOINT_OPEN
                return Link(ksys.raw_tracepoint_open(None, prog_fd), what)
            except OSError:
                pass
        raise _fail(what, e) from None


def attach_cgroup(prog_fd: int, cgroup_path: str, attach_type: int) -> Link:
    fd = os.open(cgroup_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            return Link(ksys.link_create(prog_fd, fd, attach_type), f"cgroup {cgroup_path}")
        except OSError:
            ksys.prog_attach(prog_fd, fd, attach_type, BPF_F_ALLOW_MULTI)
            dup = os.dup(fd)

            def detach() -> None:
                try:
                    ksys.prog_detach(prog_fd, dup, attach_type)
                finally:
                    os.close(dup)

            return Link(None, f"cgroup {cgroup_path}", detach)
    except OSError as e:
        raise _fail(f"cgroup {cgroup_path}", e) from None
    finally:
        os.close(fd)


def _ifindex(iface: str | int) -> int:
    import socket

    if isinstance(iface, int):
        return iface
    try:
        return socket.if_nametoindex(iface)
    except OSError:
        raise AttachError(f"no network interface {iface!r}") from None


def attach_xdp(prog_fd: int, iface: str | int, flags: int = 0) -> Link:
    idx = _ifindex(iface)
    try:
        return Link(ksys.link_create(prog_fd, idx, AttachType.XDP, flags), f"xdp on {iface}")
    except OSError as e:
        raise _fail(f"xdp on {iface}", e) from None


def attach_tcx(prog_fd: int, iface: str | int, attach_type: int) -> Link:
    idx = _ifindex(iface)
    what = f"tcx {'ingress' if attach_type == AttachType.TCX_INGRESS else 'egress'} on {iface}"
    try:
        return Link(ksys.link_create(prog_fd, idx, attach_type), what)
    except OSError as e:
        raise _fail(what, e) from None


def attach_socket(prog_fd: int, sock: socket.socket) -> Link:
    """A socket filter on ``sock`` (SO_ATTACH_BPF); close() detaches it."""
    import socket

    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, prog_fd)
    except OSError as e:
        raise _fail("socket filter", e) from None

    def detach() -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_DETACH_BPF, 0)
        except OSError:
            pass  # the socket may be closed already

    return Link(None, f"socket filter on fd {sock.fileno()}", detach)


class IterLink(Link):
    """An iterator link; read() runs the iterator once and returns its output."""

    def read(self) -> bytes:
        assert self.fd is not None
        out = ksys.iter_create(self.fd.fd)
        chunks = []
        try:
            while True:
                chunk = os.read(out.fd, 1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            out.close()
        return b"".join(chunks)


def attach_iter(prog_fd: int, what: str, link_info: bytes = b"") -> IterLink:
    extra = b""
    if link_info:
        buf = ctypes.create_string_buffer(link_info, len(link_info))
        extra = struct.pack("=QI", ctypes.addressof(buf), len(link_info))
    try:
        fd = ksys.link_create(prog_fd, 0, AttachType.TRACE_ITER, 0, extra)
    except OSError as e:
        raise _fail(what, e) from None
    return IterLink(fd, what)


__all__ = [
    "AttachKind",
    "IterLink",
    "Link",
    "attach_cgroup",
    "attach_iter",
    "attach_raw_tracepoint",
    "attach_socket",
    "attach_tcx",
    "attach_tracing",
    "attach_xdp",
]


def attach(program: object, *, target: str | None = None, iface: str | int | None = None,
           cgroup: str | None = None, sock: socket.socket | None = None,
           pid: int = -1) -> Link:
    """Attach a loaded program the way its section says (libbpf's auto-attach).

    ``target`` overrides what the section names (tracepoint, function, binary:symbol);
    XDP/tcx need ``iface``, socket filters ``sock``; cgroup programs attach to ``cgroup``
    (default: the root of the cgroup v2 hierarchy).
    """
    from .loader import Program

    if not isinstance(program, Program):
        raise TypeError("attach() takes a loaded corebpf.loader.Program")
    spec = program.spec
    d = spec.section_def
    fd = program.fd.fd
    if d is None:
        raise AttachError(f"program {spec.name!r}: section {spec.section!r} is not attachable")
    where = target if target is not None else spec.attach_target
    kind = d.attach
    if kind == AttachKind.RAW_TRACEPOINT:
        return attach_raw_tracepoint(fd, where)
    if kind in (AttachKind.TRACING, AttachKind.LSM):
        return attach_tracing(fd, int(d.attach_type or 0), spec.section)
    if kind == AttachKind.ITER:
        return attach_iter(fd, spec.section)
    if kind == AttachKind.CGROUP:
        if d.attach_type is None:
            raise AttachError(f"program {spec.name!r}: section {spec.section!r} names no "
                              "cgroup attach type")
        if cgroup is None:
            from .sys.fs import cgroup2_root

            cgroup = cgroup2_root()
        return attach_cgroup(fd, cgroup, int(d.attach_type))
    if kind in (AttachKind.XDP, AttachKind.TCX):
        if iface is None:
            raise AttachError(f"program {spec.name!r}: {spec.section} needs an interface")
        if kind == AttachKind.XDP:
            return attach_xdp(fd, iface)
        return attach_tcx(fd, iface, int(d.attach_type or 0))
    if kind == AttachKind.SOCKET:
        if sock is None:
            raise AttachError(f"program {spec.name!r}: a socket filter needs a socket")
        return attach_socket(fd, sock)
    if kind in (AttachKind.TRACEPOINT, AttachKind.KPROBE, AttachKind.UPROBE):
        from .perf_links import attach_perf

        return attach_perf(program, kind, where, pid)
    if kind == AttachKind.USDT:  # "BINARY:PROVIDER:NAME" (SEC("usdt/...") or target)
        from .usdt import attach_target

        return attach_target(program, where, pid)
    raise AttachError(f"program {spec.name!r}: attaching {kind.value} programs is not "
                      "supported")


#: Sections that name nothing to attach to by themselves (an interface, a socket, a
#: binary): libbpf's skeletons leave them unattached too.
_NEEDS_TARGET = frozenset({AttachKind.NONE, AttachKind.XDP, AttachKind.TC, AttachKind.TCX,
                           AttachKind.SOCKET, AttachKind.STRUCT_OPS, AttachKind.NETFILTER,
                           AttachKind.NETKIT, AttachKind.KPROBE_MULTI,
                           AttachKind.UPROBE_MULTI, AttachKind.KSYSCALL})


def attach_programs(coll: Collection, targets: dict[str, str] | None = None, *,
                    pid: int = -1) -> tuple[list[Link], dict[str, str]]:
    """Attach every loaded program the way its section says (:func:`attach`), as a libbpf
    skeleton's attach does: programs whose section names no target (``xdp``, ``socket``,
    a bare ``uprobe``) are left out, with the reason. ``targets`` overrides what the
    section names, by program (``/usr/lib/libreadline.so.8:readline``, for a ``usdt``
    program ``BINARY:PROVIDER:NAME``); ``pid`` limits uprobes and USDT probes to one
    process. On an attach error the links made so far are closed and the error
    propagates."""
    links: list[Link] = []
    skipped: dict[str, str] = {}
    targets = targets or {}
    try:
        for name, prog in coll.programs.items():
            d = prog.spec.section_def
            kind = d.attach if d is not None else AttachKind.NONE
            target = targets.get(name)
            if kind in _NEEDS_TARGET or (
                    kind in (AttachKind.TRACEPOINT, AttachKind.KPROBE, AttachKind.UPROBE,
                             AttachKind.USDT)
                    and not (target or prog.spec.attach_target)):
                skipped[name] = f"section {prog.spec.section!r} names nothing to attach to"
                continue
            try:
                links.append(attach(prog, target=target,
                                    pid=pid if kind in (AttachKind.UPROBE, AttachKind.USDT)
                                    else -1))
            except AttachError as e:
                raise AttachError(f"{coll.obj.source}: program {name!r} (section "
                                  f"{prog.spec.section!r}): {e}") from None
    except BaseException:
        for link in reversed(links):
            link.close()
        raise
    return links, skipped
