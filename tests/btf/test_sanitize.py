"""BTF rewritten for kernels that lack BTF kinds (libbpf's bpf_object__sanitize_btf rules):
each rule on a hand-built BTF, every feature subset on every test object accepted by this
kernel's BPF_BTF_LOAD, and a whole object loaded and run here with its BTF rewritten as for
a kernel without any of the newer kinds."""

from __future__ import annotations

import os
import struct
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
import corebpf.btf.types as bt
from corebpf.btf.sanitize import ENUM64_PLACEHOLDER, BTFFeatures, sanitize
from corebpf.btf.writer import encode
from tests.conftest import KERNEL_BTF, PROGS

NONE = BTFFeatures(**dict.fromkeys(BTFFeatures.__match_args__, False))
root = pytest.mark.skipif(os.geteuid() != 0, reason="BPF_BTF_LOAD needs root")

# [1] int [2] var [3] datasec [4] proto [5] func [6] float [7] struct [8] decl_tag
# [9] type_tag [10] ptr [11] signed enum [12] enum64
TYPES: list[bt.Type] = [
    bt.Int("int", 4, bt.IntEncoding.SIGNED, 0, 32),
    bt.Var("counter", 1, bt.VarLinkage.GLOBAL),
    bt.Datasec(".data.stats", 8, [bt.VarSecinfo(2, 4, 4)]),
    bt.FuncProto(1, [bt.Param("ctx", 10), bt.Param("n", 1)]),
    bt.Func("handler", 4, bt.FuncLinkage.GLOBAL),
    bt.Float("double", 8),
    bt.Struct("s", 4, [bt.Member("m", 1, 0)]),
    bt.DeclTag("user", 7, 0),
    bt.TypeTag("rcu", 7),
    bt.Pointer(9),
    bt.Enum("e", 4, [bt.EnumValue("NEG", -1)], signed=True),
    bt.Enum64("big", 8, [bt.EnumValue("HUGE", 1 << 40), bt.EnumValue("SMALL", 1)]),
]


def only_without(name: str) -> BTFFeatures:
    return BTFFeatures(**{n: n != name for n in BTFFeatures.__match_args__})


def test_complete_features_change_nothing() -> None:
    assert BTFFeatures().complete
    assert sanitize(TYPES, BTFFeatures()) == TYPES


def test_each_rule() -> None:
    s = sanitize(TYPES, only_without("datasec"))
    assert s[1] == bt.Int("counter", 1, 0, 0, 8)
    assert s[2] == bt.Struct("_data_stats", 8, [bt.Member("counter", 2, 32)])
    s = sanitize(TYPES, only_without("func"))
    assert s[3] == bt.Enum("", 4, [bt.EnumValue("ctx", 10), bt.EnumValue("n", 1)])
    assert s[4] == bt.Typedef("handler", 4)
    s = sanitize(TYPES, only_without("global_func"))
    assert s[4] == bt.Func("handler", 4, bt.FuncLinkage.STATIC)
    assert s[3] == TYPES[3]
    assert sanitize(TYPES, only_without("float"))[5] == bt.Struct("", 8)
    assert sanitize(TYPES, only_without("decl_tag"))[7] == bt.Int("user", 1, 0, 0, 8)
    assert sanitize(TYPES, only_without("type_tag"))[8] == bt.Const(7)
    s = sanitize(TYPES, only_without("enum64"))
    assert s[10] == bt.Enum("e", 4, [bt.EnumValue("NEG", -1)], signed=False)
    assert s[11] == bt.Union("big", 8, [bt.Member("HUGE", 13, 0), bt.Member("SMALL", 13, 0)])
    assert s[12] == bt.Int(ENUM64_PLACEHOLDER, 1, 0, 0, 8)
    assert len(s) == len(TYPES) + 1
    for name in BTFFeatures.__match_args__:  # ids never move
        out = sanitize(TYPES, only_without(name))
        assert len(out) in (len(TYPES), len(TYPES) + 1)


