"""Whether this process may use BPF at all: its effective capabilities, read once per
question from /proc/self/status, so that a refusal is reported as what it is (missing
privileges) and never as a missing kernel feature.

The kernel's rules (kernel/bpf/syscall.c): creating maps, loading BTF and loading
programs need CAP_BPF (or CAP_SYS_ADMIN, which implies every capability below);
tracing program types need CAP_PERFMON too, networking ones CAP_NET_ADMIN; listing and
opening loaded objects by id needs CAP_SYS_ADMIN; perf_event_open (tracepoints, probes)
needs CAP_PERFMON below a permissive ``kernel.perf_event_paranoid``.
"""

from __future__ import annotations

import errno as E
import os
import sys

from ..errors import PrivilegeError

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21
CAP_PERFMON = 38
CAP_BPF = 39

CAP_NAMES = {CAP_NET_ADMIN: "CAP_NET_ADMIN", CAP_SYS_ADMIN: "CAP_SYS_ADMIN",
             CAP_PERFMON: "CAP_PERFMON", CAP_BPF: "CAP_BPF"}

#: program types the kernel loads only with CAP_PERFMON (is_perfmon_prog_type):
#: kprobe, tracepoint, perf_event, raw_tracepoint(_writable), tracing, struct_ops, ext, lsm
PERFMON_PROG_TYPES = frozenset({2, 5, 7, 17, 24, 26, 27, 28, 29})
#: ... and only with CAP_NET_ADMIN (is_net_admin_prog_type): sched_cls/act, xdp, lwt_*,
#: sk_skb, sk_msg, flow_dissector, cgroup device/sock/sock_addr/sockopt/sysctl, sock_ops,
#: ext, netfilter
NET_ADMIN_PROG_TYPES = frozenset({3, 4, 6, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 22, 23,
                                  25, 28, 32})
#: program types an unprivileged process may load when kernel.unprivileged_bpf_disabled
#: is 0: socket filters and cgroup skb programs
UNPRIVILEGED_PROG_TYPES = frozenset({1, 8})
#: bpf() commands that need CAP_SYS_ADMIN whatever else the process has
SYS_ADMIN_COMMANDS = frozenset({
    "PROG_GET_NEXT_ID", "MAP_GET_NEXT_ID", "BTF_GET_NEXT_ID", "LINK_GET_NEXT_ID",
    "PROG_GET_FD_BY_ID", "MAP_GET_FD_BY_ID", "BTF_GET_FD_BY_ID", "LINK_GET_FD_BY_ID",
    "ENABLE_STATS", "TASK_FD_QUERY"})


