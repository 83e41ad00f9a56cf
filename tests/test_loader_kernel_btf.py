"""The kernel's BTF is read once per load, also when the caller opened it already (as
the tools do to choose their CO-RE target) and passes it as ``btf``."""

from __future__ import annotations

import os
from typing import Any

import pytest

import corebpf.btf as btf
import corebpf.loader as loader_mod
from corebpf.loader import load
from tests.conftest import PROGS

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/sys/kernel/btf/vmlinux"),
    reason="loading BPF programs needs root and a kernel with BTF",
)


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = btf.load

    def counted(*args: Any, **kwargs: Any) -> btf.Spec:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(loader_mod, "load_btf", counted)
    return calls


def test_kernel_btf_given_as_target_serves_as_vmlinux(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    calls = _count_reads(monkeypatch)
    kernel = btf.kernel()
    with load(PROGS / "execsnoop.bpf.o", btf=kernel) as coll:  # CO-RE against it
        assert coll.core_reports and not any(r.error for r in coll.core_reports)
    # tp_btf: its attach id is looked up in the kernel's BTF, the one given
    with load(PROGS / "attach.bpf.o", btf=kernel, rodata={"target_pid": os.getpid()},
              programs=["on_tp_btf"]) as coll:
        assert set(coll.programs) == {"on_tp_btf"}
    assert calls == []


def test_without_one_the_loader_reads_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_reads(monkeypatch)
    with load(PROGS / "attach.bpf.o", rodata={"target_pid": os.getpid()},
              programs=["on_tp_btf"]):
        pass
    assert calls == [(btf.KERNEL_BTF,)]
