"""Attachments as objects that detach on close: BPF links where the kernel has them, the
older way (PROG_ATTACH, setsockopt, perf event ioctl) otherwise, as libbpf does."""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Callable

from . import sys as ksys
from .errors import AttachError, Error
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


#: XDP attach modes (``flags`` of :func:`attach_xdp`): generic (skb), native (driver),
#: offloaded (hardware); none lets the kernel choose native where the driver has it
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_FLAGS_HW_MODE = 1 << 3
XDP_MODES = {"skb": XDP_FLAGS_SKB_MODE, "native": XDP_FLAGS_DRV_MODE,
             "hw": XDP_FLAGS_HW_MODE}
#: what tc programs attach to: the interface's ingress or egress
TC_DIRECTIONS = {"ingress": AttachType.TCX_INGRESS, "egress": AttachType.TCX_EGRESS}


def resolve_iface(iface: str | int) -> tuple[int, str]:
    """(ifindex, name) of a network interface given by name or index (an int, or a
    string of digits that names no interface); AttachError naming it if there is none."""
    import socket

    if isinstance(iface, str):
        try:
            return socket.if_nametoindex(iface), iface
        except OSError:
            if not iface.isdigit():
                raise AttachError(f"no network interface {iface!r}") from None
    idx = int(iface)
    try:
        return idx, socket.if_indextoname(idx)
    except OSError:
        raise AttachError(f"no network interface with index {idx}") from None


def _prog_fd(prog: object) -> int:
    from .loader import Program

    if isinstance(prog, Program):
        return prog.fd.fd
    if isinstance(prog, int):
        return prog
    raise TypeError("expected a loaded corebpf.loader.Program or a program fd")


def _kernel_knows(enumerator: str) -> bool | None:
    """Whether the running kernel's ``enum bpf_attach_type`` has ``enumerator`` (None:
    no kernel BTF to tell)."""
    from .btf import kernel
    from .btf import types as bt

    try:
        spec = kernel()
    except (OSError, Error):  # no kernel BTF: the message says less
        return None
    for tid in spec.find_by_name("bpf_attach_type", bt.Kind.ENUM):
        t = spec.type(tid)
        if isinstance(t, bt.Enum):
            return any(v.name == enumerator for v in t.values)
    return None


def _net_fail(what: str, name: str, e: OSError, kind: str) -> AttachError:
    """An interface attach refused, in words: what is there already, what is missing."""
    import errno as E

    why = e.strerror or str(e)
    if e.errno in (E.EBUSY, E.EEXIST) and kind == "xdp":
        why += (f" ({name} already has an XDP program in this mode, attached by another "
                f"link or through netlink: `ip link set dev {name} xdp off` removes the "
                "latter)")
    elif e.errno in (E.EINVAL, E.EOPNOTSUPP) and kind == "xdp" and \
            _kernel_knows("BPF_XDP") is False:
        why += (" (this kernel has no XDP links, Linux 5.9+; attaching XDP through netlink "
                "is not implemented)")
    elif e.errno in (E.EINVAL, E.EOPNOTSUPP) and kind == "tcx" and \
            _kernel_knows("BPF_TCX_INGRESS") is False:
        why += (" (this kernel has no tcx, Linux 6.6+; attaching tc programs through a "
                "clsact qdisc over netlink is not implemented)")
    elif e.errno == E.EOPNOTSUPP and kind == "xdp":
        why += f" ({name}'s driver has no XDP in this mode; try the generic (skb) mode)"
    return AttachError(f"{what}: {why}")


def attach_xdp(prog: object, iface: str | int, flags: int = 0) -> Link:
    """An XDP program on a network interface (by name or index) through an XDP link
    (BPF_LINK_CREATE, Linux 5.9+): it stays attached while the link is open, and goes
    when it is closed or its process exits. ``flags``: one of :data:`XDP_MODES`' values,
    or 0 for the driver's native mode where it has one, else generic."""
    fd = _prog_fd(prog)
    idx, name = resolve_iface(iface)
    mode = next((f" ({m})" for m, f in XDP_MODES.items() if flags & f), "")
    what = f"xdp on {name}{mode}"
    try:
        return Link(ksys.link_create(fd, idx, AttachType.XDP, flags), what)
    except OSError as e:
        raise _net_fail(what, name, e, "xdp") from None


