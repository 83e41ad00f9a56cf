"""What the running kernel's BTF loader accepts, probed once per process the way libbpf
probes it: a tiny BTF using one feature is offered to BPF_BTF_LOAD, and the kernel's answer
is the verdict."""

from __future__ import annotations

from functools import cache

from .btf import types as bt
from .btf.sanitize import BTFFeatures
from .btf.writer import encode
from .errors import Error, LoadError


def _accepted(types: list[bt.Type]) -> bool:
    from . import sys as ksys

    try:
        with ksys.btf_load(encode(types)):
            return True
    except LoadError as e:
        if e.errno in (1, 13):  # EPERM, EACCES: a refusal of us, not of the feature
            raise
        return False
    except OSError:
        return False


_INT = bt.Int("int", 4, bt.IntEncoding.SIGNED, 0, 32)

#: one minimal BTF per feature; [1] is always ``int``
_PROBES: dict[str, list[bt.Type]] = {
    "func": [_INT, bt.FuncProto(0), bt.Func("x", 2, bt.FuncLinkage.STATIC)],
    "global_func": [_INT, bt.FuncProto(0), bt.Func("x", 2, bt.FuncLinkage.GLOBAL)],
    "datasec": [_INT, bt.Var("x", 1, bt.VarLinkage.GLOBAL),
                bt.Datasec(".data", 4, [bt.VarSecinfo(2, 0, 4)])],
    "float": [bt.Float("float", 4)],
    "decl_tag": [_INT, bt.Struct("s", 4, [bt.Member("m", 1, 0)]),
                 bt.DeclTag("tag", 2, -1)],
    "type_tag": [_INT, bt.TypeTag("tag", 1), bt.Pointer(2)],
    "enum64": [bt.Enum64("e", 8, [bt.EnumValue("v", 1 << 40)])],
}


@cache
def btf_features() -> BTFFeatures:
    """The running kernel's BTF features (cached for the process)."""
    return BTFFeatures(**{name: _accepted(types) for name, types in _PROBES.items()})


__all__ = ["btf_features"]


# -- attach points: what the tools' compat layer asks before choosing a program ---------

_TRACING_PROG = 26  # BPF_PROG_TYPE_TRACING
_TRACE_FENTRY = 24  # BPF_TRACE_FENTRY
_MOV_R0_0_EXIT = bytes.fromhex("b700000000000000" "9500000000000000")


def tracepoint_exists(category: str, name: str) -> bool:
    """Whether tracefs has ``events/<category>/<name>`` (mounting tracefs if needed)."""
    import os

    from .sys.fs import ensure_tracefs

    try:
        root = ensure_tracefs()
    except OSError:
        return False
    return os.path.exists(os.path.join(root, "events", category, name, "id"))


def kprobes_available() -> bool:
    """Whether the kernel can create kprobes (a kprobe PMU, or tracefs kprobe_events)."""
    import os

    if os.path.exists("/sys/bus/event_source/devices/kprobe/type"):
        return True
    from .sys.fs import ensure_tracefs

    try:
        return os.path.exists(os.path.join(ensure_tracefs(), "kprobe_events"))
    except OSError:
        return False


def fentry_can_attach(func: str, vmlinux: object | None = None) -> bool:
    """Whether an fentry program on kernel function ``func`` loads here (libbpf-tools'
    fentry_can_attach): kernel BTF with the function, trampolines, and a kernel that lets
    this process use them (some refuse them with EPERM even to root)."""
    from . import sys as ksys
    from .btf import Spec

    try:
        if vmlinux is None:
            from .btf.files import KERNEL_BTF
            from .btf.files import load as load_btf

            vmlinux = load_btf(KERNEL_BTF)
        assert isinstance(vmlinux, Spec)
        ids = vmlinux.find_by_name(func, bt.Kind.FUNC)
    except (OSError, Error):  # no kernel BTF (or an unreadable one): no trampolines
        return False
    if not ids:
        return False
    try:
        res = ksys.prog_load(_TRACING_PROG, _MOV_R0_0_EXIT, "GPL", name="fentry_probe",
                             expected_attach_type=_TRACE_FENTRY, attach_btf_id=ids[0])
    except (LoadError, OSError):
        return False
    res.fd.close()
    return True


def has_ringbuf(spec: object) -> bool:
    """Whether the kernel described by BTF ``spec`` has BPF ring buffers: the same
    question the tools' BPF side asks with bpf_core_enum_value_exists(enum bpf_func_id,
    BPF_FUNC_ringbuf_output), so both sides always agree."""
    from .btf import Spec

    assert isinstance(spec, Spec)
    for tid in spec.find_by_name("bpf_func_id", bt.Kind.ENUM):
        t = spec.type(tid)
        if isinstance(t, bt.Enum) and any(v.name == "BPF_FUNC_ringbuf_output"
                                          for v in t.values):
            return True
    return False


__all__ += ["fentry_can_attach", "has_ringbuf", "kprobes_available", "tracepoint_exists"]
