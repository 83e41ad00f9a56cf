"""corebpf gen skeleton: the generated classes against the object's BTF, and the module
against ruff and mypy --strict."""

from __future__ import annotations

import ctypes
import enum
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from corebpf import skeleton as _skel
from corebpf.btf import codec
from corebpf.btf import types as bt
from corebpf.obj.object import ObjectSpec
from corebpf.skeleton.generate import GenerateError, generate
from tests.conftest import PROGS, ROOT

from .conftest import generate_module

OBJECTS = ["btf_shapes", "execsnoop", "maps", "events", "tool_events", "globals", "skel_types"]
BIN = Path(sys.executable).parent


def type_classes(mod: ModuleType) -> dict[str, Any]:
    """The module's struct/union classes by ``struct NAME`` / ``union NAME``."""
    skel = next(v for v in vars(mod).values() if isinstance(v, type)
                and issubclass(v, _skel.Skeleton) and v is not _skel.Skeleton)
    return dict(skel._types_)


def btf_id(spec: Any, key: str) -> int:
    kind, name = key.split(" ", 1)
    ids = spec.find_by_name(name, bt.Kind.UNION if kind == "union" else bt.Kind.STRUCT)
    assert ids, key
    return int(ids[0])


def all_classes(mod: ModuleType) -> list[Any]:
    return [v for v in vars(mod).values() if isinstance(v, type)
            and issubclass(v, _skel.Struct | _skel.Union)
            and not issubclass(v, _skel.DataSection) and v.__module__ == mod.__name__]


@pytest.mark.parametrize("obj", OBJECTS)
def test_classes_match_btf(tmp_path: Path, obj: str) -> None:
    _, mod = generate_module(tmp_path, obj)
    spec = ObjectSpec.load(PROGS / f"{obj}.bpf.o").btf
    assert spec is not None
    named = type_classes(mod)
    for key, cls in named.items():
        tid = btf_id(spec, key)
        t = spec.type(tid)
        assert isinstance(t, bt.Struct | bt.Union)
        assert ctypes.sizeof(cls) == t.size, key
        assert codec.layout_matches(spec, tid, cls), key
    # anonymous ones are members of named ones: their sizes add up there, and each
    # generated class is a module attribute of its own
    for cls in all_classes(mod):
        assert ctypes.sizeof(cls) > 0 or not cls._fields_


