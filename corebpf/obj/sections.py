"""Program section names and the program/attach types they imply (libbpf's SEC() table)."""

from __future__ import annotations

import enum

from .._enum import EnumBase, IntEnumBase, simple_enum
from .._record import record


@simple_enum(enum.IntEnum)
class MapType(IntEnumBase):
    """BPF_MAP_TYPE_* (include/uapi/linux/bpf.h); ``name.lower()`` is bpftool's name for it."""

    UNSPEC = 0
    HASH = 1
    ARRAY = 2
    PROG_ARRAY = 3
    PERF_EVENT_ARRAY = 4
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    STACK_TRACE = 7
    CGROUP_ARRAY = 8
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11
    ARRAY_OF_MAPS = 12
    HASH_OF_MAPS = 13
    DEVMAP = 14
    SOCKMAP = 15
    CPUMAP = 16
    XSKMAP = 17
    SOCKHASH = 18
    CGROUP_STORAGE = 19
    REUSEPORT_SOCKARRAY = 20
    PERCPU_CGROUP_STORAGE = 21
    QUEUE = 22
    STACK = 23
    SK_STORAGE = 24
    DEVMAP_HASH = 25
    STRUCT_OPS = 26
    RINGBUF = 27
    INODE_STORAGE = 28
    TASK_STORAGE = 29
    BLOOM_FILTER = 30
    USER_RINGBUF = 31
    CGRP_STORAGE = 32
    ARENA = 33


def map_type_name(value: int) -> str:
    """bpftool's name of a map type (``ringbuf``), or ``type N`` for one newer than us."""
    try:
        return MapType(value).name.lower()
    except ValueError:
        return f"type {value}"


@simple_enum(enum.IntEnum)
class ProgramType(IntEnumBase):
    UNSPEC = 0
    SOCKET_FILTER = 1
    KPROBE = 2
    SCHED_CLS = 3
    SCHED_ACT = 4
    TRACEPOINT = 5
    XDP = 6
    PERF_EVENT = 7
    CGROUP_SKB = 8
    CGROUP_SOCK = 9
    LWT_IN = 10
    LWT_OUT = 11
    LWT_XMIT = 12
    SOCK_OPS = 13
    SK_SKB = 14
    CGROUP_DEVICE = 15
    SK_MSG = 16
    RAW_TRACEPOINT = 17
    CGROUP_SOCK_ADDR = 18
    LWT_SEG6LOCAL = 19
    LIRC_MODE2 = 20
    SK_REUSEPORT = 21
    FLOW_DISSECTOR = 22
    CGROUP_SYSCTL = 23
    RAW_TRACEPOINT_WRITABLE = 24
    CGROUP_SOCKOPT = 25
    TRACING = 26
    STRUCT_OPS = 27
    EXT = 28
    LSM = 29
    SK_LOOKUP = 30
    SYSCALL = 31
    NETFILTER = 32


@simple_enum(enum.IntEnum)
class AttachType(IntEnumBase):
    CGROUP_INET_INGRESS = 0
    CGROUP_INET_EGRESS = 1
    CGROUP_INET_SOCK_CREATE = 2
    CGROUP_SOCK_OPS = 3
    SK_SKB_STREAM_PARSER = 4
    SK_SKB_STREAM_VERDICT = 5
    CGROUP_DEVICE = 6
    SK_MSG_VERDICT = 7
    CGROUP_INET4_BIND = 8
    CGROUP_INET6_BIND = 9
    CGROUP_INET4_CONNECT = 10
    CGROUP_INET6_CONNECT = 11
    CGROUP_INET4_POST_BIND = 12
    CGROUP_INET6_POST_BIND = 13
    CGROUP_UDP4_SENDMSG = 14
    CGROUP_UDP6_SENDMSG = 15
    LIRC_MODE2 = 16
    FLOW_DISSECTOR = 17
    CGROUP_SYSCTL = 18
    CGROUP_UDP4_RECVMSG = 19
    CGROUP_UDP6_RECVMSG = 20
    CGROUP_GETSOCKOPT = 21
    CGROUP_SETSOCKOPT = 22
    TRACE_RAW_TP = 23
    TRACE_FENTRY = 24
    TRACE_FEXIT = 25
    MODIFY_RETURN = 26
    LSM_MAC = 27
    TRACE_ITER = 28
    CGROUP_INET4_GETPEERNAME = 29
    CGROUP_INET6_GETPEERNAME = 30
    CGROUP_INET4_GETSOCKNAME = 31
    CGROUP_INET6_GETSOCKNAME = 32
    XDP_DEVMAP = 33
    CGROUP_INET_SOCK_RELEASE = 34
    XDP_CPUMAP = 35
    SK_LOOKUP = 36
    XDP = 37
    SK_SKB_VERDICT = 38
    SK_REUSEPORT_SELECT = 39
    SK_REUSEPORT_SELECT_OR_MIGRATE = 40
    PERF_EVENT = 41
    TRACE_KPROBE_MULTI = 42
    LSM_CGROUP = 43
    STRUCT_OPS = 44
    NETFILTER = 45
    TCX_INGRESS = 46
    TCX_EGRESS = 47
    TRACE_UPROBE_MULTI = 48
    CGROUP_UNIX_CONNECT = 49
    CGROUP_UNIX_SENDMSG = 50
    CGROUP_UNIX_RECVMSG = 51
    CGROUP_UNIX_GETPEERNAME = 52
    CGROUP_UNIX_GETSOCKNAME = 53
    NETKIT_PRIMARY = 54
    NETKIT_PEER = 55
    TRACE_KPROBE_SESSION = 56


