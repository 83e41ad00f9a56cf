"""Skeletons on the real kernel: the generated module and Skeleton.open_file alike."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from corebpf import Error
from corebpf.maps import Map
from corebpf.skeleton import Skeleton, SkeletonError
from tests.conftest import PROGS

from .conftest import generate_module

MAP_TYPE_PERF_EVENT_ARRAY = 4

Opener = Callable[[], Any]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModuleType]:
    d = tmp_path_factory.mktemp("rt")
    return {stem: generate_module(d, stem)[1] for stem in ("skel_types", "tool_events")}


@pytest.fixture(params=["generated", "open_file"])
def opener(request: pytest.FixtureRequest, generated: dict[str, ModuleType]
           ) -> Callable[[str], Any]:
    """Opens a tests/progs object through its generated module or Skeleton.open_file."""
    def open_(stem: str) -> Any:
        if request.param == "generated":
            mod = generated[stem]
            return getattr(mod, "".join(p.title() for p in stem.split("_")))()
        return Skeleton.open_file(PROGS / f"{stem}.bpf.o")
    return open_


@pytest.fixture
def skel(opener: Callable[[str], Any]) -> Iterator[Any]:
    s = opener("skel_types")
    s.rodata.target_pid = os.getpid()
    s.rodata.target_ppid = os.getpid()
    yield s
    s.close()


@pytest.mark.parametrize(("name", "value", "words"), [
    ("nosuch", 1, ["nosuch", ".rodata"]),
    ("target_pid", -5, ["target_pid", "u32"]),
    ("small", "x", ["small", "s8"]),
    ("prefix", "abcdefgh", ["prefix", "char[8]"]),
    ("verbose", 2, ["verbose", "bool"]),
    ("verbose", "yes", ["verbose", "bool"]),
])
def test_rodata_checked(skel: Any, name: str, value: object, words: list[str]) -> None:
    with pytest.raises(Error) as e:
        setattr(skel.rodata, name, value)
    for w in words:
        assert w in str(e.value)


def test_events_counters_and_maps(skel: Any, tmp_path: Path) -> None:
    skel.rodata.prefix = "abcdefg"
    skel.load()
    skel.attach()
    perf = skel.maps.perf_events
    perf.reader()  # the perf buffer takes samples from now on
    for _ in range(3):
        os.getppid()
    cmd = tmp_path / f"u{uuid.uuid4().hex[:8]}"
    cmd.symlink_to("/bin/true")
    subprocess.run([f"./{cmd.name}"], cwd=tmp_path, check=True)

    events = list(skel.maps.events.read(timeout=0.5))
    mine = [e for e in events if e.pid == os.getpid()]
    assert [e.seq for e in mine] == [100, 101, 102]
    e = mine[0]
    assert type(e).__name__.lower() == "event"
    assert (e.delta, e.lvl, e.m[1][2], e.m[0][1]) == (-7, -2, 12, -1)
    assert (e.fl.c, e.fl.e, e.fl.f) == (-3, 0x2345678, -5)
    assert isinstance(e.comm, str) and e.comm
    execs = [e for e in events if e.ppid == os.getpid()]
    assert [e.filename for e in execs] == [f"./{cmd.name}"]

    pev = list(perf.read(timeout=0.5))
    assert [p.seq for p in pev] == [100, 101, 102]
    assert pev[0] == mine[0]  # equal by bytes

    assert (skel.bss.hits, skel.bss.execs, skel.bss.total, skel.bss.stepped) == (3, 1, 3, 9)
    items = dict(skel.maps.counts.items())
    key_cls = type(next(iter(items)))
    assert items == {key_cls(pid=os.getpid(), comm=e.comm): 3}
    per_cpu = skel.maps.pcpu[0]
    assert sum(s.hits for s in per_cpu) == 3
    assert len(per_cpu) >= 1


def test_writes_after_load(skel: Any) -> None:
    skel.load()
    skel.attach()
    skel.bss.hits = 100
    skel.data.bump = 5
    skel.data_cfg.step = 10
    os.getppid()
    assert (skel.bss.hits, skel.bss.total, skel.bss.stepped) == (101, 5, 10)
    # the map holds what the view shows (the view is the map's memory)
    in_map = skel.maps.bss.map.lookup(0)
    assert (in_map["hits"], in_map["total"], in_map["stepped"]) == (101, 5, 10)
    with pytest.raises(SkeletonError, match="target_pid"):
        skel.rodata.target_pid = 1
    assert skel.rodata.target_pid == os.getpid()
    with pytest.raises(SkeletonError):
        skel.maps.counts.max_entries = 5
    with pytest.raises(SkeletonError):
        skel.progs.on_getpid.autoload = False


def test_autoload_off(skel: Any) -> None:
    skel.progs.on_getpid.autoload = False
    skel.load()
    skel.attach()
    with pytest.raises(SkeletonError, match="on_getpid"):
        _ = skel.progs.on_getpid.fd
    os.getpid()
    os.getppid()
    assert skel.bss.other_hits == 0 and skel.bss.hits == 1


def test_autoload_on_counts(skel: Any) -> None:
    skel.load()
    skel.attach()
    os.getpid()
    assert skel.bss.other_hits >= 1
    assert skel.progs.on_getpid.fd > 0


def test_max_entries_before_load(skel: Any) -> None:
    skel.maps.counts.max_entries = 77
    skel.load()
    with Map.from_fd(os.dup(skel.maps.counts.fd)) as m:
        assert m.info().max_entries == 77


def test_perf_event_array_instead_of_ringbuf(opener: Callable[[str], Any]) -> None:
    with opener("tool_events") as skel:
        skel.maps.events.type = MAP_TYPE_PERF_EVENT_ARRAY
        skel.rodata.use_ringbuf = False
        skel.rodata.target_pid = os.getpid()
        skel.load()
        skel.attach()
        with Map.from_fd(os.dup(skel.maps.events.fd)) as m:
            assert m.info().type == MAP_TYPE_PERF_EVENT_ARRAY
        skel.maps.events.reader()
        os.getppid()
        os.getppid()
        evs = list(skel.maps.events.read(timeout=0.5))
        assert [(e.pid, e.seq) for e in evs] == [(os.getpid(), 0), (os.getpid(), 1)]
        assert isinstance(evs[0].comm, str)
        assert skel.bss.seq == 2


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_close_releases_everything(opener: Callable[[str], Any]) -> None:
    before = _fds()
    skel = opener("skel_types")
    skel.rodata.target_pid = os.getpid()
    skel.load()
    skel.attach()
    skel.maps.perf_events.reader()
    list(skel.maps.events.read(timeout=0))
    _ = list(skel.maps.counts.items())
    assert skel.links
    os.getppid()
    skel.close()
    assert _fds() == before
    assert skel.links == []
    assert skel.bss.hits == 1  # a snapshot stays readable
    with pytest.raises(SkeletonError):
        skel.bss.hits = 2
    with pytest.raises(SkeletonError):
        _ = skel.progs.on_getppid.fd


def test_order_errors(skel: Any) -> None:
    with pytest.raises(SkeletonError, match="load"):
        skel.attach()
    with pytest.raises(SkeletonError, match="counts"):
        _ = skel.maps.counts.fd
    skel.load()
    with pytest.raises(SkeletonError, match="already loaded"):
        skel.load()


def test_stale_generated_class(generated: dict[str, ModuleType]) -> None:
    with pytest.raises(SkeletonError, match="struct event") as e:
        generated["skel_types"].SkelTypes(PROGS / "skel_stale.bpf.o")
    assert "regenerate" in str(e.value)