@pytest.fixture(scope="module")
def skel_types(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    _, mod = generate_module(tmp_path_factory.mktemp("gen"), "skel_types",
                             extra_types=["struct asked"])
    return mod


def _codec(name: str) -> codec.Codec:
    spec = ObjectSpec.load(PROGS / "skel_types.bpf.o").btf
    assert spec is not None
    return codec.codec(spec, btf_id(spec, name))


BITFIELD_VALUES: dict[str, list[int]] = {
    "a": [0, 1, 37, 63], "b": [0, 5, 63], "c": [-8, -3, 0, 7], "d": [0, 0xABCDE, 0xFFFFF],
    "e": [0, 0x2345678, (1 << 30) - 1], "f": [-(1 << 32), -5, 0, (1 << 32) - 1], "g": [0, 1],
}


def test_bitfields_round_trip_with_codec(skel_types: ModuleType) -> None:
    c = _codec("struct flags")
    for field, values in BITFIELD_VALUES.items():
        for v in values:
            fl = skel_types.Flags()
            fl.a = 21  # a neighbour that must survive
            setattr(fl, field, v)
            decoded = c.decode(bytes(fl))
            assert decoded[field] == v, (field, v)
            if field != "a":
                assert decoded["a"] == 21
            # and the other way: the codec's bytes read by the class
            want = {k: 0 for k in BITFIELD_VALUES} | {field: v}
            assert getattr(skel_types.Flags.from_buffer_copy(c.encode(want)), field) == v
    with pytest.raises(_skel.ValueCheckError, match="c"):
        skel_types.Flags().c = 8
    with pytest.raises(_skel.ValueCheckError):
        skel_types.Flags().e = 1 << 30


def test_packed_bitfields(skel_types: ModuleType) -> None:
    c = _codec("struct pbits")
    pb = skel_types.Pbits(x=0xAB, y=0xFED, z=-(1 << 19))
    assert ctypes.sizeof(pb) == 5
    assert c.decode(bytes(pb)) == {"x": 0xAB, "y": 0xFED, "z": -(1 << 19)}
    back = skel_types.Pbits.from_buffer_copy(c.encode({"x": 1, "y": 4095, "z": 524287}))
    assert (back.x, back.y, back.z) == (1, 4095, 524287)


def test_unions_and_anonymous_members(skel_types: ModuleType) -> None:
    s = skel_types.Sample(id=7, as_u32=0x04030201, major=2, minor=3)
    s.val.i = -1
    s.inner.tag = "abc"
    d = _codec("struct sample").decode(bytes(s))
    assert d["as_bytes"] == bytes([1, 2, 3, 4]) if sys.byteorder == "little" else True
    assert (d["id"], d["as_u32"], d["major"], d["minor"]) == (7, 0x04030201, 2, 3)
    assert d["val"] == {"i": -1, "u": (1 << 64) - 1}
    assert s.val.u == (1 << 64) - 1  # union members share their bytes
    assert issubclass(type(s.val), _skel.Union) and issubclass(skel_types.Value, ctypes.Union)
    assert d["inner"]["tag"].rstrip(b"\0") == b"abc"
    assert s.to_dict()["inner"] == {"when": 0, "tag": "abc"}


def test_multidim_and_char_arrays(skel_types: ModuleType) -> None:
    ev = skel_types.Event()
    assert len(ev.m) == 2 and len(ev.m[0]) == 3
    ev.m[1][2] = 12
    ev.m[0][1] = -1
    ev.comm = "ls"
    assert isinstance(ev.comm, str) and ev.comm == "ls"
    d = _codec("struct event").decode(bytes(ev))
    assert d["m"] == [[0, -1, 0], [0, 0, 12]]
    assert d["comm"].rstrip(b"\0") == b"ls"
    with pytest.raises(_skel.ValueCheckError, match=r"comm.*char\[16\]"):
        ev.comm = "x" * 16
    ev.comm = "y" * 15
    assert ev.comm == "y" * 15


def test_enums_are_intenums(skel_types: ModuleType) -> None:
    assert issubclass(skel_types.Level, enum.IntEnum)
    assert {m.name: m.value for m in skel_types.Level} == \
        {"LVL_LOW": -2, "LVL_MID": 0, "LVL_HIGH": 7}
    assert skel_types.BigFlags.FLAG_TOP == 1 << 63
    assert skel_types.BigFlags.FLAG_LOW == 1
    assert skel_types.Wide.WIDE_NEG == -0x100000000
    assert skel_types.Wide.WIDE_POS == 0x200000000


def test_asked_type_is_generated(skel_types: ModuleType) -> None:
    cls = type_classes(skel_types)["struct asked"]
    assert ctypes.sizeof(cls) == 8
    assert cls(host="abcd").host == "abcd"


def test_unknown_asked_type(tmp_path: Path) -> None:
    with pytest.raises(GenerateError, match="nosuch"):
        generate({"bpfel": str(PROGS / "skel_types.bpf.o")}, extra_types=["struct nosuch"])


def test_type_only_behind_a_cast_is_generated(skel_types: ModuleType) -> None:
    assert "struct cast_only" in type_classes(skel_types)


@pytest.mark.parametrize("obj", ["skel_types", "execsnoop"])
def test_kernel_types_are_not_generated(tmp_path: Path, obj: str) -> None:
    _, mod = generate_module(tmp_path, obj)
    names = {getattr(c, "_c_name_", None) for c in all_classes(mod)}
    assert not names & {"task_struct", "trace_event_raw_sys_enter"}
    assert "struct event" in type_classes(mod)


def test_variants_pick_this_machine(tmp_path: Path) -> None:
    _, mod = generate_module(tmp_path, {"bpfel": str(PROGS / "skel_types.bpf.o"),
                                        "bpfeb": str(PROGS / "skel_types.bpfeb.o")},
                             name="skel_types")
    skel = mod.SkelTypes()
    want = "bpfel" if sys.byteorder == "little" else "bpfeb"
    assert skel.obj.source.endswith(f".{want}.o")
    skel.close()


def test_generate_from_foreign_endian_object(tmp_path: Path) -> None:
    other = "bpfeb" if sys.byteorder == "little" else "bpf"
    _, mod = generate_module(tmp_path, {"x": str(PROGS / f"skel_types.{other}.o")},
                             name="skel_types")
    spec = ObjectSpec.load(PROGS / f"skel_types.{other}.o").btf
    assert spec is not None
    cls = type_classes(mod)["struct event"]
    assert codec.layout_matches(spec, btf_id(spec, "struct event"), cls)


def test_referenced_objects(tmp_path: Path) -> None:
    obj = tmp_path / "skel_types.bpf.o"
    obj.write_bytes((PROGS / "skel_types.bpf.o").read_bytes())
    path, mod = generate_module(tmp_path, {"bpfel": str(obj)}, embed=False)
    assert "skel_types.bpf.o" in path.read_text() and len(path.read_text()) < 30000
    skel = mod.SkelTypes()
    assert len(skel.progs) == 3
    skel.close()


# -- the module against the project's checkers ------------------------------------------


def _ruff(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "ruff"), "check", "--no-cache", *args, str(path)],
                          capture_output=True, text=True)