#: How a program of this section is attached (the loader dispatches on it).
@simple_enum(enum.Enum)
class AttachKind(EnumBase):
    NONE = "none"
    KPROBE = "kprobe"
    UPROBE = "uprobe"
    KSYSCALL = "ksyscall"
    USDT = "usdt"
    TRACEPOINT = "tracepoint"
    RAW_TRACEPOINT = "raw_tracepoint"
    TRACING = "tracing"  # fentry/fexit/fmod_ret/tp_btf/freplace
    LSM = "lsm"
    ITER = "iter"
    CGROUP = "cgroup"
    XDP = "xdp"
    TC = "tc"
    TCX = "tcx"
    SOCKET = "socket"
    STRUCT_OPS = "struct_ops"
    KPROBE_MULTI = "kprobe_multi"
    UPROBE_MULTI = "uprobe_multi"
    NETFILTER = "netfilter"
    NETKIT = "netkit"


@record
class SectionDef:
    """One row of the table: a SEC() prefix and what it means."""

    prefix: str
    prog_type: ProgramType
    attach_type: AttachType | None
    attach: AttachKind
    #: attach target resolved through kernel BTF (fentry/, lsm/, tp_btf/, iter/ ...)
    btf_target: bool = False
    sleepable: bool = False
    #: "is this attach type mandatory for the kernel" (libbpf's SEC_ATTACHABLE)
    attachable: bool = False
    xdp_frags: bool = False

    def matches(self, name: str) -> bool:
        """libbpf's rules: "x+" is "x" or "x/...", "x/" needs the slash, else exact."""
        p = self.prefix
        if p.endswith("/"):
            return name.startswith(p)
        if p.endswith("+"):
            base = p[:-1]
            return name == base or name.startswith(base + "/")
        return name == p


P, A, K = ProgramType, AttachType, AttachKind

