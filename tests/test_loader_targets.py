"""load(obj, btf=[...]) and Skeleton(btf=[...]) on the real kernel: several CO-RE targets
searched in order (an application's BTF, then the kernel's)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.errors import LoadError
from corebpf.links import attach_programs
from corebpf.loader import load
from corebpf.skeleton import Skeleton
from tests.conftest import KERNEL_BTF
from tests.user_btf import APP_V1, APP_V2, OBJ, RESULTS, Layout, app_btf, expected, results

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not KERNEL_BTF.exists(),
                                reason="loading BPF programs needs root and a kernel with BTF")


def _check(got: dict[str, int], layout: Layout) -> None:
    assert {k: got[k] for k in expected(layout)} == expected(layout)
    assert got["pid_ok"] > 0 and got["pid_bad"] == 0
    assert got["regs_ip_off"] == btf.kernel().member_offset(btf.kernel().find("pt_regs"),
                                                             "ip")[0] // 8


def test_load_with_the_application_btf_before_the_kernels(tmp_path: Path) -> None:
    app = tmp_path / "app.btf"
    app.write_bytes(app_btf(APP_V2).raw)
    # a Spec and paths alike; the first with a struct data decides
    with load(OBJ, btf=[app_btf(APP_V1), str(app), KERNEL_BTF]) as coll:
        links, _ = attach_programs(coll)
        try:
            os.getppid()
            raw = coll.maps["core_tar.bss"].read_data()
        finally:
            for link in links:
                link.close()
    _check(results(raw), APP_V1)


def test_the_kernel_is_searched_only_when_listed() -> None:
    with pytest.raises(LoadError, match="task_struct has no field pid on the target BTF"):
        load(OBJ, btf=[app_btf(APP_V1)])


def test_skeleton_takes_the_same_list() -> None:
    """Skeleton(btf=[...]) and skel.load(btf=[...]) alike."""
    for skel, layout in ((Skeleton.open_file(OBJ, btf=[app_btf(APP_V2), KERNEL_BTF]), APP_V2),
                         (Skeleton.open_file(OBJ), APP_V1)):
        with skel:
            if layout is APP_V2:
                skel.load()
            else:
                skel.load(btf=[app_btf(APP_V1), btf.kernel()])
            skel.attach()
            os.getppid()
            got = {name: getattr(skel.bss.results, name) for name in RESULTS}
        _check(got, layout)
