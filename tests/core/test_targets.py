"""Several CO-RE targets searched in order: for each local type the first target with a
candidate decides, as libbpf decides between vmlinux and module BTF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.btf.writer import Builder
from corebpf.cli import main
from corebpf.core import RelocationReport, Target, as_target, relocate
from corebpf.errors import RelocationError
from corebpf.obj import ObjectSpec
from tests.conftest import KERNEL_BTF
from tests.user_btf import APP_V1, APP_V2, OBJ, app_btf, expected

needs_kernel_btf = pytest.mark.skipif(not KERNEL_BTF.exists(), reason="no kernel BTF")


def _by_access(reports: list[RelocationReport]) -> dict[str, RelocationReport]:
    """'struct data.b' / 'struct data' -> its report (the byte offset ones for fields)."""
    out: dict[str, RelocationReport] = {}
    for r in reports:
        assert r.error is None, r.error
        access = r.local_spec.split("] ", 1)[1].split(" (")[0]
        out.setdefault(f"{r.kind.libbpf_name} {access}", r)
    return out


def _values(reports: list[RelocationReport]) -> dict[str, int | None]:
    got = {k: None if r.poisoned else r.target for k, r in _by_access(reports).items()}
    return {"b_off": got["byte_off struct data.b"], "c_off": got["byte_off struct data.c"],
            "c_size": got["byte_sz struct data.c"], "data_size": got["type_size struct data"],
            "x_exists": got["field_exists struct data.x"],
            "regs_ip_off": got["byte_off struct pt_regs.ip"],
            "pid_off": got["byte_off struct task_struct.pid"]}


@pytest.fixture(scope="module")
def kernel() -> btf.Spec:
    if not KERNEL_BTF.exists():
        pytest.skip("no kernel BTF")
    return btf.kernel()


@pytest.fixture(scope="module")
def obj() -> ObjectSpec:
    return ObjectSpec.load(OBJ)


def test_user_btf_first_then_the_kernel(obj: ObjectSpec, kernel: btf.Spec) -> None:
    v1 = app_btf(APP_V1)
    alone = _values(relocate(obj, kernel)[0])
    assert alone["data_size"] == 0  # the kernel has no struct data: all poisoned/absent
    got = _values(relocate(obj, [v1, kernel])[0])
    assert {k: got[k] for k in expected(APP_V1)} == expected(APP_V1)
    # kernel types still come from the kernel's BTF
    assert got["pid_off"] == alone["pid_off"] and got["pid_off"]
    assert got["regs_ip_off"] == alone["regs_ip_off"]


def test_the_first_target_with_a_candidate_decides(obj: ObjectSpec, kernel: btf.Spec) -> None:
    v1, v2 = app_btf(APP_V1), app_btf(APP_V2)
    for order, layout in (([v1, v2, kernel], APP_V1), ([v2, v1, kernel], APP_V2),
                          ([kernel, v2, v1], APP_V2)):
        got = _values(relocate(obj, order)[0])
        assert {k: got[k] for k in expected(layout)} == expected(layout)


def test_a_candidate_that_does_not_match_still_decides(obj: ObjectSpec,
                                                        kernel: btf.Spec) -> None:
    """As vmlinux before modules: a first target with a task_struct lacking pid poisons
    the read; the kernel listed after is not searched for it."""
    b = Builder()
    long = b.add(btf.Int("long", 8, btf.IntEncoding.SIGNED, 0, 64))
    b.add(btf.Struct("task_struct", 8, [btf.Member("other", long, 0)]))
    shadow = btf.from_bytes(b.encode(), source="shadow")
    got = _values(relocate(obj, [shadow, kernel])[0])
    assert got["pid_off"] is None
    assert _values(relocate(obj, [kernel, shadow])[0])["pid_off"]


def test_target_forms(kernel: btf.Spec) -> None:
    v1, v2 = app_btf(APP_V1), app_btf(APP_V2)
    assert as_target(v1).specs() == [v1]
    t = Target.ordered([Target(kernel, then=[v1]), v2])
    assert t.specs() == [kernel, v1, v2]
    assert as_target([v1]).specs() == [v1]
    with pytest.raises(RelocationError, match="no CO-RE target"):
        as_target([])


@needs_kernel_btf
def test_core_relocate_takes_several_targets(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.btf"
    path.write_bytes(app_btf(APP_V1).raw)
    assert main(["core", "relocate", str(OBJ), "--target", str(path), "--target",
                 str(KERNEL_BTF), "--json"]) == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r["target"] for r in rows[:2]] == [APP_V1[0][1][2], APP_V1[0][4][2]]
    assert not any(r["poisoned"] for r in rows if r["kind"] == "byte_off")
