"""What the running kernel's BTF loader accepts, probed once per process the way libbpf
probes it: a tiny BTF using one feature is offered to BPF_BTF_LOAD, and the kernel's answer
is the verdict."""

from __future__ import annotations

from functools import cache

from .btf import types as bt
from .btf.sanitize import BTFFeatures
from .btf.writer import encode
from .errors import LoadError


def _accepted(types: list[bt.Type]) -> bool:
    from . import sys as ksys

    try:
        with ksys.btf_load(encode(types)):
            return True
    except (LoadError, OSError):
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