def test_ruff_default_rules(tmp_path: Path) -> None:
    path, _ = generate_module(tmp_path, "skel_types")
    p = _ruff(path, "--isolated")
    assert p.returncode == 0, p.stdout


def test_ruff_project_rules(tmp_path: Path) -> None:
    path, _ = generate_module(tmp_path, "skel_types")
    p = _ruff(path, "--config", str(ROOT / "pyproject.toml"))
    assert p.returncode == 0, p.stdout


def test_ruff_project_rules_field_names(tmp_path: Path) -> None:
    path, _ = generate_module(tmp_path, "btf_shapes")
    p = _ruff(path, "--config", str(ROOT / "pyproject.toml"))
    assert p.returncode == 0, p.stdout


USER_SCRIPT = '''\
"""A user of a generated skeleton, for mypy --strict."""

from __future__ import annotations

import ctypes

from skel_types_skel import Event, Key, Level, Sample, SkelTypes


def main() -> None:
    with SkelTypes() as skel:
        skel.rodata.target_pid = 1
        skel.rodata.prefix = "ab"
        skel.rodata.verbose = True
        skel.maps.counts.max_entries = 64
        skel.progs.on_getpid.autoload = False
        skel.load()
        skel.attach()
        for ev in skel.maps.events.read(timeout=0.0):
            pid: int = ev.pid
            comm: str = ev.comm
            row: ctypes.Array[ctypes.c_int32] = ev.m[1]
            print(pid, comm, row[2], Level(ev.lvl).name, ev.fl.f)
        for k, n in skel.maps.counts.items():
            key: Key = k
            count: int = n
            print(key.comm, count)
        hits: int = skel.bss.hits
        s = Sample(id=1)
        e: Event = skel.maps.perf_events.decode(bytes(112))
        print(hits, s.major, s.inner.tag, skel.data_cfg.label, e.seq, skel.data.bump)


if __name__ == "__main__":
    main()
'''


def test_mypy_strict(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    path, _ = generate_module(tmp_path, "skel_types")
    (tmp_path / "user.py").write_text(USER_SCRIPT)
    cache = request.config.cache.mkdir("mypy-skeleton") if request.config.cache else tmp_path
    env = dict(os.environ, MYPYPATH=str(ROOT))
    p = subprocess.run([str(BIN / "mypy"), "--strict", "--no-error-summary",
                        "--cache-dir", str(cache), path.name, "user.py"],
                       capture_output=True, text=True, cwd=tmp_path, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    p = _ruff(tmp_path / "user.py", "--config", str(ROOT / "pyproject.toml"))
    assert p.returncode == 0, p.stdout