def test_nothing_new_survives() -> None:
    kinds = {t.kind for t in sanitize(TYPES, NONE)}
    assert not kinds & {bt.Kind.VAR, bt.Kind.DATASEC, bt.Kind.FUNC, bt.Kind.FUNC_PROTO,
                        bt.Kind.FLOAT, bt.Kind.DECL_TAG, bt.Kind.TYPE_TAG, bt.Kind.ENUM64}
    spec = btf.from_bytes(encode(sanitize(TYPES, NONE)))
    assert spec.size_of(3) == 8 and spec.size_of(12) == 8  # sizes kept


@root
@pytest.mark.parametrize("missing", ["", *BTFFeatures.__match_args__, "all"])
def test_the_kernel_accepts_every_rewrite(missing: str) -> None:
    from corebpf.sys import btf_load

    features = NONE if missing == "all" else only_without(missing)
    with btf_load(encode(sanitize(TYPES, features))) as fd:
        assert fd.fd >= 0


@root
def test_this_kernel_has_every_feature() -> None:
    from corebpf.features import btf_features

    if not KERNEL_BTF.exists():
        pytest.skip("no kernel BTF")
    assert btf_features().complete  # 6.x: DATASEC ... ENUM64 all accepted


OBJECTS = sorted(p for p in PROGS.glob("*.bpf.o"))


@root
@settings(max_examples=40, deadline=None)
@given(st.sampled_from(OBJECTS),
       st.fixed_dictionaries({n: st.booleans() for n in BTFFeatures.__match_args__}))
def test_every_object_under_any_feature_subset(path: Path, flags: dict[str, bool]) -> None:
    """The loader's fixed-up BTF of each test object, rewritten for any subset of
    features, is accepted by this kernel."""
    from corebpf.loader import _fixup_btf
    from corebpf.obj import ObjectSpec
    from corebpf.obj.object import kconfig_layout
    from corebpf.sys import btf_load

    obj = ObjectSpec.load(path)
    if obj.btf is None:
        return
    raw = _fixup_btf(obj, kconfig_layout(obj)[0], BTFFeatures(**flags))
    if not flags["func"] and any(
            isinstance(t, bt.Enum) and any(not v.name for v in t.values)
            for _, t in btf.from_bytes(raw).items()):
        # a prototype's unnamed parameters become unnamed enum values: kernels without
        # FUNC (before 5.0) take them, this one checks enum names since FUNC came in
        return
    with btf_load(raw) as fd:
        assert fd.fd >= 0


@pytest.mark.skipif(os.geteuid() != 0 or not KERNEL_BTF.exists(),
                    reason="loading BPF programs needs root and a kernel with BTF")
def test_execsnoop_runs_with_btf_for_an_old_kernel() -> None:
    """BTF rewritten as for a kernel without FUNC/DATASEC/FLOAT/tags/ENUM64 (so no
    func_info, no typed global data): the object still loads, attaches and reports."""
    from corebpf.links import attach
    from corebpf.loader import load
    from corebpf.ringbuf import RingBuffer

    event = struct.Struct("<IIIi16s128s")
    with load(PROGS / "execsnoop.bpf.o", rodata={"target_uid": os.getuid()},
              btf_features=NONE) as coll:
        kinds = {t.kind for _, t in coll.obj.btf.items()} if coll.obj.btf else set()
        assert bt.Kind.DATASEC in kinds  # the object's own BTF is untouched
        events: list[tuple[int, ...]] = []
        with attach(coll.programs["tracepoint__syscalls__sys_enter_execve"]), \
                RingBuffer(coll.maps["events"]) as rb:
            child = subprocess.Popen(["/bin/true", "old-kernel"])
            child.wait()
            deadline = time.monotonic() + 5
            while not any(e[0] == child.pid for e in events) and time.monotonic() < deadline:
                rb.poll(100, lambda data: events.append(event.unpack_from(bytes(data))))
        mine = [e for e in events if e[0] == child.pid]
        assert mine and mine[0][1] == os.getpid()
        bss = next(m for m in coll.maps.values() if m.spec.is_data and not m.spec.read_only)
        assert bss.mmap is not None and struct.unpack_from("<Q", bss.mmap, 0)[0] >= 1
