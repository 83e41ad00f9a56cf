"""The names bpftool prints for program, map, link and attach types (libbpf's
``libbpf_bpf_*_type_str``: the uapi enumerator, lower case, without its prefix).

Types newer than these tables print as their number, as bpftool prints the ones its
libbpf does not know.
"""

from __future__ import annotations

from ..obj.sections import AttachType, MapType, ProgramType

#: enum bpf_link_type
LINK_TYPES = ("unspec", "raw_tracepoint", "tracing", "cgroup", "iter", "netns", "xdp",
              "perf_event", "kprobe_multi", "struct_ops", "netfilter", "tcx", "uprobe_multi",
              "netkit", "sockmap")
#: enum bpf_perf_event_type
PERF_EVENT_TYPES = ("unspec", "uprobe", "uretprobe", "kprobe", "kretprobe", "tracepoint",
                    "event")
#: enum bpf_cgroup_iter_order, as bpftool spells it
CGROUP_ITER_ORDERS = ("order_unspec", "self_only", "descendants_pre", "descendants_post",
                      "ancestors_up")

_EXTRA_ATTACH = {57: "trace_uprobe_session"}


def prog_type_name(value: int) -> str | int:
    """``kprobe``, ``sched_cls``, ... or the number of a type this table lacks."""
    try:
        return ProgramType(value).name.lower()
    except ValueError:
        return value


def map_type_name(value: int) -> str | int:
    """``hash``, ``percpu_array``, ``ringbuf``, ..."""
    try:
        return MapType(value).name.lower()
    except ValueError:
        return value


def attach_type_name(value: int) -> str | int:
    """``cgroup_inet_sock_create``, ``trace_raw_tp``, ``tcx_ingress``, ..."""
    try:
        return AttachType(value).name.lower()
    except ValueError:
        return _EXTRA_ATTACH.get(value, value)


def link_type_name(value: int) -> str | int:
    """``raw_tracepoint``, ``perf_event``, ``tcx``, ..."""
    return LINK_TYPES[value] if 0 <= value < len(LINK_TYPES) else value


def type_text(name: str | int, what: str = "type") -> str:
    """A type for plain output: its name, or ``type 11`` for one without a name."""
    return name if isinstance(name, str) else f"{what} {name}"


__all__ = [
    "CGROUP_ITER_ORDERS",
    "LINK_TYPES",
    "PERF_EVENT_TYPES",
    "attach_type_name",
    "link_type_name",
    "map_type_name",
    "prog_type_name",
    "type_text",
]
