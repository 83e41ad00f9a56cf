"""CO-RE candidates in split module BTF, searched the way libbpf searches them."""

from __future__ import annotations

import pytest

import corebpf.btf as btf
from corebpf.core import Target, relocate
from corebpf.obj import ObjectSpec
from tests.conftest import DATA, PROGS


def _target(with_module: bool) -> Target:
    base_path = DATA / "btf" / "6.1.0-56-amd64.btf.xz"
    mod_path = DATA / "btf" / "modules" / "6.1.0-56-amd64" / "veth.btf.xz"
    if not (base_path.exists() and mod_path.exists()):
        pytest.skip("Debian 6.1 vmlinux/veth BTF not in tests/data")
    base = btf.load(base_path)
    return Target(base, [btf.load(mod_path, base=base)] if with_module else [])


def test_module_types_found_after_vmlinux() -> None:
    target = _target(True)
    obj = ObjectSpec.load(PROGS / "core_module.bpf.o")
    reports, _ = relocate(obj, target)
    by_access = {r.local_spec.split("] ", 1)[1].split(" (")[0]: r for r in reports}
    mod = target.modules[0]
    veth = mod.type(mod.find("veth_priv"))
    assert isinstance(veth, btf.Struct)
    offsets = {m.name: m.offset // 8 for m in veth.members}
    r = by_access["struct veth_priv.requested_headroom"]
    assert not r.error and not r.poisoned and r.target == offsets["requested_headroom"]
    assert by_access["struct veth_priv.peer"].target == offsets["peer"]
    assert by_access["struct veth_priv"].target == 1  # type_exists
    pid = by_access["struct task_struct.pid"]
    assert pid.target_spec.startswith("<byte_off> [") and not pid.poisoned
    assert int(pid.target_spec.split("[")[1].split("]")[0]) < mod.first_id


def test_without_the_module_the_fields_are_poisoned() -> None:
    obj = ObjectSpec.load(PROGS / "core_module.bpf.o")
    reports, _ = relocate(obj, _target(False))
    veth = [r for r in reports if "veth_priv" in r.local_spec]
    assert all(r.poisoned or r.target == 0 for r in veth)