def effective() -> int | None:
    """This process's effective capability set (CapEff), None if /proc cannot say."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def has(cap: int, caps: int | None = None) -> bool:
    """Whether the process holds ``cap``, counting CAP_SYS_ADMIN as every BPF-related
    capability as the kernel does (bpf_capable, perfmon_capable, bpf_token_capable).
    True when the capabilities cannot be read: then the kernel alone decides."""
    caps = effective() if caps is None else caps
    if caps is None:
        return True
    return bool(caps >> cap & 1 or caps >> CAP_SYS_ADMIN & 1)


def unprivileged_bpf_allowed() -> bool:
    """kernel.unprivileged_bpf_disabled is 0: anyone may load socket filters."""
    try:
        with open("/proc/sys/kernel/unprivileged_bpf_disabled") as f:
            return f.read().strip() == "0"
    except OSError:
        return False


def _in_user_namespace() -> bool:
    """Whether this process's capabilities belong to a user namespace other than the
    initial one (where the kernel checks BPF's)."""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


def needed(prog_types: set[int] | frozenset[int] = frozenset(), *,
           tracing: bool = False, network: bool = False) -> list[int]:
    """The capabilities loading programs of ``prog_types`` takes (CAP_BPF first); with
    ``tracing``/``network``, CAP_PERFMON/CAP_NET_ADMIN whatever the types."""
    caps = [CAP_BPF]
    if tracing or prog_types & PERFMON_PROG_TYPES:
        caps.append(CAP_PERFMON)
    if network or prog_types & NET_ADMIN_PROG_TYPES:
        caps.append(CAP_NET_ADMIN)
    return caps


def _wording(caps: list[int]) -> str:
    """``root or CAP_BPF + CAP_PERFMON (for tracing programs)``."""
    text = "root or " + " + ".join(CAP_NAMES[c] for c in caps)
    why = [w for c, w in ((CAP_PERFMON, "tracing"), (CAP_NET_ADMIN, "XDP and tc"))
           if c in caps]
    if why:
        text += f" (for {' and '.join(why)} programs)"
    return text


def missing_message(what: str, caps: list[int], missing: list[int]) -> str:
    """``WHAT needs root or CAP_BPF ...: this process (uid N) lacks CAP_BPF``."""
    return (f"{what} needs {_wording(caps)}: this process (uid {os.geteuid()}) lacks "
            f"{', '.join(CAP_NAMES[c] for c in missing)}")


def require(what: str, prog_types: set[int] | frozenset[int] = frozenset(), *,
            tracing: bool = False, network: bool = False,
            unprivileged_ok: bool = False) -> None:
    """Raise :class:`PrivilegeError` before anything reaches the kernel when this
    process lacks the capabilities ``what`` takes (see :func:`needed`).
    ``unprivileged_ok``: the job is one an unprivileged process may do where
    kernel.unprivileged_bpf_disabled is 0 (socket filters, no BTF)."""
    caps_now = effective()
    if caps_now is None:
        return
    caps = needed(prog_types, tracing=tracing, network=network)
    missing = [c for c in caps if not has(c, caps_now)]
    if not missing or (unprivileged_ok and unprivileged_bpf_allowed()):
        return
    raise PrivilegeError(missing_message(what, caps, missing), missing=missing)


def refusal(command: str, err: int, attr: bytes | bytearray) -> PrivilegeError | None:
    """What an EPERM/EACCES from ``bpf(command)`` means when it means missing privileges
    (a :class:`PrivilegeError` to raise in place of the OSError), else None: a process
    with every capability the command takes was refused for another reason (a verifier
    refusal, a security policy on fentry, a frozen map)."""
    caps_now = effective()
    if caps_now is None or err not in (E.EPERM, E.EACCES):
        return None
    what = f"bpf({command})"
    if command in SYS_ADMIN_COMMANDS:
        if caps_now >> CAP_SYS_ADMIN & 1:
            return None
        return PrivilegeError(
            f"{what} needs root or CAP_SYS_ADMIN (listing and opening the kernel's BPF "
            f"objects by id): this process (uid {os.geteuid()}) lacks CAP_SYS_ADMIN",
            missing=[CAP_SYS_ADMIN])
    types: frozenset[int] = frozenset()
    if command == "PROG_LOAD" and len(attr) >= 4:
        types = frozenset({int.from_bytes(attr[:4], sys.byteorder)})  # attr is native
    caps = needed(types)
    missing = [c for c in caps if not has(c, caps_now)]
    if missing:
        return PrivilegeError(missing_message(what, caps, missing), missing=missing)
    if command == "BTF_LOAD" and err == E.EPERM:
        # nothing but privileges refuses BTF_LOAD with EPERM: never a BTF feature
        where = (" (its capabilities are those of a user namespace, which the kernel "
                 "does not count for BPF)" if _in_user_namespace() else
                 " (a security policy, e.g. an LSM, forbids BPF to it)")
        return PrivilegeError(f"{what} was refused (EPERM) although this process holds "
                              f"CAP_BPF{where}: BPF needs root or CAP_BPF in the initial "
                              "user namespace", missing=[])
    return None


def perf_refusal(err: int) -> PrivilegeError | None:
    """An EPERM/EACCES from perf_event_open (tracepoints, kprobes, uprobes, perf
    buffers) from a process without CAP_PERFMON."""
    caps_now = effective()
    if caps_now is None or err not in (E.EPERM, E.EACCES) or has(CAP_PERFMON, caps_now):
        return None
    return PrivilegeError(
        f"perf_event_open needs root or CAP_PERFMON (tracepoints, probes and perf buffers; "
        f"or a lower kernel.perf_event_paranoid): this process (uid {os.geteuid()}) lacks "
        "CAP_PERFMON", missing=[CAP_PERFMON])


__all__ = [
    "CAP_BPF",
    "CAP_NET_ADMIN",
    "CAP_PERFMON",
    "CAP_SYS_ADMIN",
    "effective",
    "has",
    "needed",
    "perf_refusal",
    "refusal",
    "require",
    "unprivileged_bpf_allowed",
]