SECTION_DEFS: tuple[SectionDef, ...] = (
    SectionDef("socket", P.SOCKET_FILTER, None, K.SOCKET),
    SectionDef("sk_reuseport/migrate", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT_OR_MIGRATE, K.NONE,
               attachable=True),
    SectionDef("sk_reuseport", P.SK_REUSEPORT, A.SK_REUSEPORT_SELECT, K.NONE, attachable=True),
    SectionDef("kprobe+", P.KPROBE, None, K.KPROBE),
    SectionDef("uprobe+", P.KPROBE, None, K.UPROBE),
    SectionDef("uprobe.s+", P.KPROBE, None, K.UPROBE, sleepable=True),
    SectionDef("kretprobe+", P.KPROBE, None, K.KPROBE),
    SectionDef("uretprobe+", P.KPROBE, None, K.UPROBE),
    SectionDef("uretprobe.s+", P.KPROBE, None, K.UPROBE, sleepable=True),
    SectionDef("kprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI, K.KPROBE_MULTI),
    SectionDef("kretprobe.multi+", P.KPROBE, A.TRACE_KPROBE_MULTI, K.KPROBE_MULTI),
    SectionDef("kprobe.session+", P.KPROBE, A.TRACE_KPROBE_SESSION, K.KPROBE_MULTI),
    SectionDef("uprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI, K.UPROBE_MULTI),
    SectionDef("uretprobe.multi+", P.KPROBE, A.TRACE_UPROBE_MULTI, K.UPROBE_MULTI),
    SectionDef("uprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, K.UPROBE_MULTI, sleepable=True),
    SectionDef("uretprobe.multi.s+", P.KPROBE, A.TRACE_UPROBE_MULTI, K.UPROBE_MULTI,
               sleepable=True),
    SectionDef("ksyscall+", P.KPROBE, None, K.KSYSCALL),
    SectionDef("kretsyscall+", P.KPROBE, None, K.KSYSCALL),
    SectionDef("usdt+", P.KPROBE, None, K.USDT),
    SectionDef("usdt.s+", P.KPROBE, None, K.USDT, sleepable=True),
    SectionDef("tc/ingress", P.SCHED_CLS, A.TCX_INGRESS, K.TCX),
    SectionDef("tc/egress", P.SCHED_CLS, A.TCX_EGRESS, K.TCX),
    SectionDef("tcx/ingress", P.SCHED_CLS, A.TCX_INGRESS, K.TCX),
    SectionDef("tcx/egress", P.SCHED_CLS, A.TCX_EGRESS, K.TCX),
    SectionDef("tc", P.SCHED_CLS, None, K.TC),
    SectionDef("classifier", P.SCHED_CLS, None, K.TC),
    SectionDef("action", P.SCHED_ACT, None, K.NONE),
    SectionDef("netkit/primary", P.SCHED_CLS, A.NETKIT_PRIMARY, K.NETKIT),
    SectionDef("netkit/peer", P.SCHED_CLS, A.NETKIT_PEER, K.NETKIT),
    SectionDef("tracepoint+", P.TRACEPOINT, None, K.TRACEPOINT),
    SectionDef("tp+", P.TRACEPOINT, None, K.TRACEPOINT),
    SectionDef("raw_tracepoint+", P.RAW_TRACEPOINT, None, K.RAW_TRACEPOINT),
    SectionDef("raw_tp+", P.RAW_TRACEPOINT, None, K.RAW_TRACEPOINT),
    SectionDef("raw_tracepoint.w+", P.RAW_TRACEPOINT_WRITABLE, None, K.RAW_TRACEPOINT),
    SectionDef("raw_tp.w+", P.RAW_TRACEPOINT_WRITABLE, None, K.RAW_TRACEPOINT),
    SectionDef("tp_btf+", P.TRACING, A.TRACE_RAW_TP, K.TRACING, btf_target=True),
    SectionDef("fentry+", P.TRACING, A.TRACE_FENTRY, K.TRACING, btf_target=True),
    SectionDef("fmod_ret+", P.TRACING, A.MODIFY_RETURN, K.TRACING, btf_target=True),
    SectionDef("fexit+", P.TRACING, A.TRACE_FEXIT, K.TRACING, btf_target=True),
    SectionDef("fentry.s+", P.TRACING, A.TRACE_FENTRY, K.TRACING, btf_target=True,
               sleepable=True),
    SectionDef("fmod_ret.s+", P.TRACING, A.MODIFY_RETURN, K.TRACING, btf_target=True,
               sleepable=True),
    SectionDef("fexit.s+", P.TRACING, A.TRACE_FEXIT, K.TRACING, btf_target=True,
               sleepable=True),
    SectionDef("freplace+", P.EXT, None, K.TRACING, btf_target=True),
    SectionDef("lsm+", P.LSM, A.LSM_MAC, K.LSM, btf_target=True),
    SectionDef("lsm.s+", P.LSM, A.LSM_MAC, K.LSM, btf_target=True, sleepable=True),
    SectionDef("lsm_cgroup+", P.LSM, A.LSM_CGROUP, K.NONE, btf_target=True),
    SectionDef("iter+", P.TRACING, A.TRACE_ITER, K.ITER, btf_target=True),
    SectionDef("iter.s+", P.TRACING, A.TRACE_ITER, K.ITER, btf_target=True, sleepable=True),
    SectionDef("syscall", P.SYSCALL, None, K.NONE, sleepable=True),
    SectionDef("xdp.frags/devmap", P.XDP, A.XDP_DEVMAP, K.NONE, xdp_frags=True),
    SectionDef("xdp/devmap", P.XDP, A.XDP_DEVMAP, K.NONE, attachable=True),
    SectionDef("xdp.frags/cpumap", P.XDP, A.XDP_CPUMAP, K.NONE, xdp_frags=True),
    SectionDef("xdp/cpumap", P.XDP, A.XDP_CPUMAP, K.NONE, attachable=True),
    SectionDef("xdp.frags", P.XDP, A.XDP, K.XDP, xdp_frags=True),
    SectionDef("xdp", P.XDP, A.XDP, K.XDP),
    SectionDef("perf_event", P.PERF_EVENT, None, K.NONE),
    SectionDef("lwt_in", P.LWT_IN, None, K.NONE),
    SectionDef("lwt_out", P.LWT_OUT, None, K.NONE),
    SectionDef("lwt_xmit", P.LWT_XMIT, None, K.NONE),
    SectionDef("lwt_seg6local", P.LWT_SEG6LOCAL, None, K.NONE),
    SectionDef("sockops", P.SOCK_OPS, A.CGROUP_SOCK_OPS, K.CGROUP),
    SectionDef("sk_skb/stream_parser", P.SK_SKB, A.SK_SKB_STREAM_PARSER, K.NONE),
    SectionDef("sk_skb/stream_verdict", P.SK_SKB, A.SK_SKB_STREAM_VERDICT, K.NONE),
    SectionDef("sk_skb", P.SK_SKB, None, K.NONE),
    SectionDef("sk_msg", P.SK_MSG, A.SK_MSG_VERDICT, K.NONE),
    SectionDef("lirc_mode2", P.LIRC_MODE2, A.LIRC_MODE2, K.NONE),
    SectionDef("flow_dissector", P.FLOW_DISSECTOR, A.FLOW_DISSECTOR, K.NONE),
    SectionDef("cgroup_skb/ingress", P.CGROUP_SKB, A.CGROUP_INET_INGRESS, K.CGROUP),
    SectionDef("cgroup_skb/egress", P.CGROUP_SKB, A.CGROUP_INET_EGRESS, K.CGROUP),
    SectionDef("cgroup/skb", P.CGROUP_SKB, None, K.CGROUP),
    SectionDef("cgroup/sock_create", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/sock_release", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_RELEASE, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/sock", P.CGROUP_SOCK, A.CGROUP_INET_SOCK_CREATE, K.CGROUP),
    SectionDef("cgroup/post_bind4", P.CGROUP_SOCK, A.CGROUP_INET4_POST_BIND, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/post_bind6", P.CGROUP_SOCK, A.CGROUP_INET6_POST_BIND, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/bind4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_BIND, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/bind6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_BIND, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/connect4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_CONNECT, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/connect6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_CONNECT, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/connect_unix", P.CGROUP_SOCK_ADDR, A.CGROUP_UNIX_CONNECT, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/sendmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_SENDMSG, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/sendmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_SENDMSG, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/recvmsg4", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP4_RECVMSG, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/recvmsg6", P.CGROUP_SOCK_ADDR, A.CGROUP_UDP6_RECVMSG, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/getpeername4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETPEERNAME, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/getpeername6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETPEERNAME, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/getsockname4", P.CGROUP_SOCK_ADDR, A.CGROUP_INET4_GETSOCKNAME, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/getsockname6", P.CGROUP_SOCK_ADDR, A.CGROUP_INET6_GETSOCKNAME, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/sysctl", P.CGROUP_SYSCTL, A.CGROUP_SYSCTL, K.CGROUP, attachable=True),
    SectionDef("cgroup/getsockopt", P.CGROUP_SOCKOPT, A.CGROUP_GETSOCKOPT, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/setsockopt", P.CGROUP_SOCKOPT, A.CGROUP_SETSOCKOPT, K.CGROUP,
               attachable=True),
    SectionDef("cgroup/dev", P.CGROUP_DEVICE, A.CGROUP_DEVICE, K.CGROUP),
    SectionDef("struct_ops+", P.STRUCT_OPS, None, K.STRUCT_OPS),
    SectionDef("struct_ops.s+", P.STRUCT_OPS, None, K.STRUCT_OPS, sleepable=True),
    SectionDef("sk_lookup", P.SK_LOOKUP, A.SK_LOOKUP, K.NONE, attachable=True),
    SectionDef("netfilter", P.NETFILTER, A.NETFILTER, K.NETFILTER),
)


def section_def(name: str) -> SectionDef | None:
    """The first table row matching a section name, as libbpf picks it."""
    for d in SECTION_DEFS:
        if d.matches(name):
            return d
    return None


def attach_target(name: str, d: SectionDef) -> str:
    """What follows the section prefix ("sched/sched_switch" of "tp/sched/sched_switch")."""
    base = d.prefix.rstrip("+")
    if base.endswith("/"):
        return name[len(base):]
    return name[len(base) + 1:] if len(name) > len(base) else ""
