"""Where minimized BTF must hold more than ``bpftool gen min_core_btf`` keeps, on a
hand-built target with the shapes tests/progs/btfgen_cases.bpf.c was written for:

- two candidates foo/foo___v2 (x in both, y only in foo___v2) and a repeat foo___dup:
  libbpf compacts its candidate list to those that matched x, so foo___v2 must keep x too;
- bar/bar___2 with ``a`` at different offsets: the ambiguity error must stay an error;
- ``hnd`` (a ``struct xyz *``) kept by a field relocation: with the pointee dropped it
  reads ``void *``, which the local ``void *`` type_exists/type_matches would match;
- ``__rcu``/``__user`` TYPE_TAGs on task_struct's pointers that type_matches walks, a FWD
  behind ``op``/``opaque_ptr`` and DECL_TAGs on kept and dropped members.

Each variant's minimized BTF decides as the full BTF (our engine, libbpf 1.1, the
kernel loads it); bpftool fails on it or decides differently. Then split module BTF
inputs, and the command line with a corrupt input among good ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.btf.writer import Builder
from corebpf.btfgen import load_object, minimize, minimize_file
from corebpf.core import Target, relocate
from corebpf.obj import ObjectSpec
from tests.btfgen.test_minimize import Decision, decided
from tests.conftest import PROGS, ROOT, bpftool, module_files
from tests.core.libbpf_oracle import OracleUnavailable, decisions, harness

CASES = PROGS / "btfgen_cases.bpf.o"
#: variant -> (type tags and a FWD on the paths, bar/bar___2 ambiguous)
VARIANTS = {"plain": (False, False), "ambiguous": (False, True), "tagged": (True, False),
            "tagged_ambiguous": (True, True)}
#: btfgen_cases relocations (program "cases") bpftool's output decides differently on
#: the plain variant: foo.y (foo___v2 lost x), holder___m and hnd (pointee read as void)
BPFTOOL_WRONG = {1, 3, 4, 5}


def target_btf(tags: bool, ambiguous: bool) -> bytes:
    """The kernel btfgen_cases.bpf.c is relocated against."""
    b = Builder()
    m = btf.Member
    i32 = b.add(btf.Int("int", 4, btf.IntEncoding.SIGNED, 0, 32))
    char = b.add(btf.Int("char", 1, btf.IntEncoding.SIGNED, 0, 8))
    i64 = b.add(btf.Int("long", 8, btf.IntEncoding.SIGNED, 0, 64))
    foo = b.add(btf.Struct("foo", 8, [m("x", i32, 0), m("z", i32, 32)]))
    v2 = b.add(btf.Struct("foo___v2", 12, [m("x", i32, 0), m("w", i32, 32), m("y", i32, 64)]))
    b.add(btf.Struct("foo___dup", 8, [m("x", i32, 0), m("z", i32, 32)]))
    b.add(btf.DeclTag("y_tag", v2, 2))
    b.add(btf.DeclTag("w_tag", v2, 1))
    b.add(btf.DeclTag("foo_tag", foo, -1))
    b.add(btf.Struct("bar", 4, [m("a", i32, 0)]))
    if ambiguous:
        b.add(btf.Struct("bar___2", 8, [m("pad", i32, 0), m("a", i32, 32)]))
    xyz = b.add(btf.Struct("xyz", 8, [m("q", i64, 0)]))
    hnd = b.add(btf.Typedef("hnd", b.add(btf.Pointer(xyz))))
    b.add(btf.Struct("holder", 16, [m("h", hnd, 0), m("n", i32, 64)]))
    opaque = b.add(btf.Fwd("opaque") if tags else btf.Struct("opaque", 4, [m("o", i32, 0)]))
    task = b.next_id + (6 if tags else 4)  # after the pointers task_struct's members use
    parent = b.add(btf.Pointer(b.add(btf.TypeTag("rcu", task)) if tags else task))
    const_char = b.add(btf.Const(char))
    name = b.add(btf.Pointer(b.add(btf.TypeTag("user", const_char)) if tags else const_char))
    op = b.add(btf.Pointer(opaque))
    assert b.next_id == task
    b.add(btf.Struct("task_struct", 40, [
        m("unused", i64, 0), m("pid", i32, 64), m("real_parent", parent, 128),
        m("name", name, 192), m("op", op, 256)]))
    b.add(btf.DeclTag("name_tag", task, 3))
    b.add(btf.Typedef("task_ptr", b.add(btf.Pointer(task))))
    b.add(btf.Typedef("opaque_ptr", b.add(btf.Pointer(opaque))))
    return b.encode()


class Case:
    """One variant: full target, our minimized BTF (with and without DECL_TAGs), files."""

    def __init__(self, name: str, tmp: Path):
        self.name = name
        self.tags, self.ambiguous = VARIANTS[name]
        self.obj = load_object(CASES)
        self.raw = tmp / f"{name}.btf"
        self.raw.write_bytes(target_btf(self.tags, self.ambiguous))
        self.full = btf.load(self.raw)
        self.minimized = minimize([self.obj], self.full)
        self.with_tags = minimize([self.obj], self.full, keep_decl_tags=True)
        self.out = tmp / f"{name}.min.btf"
        self.out.write_bytes(self.minimized)
        self.out_tags = tmp / f"{name}.tags.min.btf"
        self.out_tags.write_bytes(self.with_tags)

    def decided(self, spec: btf.Spec) -> dict[tuple[str, str, int], Decision]:
        return decided(relocate(self.obj, spec)[0])


@pytest.fixture(scope="module", params=list(VARIANTS))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    return Case(request.param, tmp_path_factory.mktemp("beyond"))


def _cases(d: dict[tuple[str, str, int], Decision]) -> dict[int | str, Decision]:
    return {(i if p == "cases" else p): v for (p, _, i), v in d.items()}


def test_full_btf_decides_what_the_cases_are_about(case: Case) -> None:
    """The target really has each shape (else the comparisons below prove nothing)."""
    full = _cases(case.decided(case.full))
    assert full[0][2] == 0 and full[1][2] == 8  # x in foo and foo___v2, y in foo___v2 only
    assert full[3][2] == full[4][2] == full[5][2] == 0  # struct xyz * is no void *
    assert full[10][2] == 1  # type_matches through the __rcu/__user pointers
    assert full[11][2] == 1 and full[13][2] == 8
    assert full[12][2] == (1 if case.tags else 0)  # FWD opaque matches the local FWD
    assert full["ambiguous"][4] is case.ambiguous  # offset ambiguity: an error


def test_minimized_decides_as_full(case: Case) -> None:
    full = case.decided(case.full)
    for data in (case.minimized, case.with_tags):
        small = btf.from_bytes(data)
        assert small.type_count < case.full.type_count
        assert case.decided(small) == full


def test_what_is_kept(case: Case) -> None:
    small = btf.from_bytes(case.with_tags)
    types = {(t.kind, t.name): t for t in map(small.type, range(1, small.type_count))
             if t.name}

    def members(name: str) -> list[str]:
        t = types[btf.Kind.STRUCT, name]
        assert isinstance(t, btf.Struct)
        return [mem.name for mem in t.members]

    assert members("foo") == ["x"]
    assert members("foo___v2") == ["x", "y"]  # x: libbpf compacts to foo, foo___v2 on x
    assert (btf.Kind.STRUCT, "foo___dup") not in types  # decides as foo everywhere
    assert members("bar___2" if case.ambiguous else "bar") == ["a"]
    assert members("xyz") == []  # hnd's pointee: not void
    assert members("task_struct") == ["unused", "pid", "real_parent", "name", "op"]
    tags = {t.name: t for t in types.values() if isinstance(t, btf.DeclTag)}
    assert set(tags) == {"y_tag", "foo_tag", "name_tag"}  # w: member dropped
    assert tags["y_tag"].component_idx == 1  # renumbered: foo___v2 lost w
    assert tags["name_tag"].component_idx == 3
    kinds = {kind for kind, _ in types}
    assert (btf.Kind.TYPE_TAG in kinds) is case.tags
    assert ((btf.Kind.FWD, "opaque") in types) is case.tags
    plain = btf.from_bytes(case.minimized)  # DECL_TAGs only when asked for
    assert not any(isinstance(plain.type(i), btf.DeclTag) for i in range(1, plain.type_count))
    assert plain.type_count == small.type_count - 3


def test_libbpf_decides_the_same(case: Case, oracle: None) -> None:
    full = decisions(CASES, case.raw)
    assert len(full) == 15, full
    assert decisions(CASES, case.out) == full
    assert decisions(CASES, case.out_tags) == full


@pytest.mark.skipif(os.geteuid() != 0, reason="BPF_BTF_LOAD needs root")
def test_kernel_accepts_it(case: Case) -> None:
    from corebpf.sys import btf_load

    for data in (case.minimized, case.with_tags):
        with btf_load(data) as fd:
            assert fd.fd >= 0


def test_bpftool_fails_or_differs(case: Case, tmp_path: Path) -> None:
    out = tmp_path / "bpftool.btf"
    r = subprocess.run([bpftool(), "gen", "min_core_btf", str(case.raw), str(out), str(CASES)],
                       capture_output=True, text=True, check=False)
    if case.tags or case.ambiguous:  # type_tag/FWD "unsupported kind", or the ambiguity
        assert r.returncode != 0, "bpftool minimized what it refuses"
        assert ("unsupported kind" if case.tags else "ambiguity") in r.stderr
        return
    assert r.returncode == 0, r.stderr
    full = _cases(case.decided(case.full))
    theirs = _cases(case.decided(btf.load(out)))
    assert {k for k in full if theirs[k] != full[k]} == BPFTOOL_WRONG
    try:
        harness()
    except OracleUnavailable:
        return
    lib_full, lib_theirs = decisions(CASES, case.raw), decisions(CASES, out)
    assert {i for (p, i), v in lib_full.items()
            if p == "cases" and lib_theirs.get((p, i)) != v} == BPFTOOL_WRONG


# -- split (module) BTF ------------------------------------------------------------------

MODULES = module_files()
MODULE_OBJECTS = ["core_module", "execsnoop", "core_kinds"]


@pytest.mark.parametrize(("mod", "base"), MODULES, ids=[f"{b.name[:-7]}/{m.name}"
                                                       for m, b in MODULES])
def test_module_inputs_decide_the_same(mod: Path, base: Path, tmp_path: Path) -> None:
    vmlinux = btf.load(base)
    target = Target(vmlinux, [btf.load(mod, base=vmlinux)])
    objs = [load_object(PROGS / f"{n}.bpf.o") for n in MODULE_OBJECTS]
    data = minimize(objs, target)
    small = btf.from_bytes(data)  # one standalone BTF: libbpf's btf_custom_path takes one
    assert small.base is None
    for obj in objs:
        assert decided(relocate(obj, small)[0]) == decided(relocate(obj, target)[0]), \
            f"{obj.source} on {mod}"
    # the module's own type is there when the module has it
    assert bool(small.find_by_name("veth_priv")) is (mod.name.startswith("veth"))
    # a module as the input, on its vmlinux (--base): the same output
    res = minimize_file([PROGS / f"{n}.bpf.o" for n in MODULE_OBJECTS], mod,
                        tmp_path / "m.btf", base=base)
    assert (tmp_path / "m.btf").read_bytes() == data and res.size == len(data)
    if os.geteuid() == 0:
        from corebpf.sys import btf_load

        with btf_load(data) as fd:
            assert fd.fd >= 0


def test_bpftool_refuses_split_btf(tmp_path: Path) -> None:
    if not MODULES:
        pytest.skip("no module BTF in tests/data/btf/modules")
    mod, base = MODULES[0]
    vmlinux = btf.load(base)
    raw = tmp_path / "mod.btf"
    raw.write_bytes(btf.load(mod, base=vmlinux).raw)
    r = subprocess.run([bpftool(), "gen", "min_core_btf", str(raw), str(tmp_path / "o.btf"),
                        str(PROGS / "core_module.bpf.o")], capture_output=True, text=True,
                       check=False)
    assert r.returncode != 0


# -- command line ------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corebpf", "gen", "min-btf", *args],
                          capture_output=True, text=True, check=False, cwd=ROOT)


def test_cli_bad_input_reported_and_run_goes_on(tmp_path: Path) -> None:
    good1 = tmp_path / "tagged.btf"
    good1.write_bytes(target_btf(True, True))
    corrupt = tmp_path / "corrupt.btf"
    corrupt.write_bytes(target_btf(True, False)[:50])  # header names types it lacks
    good2 = tmp_path / "plain.btf.xz"
    import lzma

    good2.write_bytes(lzma.compress(target_btf(False, False)))
    out = tmp_path / "out"
    r = _cli("--object", str(CASES), "--object", str(PROGS / "execsnoop.bpf.o"),
             "--btf", str(good1), "--btf", str(corrupt), str(good2), "-o", str(out))
    assert r.returncode == 1, r.stderr
    assert str(corrupt) in r.stderr and str(good1) not in r.stderr, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["plain.btf", "tagged.btf"]
    objs = [ObjectSpec.load(CASES), ObjectSpec.load(PROGS / "execsnoop.bpf.o")]
    for path, name in ((good1, "tagged.btf"), (good2, "plain.btf")):
        full = btf.load(path)
        written = (out / name).read_bytes()
        assert written == minimize(objs, full)
        assert f"{out / name}: {len(written)} bytes" in r.stdout
        small = btf.from_bytes(written)
        for obj in objs:
            assert decided(relocate(obj, small)[0]) == decided(relocate(obj, full)[0])


def test_cli_split_input_with_base(tmp_path: Path) -> None:
    if not MODULES:
        pytest.skip("no module BTF in tests/data/btf/modules")
    mod, base = MODULES[-1]
    r = _cli("--object", str(PROGS / "core_module.bpf.o"), "--base", str(base), str(mod),
             "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    vmlinux = btf.load(base)
    target = Target(vmlinux, [btf.load(mod, base=vmlinux)])
    obj = ObjectSpec.load(PROGS / "core_module.bpf.o")
    small = btf.load(tmp_path / mod.name.replace(".btf.xz", ".btf"))
    assert decided(relocate(obj, small)[0]) == decided(relocate(obj, target)[0])


def test_cli_archive_directory_mirrors_its_layout(tmp_path: Path) -> None:
    """A directory input is an archive: each kernel's output lands at the same relative
    place under OUTDIR (btfgen.sh's custom archive), kernels run on a process pool, a
    corrupt one is reported while the others complete, other files are passed over."""
    import io
    import lzma
    import tarfile

    from corebpf.btfgen import minimize_files

    archive = tmp_path / "archive"
    tarred = archive / "distro" / "1" / "x86_64" / "5.0.0-1.btf.tar.xz"
    tarred.parent.mkdir(parents=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = target_btf(True, True)
        info = tarfile.TarInfo("5.0.0-1.btf")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    tarred.write_bytes(lzma.compress(buf.getvalue()))
    plain = archive / "other" / "2" / "arm64" / "5.0.0-2.btf"
    plain.parent.mkdir(parents=True)
    plain.write_bytes(target_btf(False, False))
    corrupt = archive / "bad" / "3" / "x86_64" / "5.0.0-3.btf.tar.xz"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(b"not xz at all")
    from tests.archive.test_sources import deb
    from tests.test_kernel_image import SHT_PROGBITS, make_elf

    pkg = archive / "pkgs" / "linux-image-5.0.0-4-amd64_5.0.0-4_amd64.deb"
    pkg.parent.mkdir(parents=True)
    pkg.write_bytes(deb("5.0.0-4-amd64", make_elf([(".BTF", SHT_PROGBITS,
                                                    target_btf(False, True))])))
    (archive / "README.md").write_text("an archive\n")
    out = tmp_path / "out"
    r = _cli("--object", str(CASES), "--object", str(PROGS / "execsnoop.bpf.o"),
             str(archive), "-o", str(out), "--jobs", "2", "--no-progress")
    assert r.returncode == 1, r.stderr
    assert str(corrupt) in r.stderr and r.stderr.count("skipped") == 1, r.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["distro/1/x86_64/5.0.0-1.btf", "other/2/arm64/5.0.0-2.btf",
                       "pkgs/linux-image-5.0.0-4-amd64_5.0.0-4_amd64.btf"]
    objs = [ObjectSpec.load(CASES), ObjectSpec.load(PROGS / "execsnoop.bpf.o")]
    assert (out / written[0]).read_bytes() == minimize(objs, btf.load(tarred))
    assert (out / written[1]).read_bytes() == minimize(objs, btf.load(plain))
    assert (out / written[2]).read_bytes() == minimize(
        objs, btf.from_bytes(target_btf(False, True)))
    # the library call, in this process, writes the same
    again = minimize_files([CASES, PROGS / "execsnoop.bpf.o"], [archive], tmp_path / "lib")
    assert [o.error is None for o in again] == [False, True, True, True]
    for name in written:
        assert (tmp_path / "lib" / name).read_bytes() == (out / name).read_bytes()