def attach_tcx(prog: object, iface: str | int, direction: str | int = "ingress") -> Link:
    """A tc program (SEC("tcx/..."), SEC("tc/..."), or a classic SEC("tc")/
    SEC("classifier") one) on a network interface's ``direction`` (``"ingress"``,
    ``"egress"``, or BPF_TCX_INGRESS/EGRESS) through a tcx link (Linux 6.6+), appended
    after the programs already there; detached when the link is closed or its process
    exits. On a kernel without tcx this is an AttachError saying so: the older netlink
    clsact path is not implemented."""
    fd = _prog_fd(prog)
    if isinstance(direction, str):
        if direction not in TC_DIRECTIONS:
            raise AttachError(f"tc direction {direction!r}: expected ingress or egress")
        attach_type = TC_DIRECTIONS[direction]
    else:
        if direction not in TC_DIRECTIONS.values():
            raise AttachError(f"tc attach type {direction}: expected BPF_TCX_INGRESS or "
                              "BPF_TCX_EGRESS")
        attach_type = AttachType(direction)
    idx, name = resolve_iface(iface)
    what = f"tcx {'ingress' if attach_type == AttachType.TCX_INGRESS else 'egress'} on {name}"
    try:
        return Link(ksys.link_create(fd, idx, attach_type), what)
    except OSError as e:
        raise _net_fail(what, name, e, "tcx") from None


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
    "TC_DIRECTIONS",
    "XDP_FLAGS_DRV_MODE",
    "XDP_FLAGS_HW_MODE",
    "XDP_FLAGS_SKB_MODE",
    "XDP_MODES",
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
    "resolve_iface",
]


def attach(program: object, *, target: str | None = None, iface: str | int | None = None,
           cgroup: str | None = None, sock: socket.socket | None = None,
           pid: int = -1, xdp_flags: int = 0) -> Link:
    """Attach a loaded program the way its section says (libbpf's auto-attach).

    ``target`` overrides what the section names (tracepoint, function, binary:symbol;
    for tc programs the direction, ``ingress`` or ``egress``: a bare SEC("tc") or
    SEC("classifier") goes to ingress unless told); XDP and tc programs need ``iface``
    (a name or an index; XDP with ``xdp_flags``, see :data:`XDP_MODES`), socket filters
    ``sock``; cgroup programs attach to ``cgroup`` (default: the root of the cgroup v2
    hierarchy).
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
    if kind in _NET:
        if iface is None:
            raise AttachError(f"program {spec.name!r}: section {spec.section!r} attaches "
                              "to a network interface; none was given")
        if kind == AttachKind.XDP:
            return attach_xdp(fd, iface, xdp_flags)
        if kind == AttachKind.TC:  # classic tc: on tcx, as libbpf and cilium put it there
            return attach_tcx(fd, iface, target or "ingress")
        return attach_tcx(fd, iface, target or int(d.attach_type or 0))
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


#: Programs that attach to a network interface (``iface``).
_NET = frozenset({AttachKind.XDP, AttachKind.TC, AttachKind.TCX})

#: Sections that name nothing to attach to by themselves (an interface, a socket, a
#: binary): libbpf's skeletons leave them unattached too.
_NEEDS_TARGET = frozenset({AttachKind.NONE, AttachKind.XDP, AttachKind.TC, AttachKind.TCX,
                           AttachKind.SOCKET, AttachKind.STRUCT_OPS, AttachKind.NETFILTER,
                           AttachKind.NETKIT, AttachKind.KPROBE_MULTI,
                           AttachKind.UPROBE_MULTI, AttachKind.KSYSCALL})


def attach_programs(coll: Collection, targets: dict[str, str] | None = None, *,
                    pid: int = -1, iface: str | int | None = None,
                    xdp_flags: int = 0) -> tuple[list[Link], dict[str, str]]:
    """Attach every loaded program the way its section says (:func:`attach`), as a libbpf
    skeleton's attach does: programs whose section names no target (``xdp``, ``socket``,
    a bare ``uprobe``) are left out, with the reason. ``targets`` overrides what the
    section names, by program (``/usr/lib/libreadline.so.8:readline``, for a ``usdt``
    program ``BINARY:PROVIDER:NAME``); ``pid`` limits uprobes and USDT probes to one
    process. With ``iface``, XDP and tc programs attach to that network interface
    (XDP with ``xdp_flags``; a classic SEC("tc") program to ingress unless ``targets``
    names ``egress`` for it). On an attach error the links made so far are closed and
    the error propagates."""
    links: list[Link] = []
    skipped: dict[str, str] = {}
    targets = targets or {}
    try:
        for name, prog in coll.programs.items():
            d = prog.spec.section_def
            kind = d.attach if d is not None else AttachKind.NONE
            target = targets.get(name)
            if kind in _NET and iface is not None:
                try:
                    links.append(attach(prog, target=target, iface=iface,
                                        xdp_flags=xdp_flags))
                except AttachError as e:
                    raise AttachError(f"{coll.obj.source}: program {name!r} (section "
                                      f"{prog.spec.section!r}): {e}") from None
                continue
            if kind in _NET:
                skipped[name] = (f"section {prog.spec.section!r} attaches to a network "
                                 "interface; none was given")
                continue
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
