"""corebpf.btf.merge: several BTF in one (libbpf's btf__add_btf), optional dedup of
identical types, and libbpf 1.1 itself relocating against what it writes
(btf_custom_path)."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
from corebpf.btf.merge import merge, remap_ids
from corebpf.btf.writer import Builder
from corebpf.cli import main
from corebpf.core import RelocationReport, relocate
from corebpf.errors import BTFError
from corebpf.obj import ObjectSpec
from tests.btf.test_fuzz import mutate, mutation, seeds
from tests.conftest import KERNEL_BTF
from tests.user_btf import APP_V1, APP_V2, OBJ, app_btf, expected, results

HERE = Path(__file__).resolve().parent


def _spec(*types: btf.Type, source: str = "<test>") -> btf.Spec:
    b = Builder()
    for t in types:
        b.add(t)
    return btf.from_bytes(b.encode(), source=source)


def _types(spec: btf.Spec) -> list[btf.Type]:
    return [spec.type(i) for i in spec.ids()]


INT = btf.Int("int", 4, btf.IntEncoding.SIGNED, 0, 32)


def test_ids_shift_and_strings_are_stored_once() -> None:
    a = _spec(INT, btf.Pointer(1), btf.Struct("node", 8, [btf.Member("next", 2, 0)]))
    b = _spec(btf.Int("long", 8, 1, 0, 64), INT, btf.Struct("node", 4, [btf.Member("v", 2, 0)]))
    out = btf.from_bytes(merge([a, b]))
    assert _types(out) == [*_types(a), b.type(1), b.type(2),
                           btf.Struct("node", 4, [btf.Member("v", 5, 0)])]
    assert out.raw.count(b"node\0") == 1 and out.raw.count(b"int\0") == 1
    # both same-named structs stay: a libbpf CO-RE search finds two candidates
    assert out.find_by_name("node") == [3, 6]


def test_dedup_drops_identical_types_only() -> None:
    a = _spec(INT, btf.Pointer(3), btf.Struct("node", 8, [btf.Member("next", 2, 0)]))
    # the same self-referencing node (a cycle, at other ids), a different one, a Fwd
    b = _spec(btf.Struct("node", 8, [btf.Member("next", 2, 0)]), btf.Pointer(1), INT,
              btf.Struct("node", 8, [btf.Member("nxt", 2, 0)]), btf.Fwd("node"),
              btf.Pointer(5), btf.Typedef("node_t", 1))
    out = btf.from_bytes(merge([a, b], dedup=True))
    assert _types(out) == [*_types(a), btf.Struct("node", 8, [btf.Member("nxt", 2, 0)]),
                           btf.Fwd("node"), btf.Pointer(5), btf.Typedef("node_t", 3)]


def test_dedup_keeps_the_first_specs_own_duplicates() -> None:
    a = _spec(INT, INT, btf.Pointer(2))
    assert _types(btf.from_bytes(merge([a, a], dedup=True))) == _types(a)


def test_split_input_is_merged_whole() -> None:
    base = _spec(INT)
    b = Builder(base)
    b.add(btf.Pointer(1))
    split = btf.Spec(b.encode(), base=base)
    out = btf.from_bytes(merge([_spec(btf.Float("double", 8)), split]))
    assert _types(out) == [btf.Float("double", 8), INT, btf.Pointer(2)]


def test_split_on_an_earlier_input_adds_its_own_types() -> None:
    """from-dwarf --base's output on the kernel's BTF: its references to the base stay,
    its own types follow whatever came before it."""
    base = _spec(INT, btf.Pointer(1))
    b = Builder(base)
    b.add(btf.Struct("data", 8, [btf.Member("p", 2, 0), btf.Member("q", 4, 0)]))
    b.add(btf.Pointer(3))
    split = btf.Spec(b.encode(), base=base)
    other = _spec(btf.Float("double", 8))
    out = btf.from_bytes(merge([base, other, split]))
    assert _types(out) == [INT, btf.Pointer(1), btf.Float("double", 8),
                           btf.Struct("data", 8, [btf.Member("p", 2, 0),
                                                  btf.Member("q", 5, 0)]), btf.Pointer(4)]


def test_errors_name_the_input() -> None:
    bad = _spec(INT, btf.Pointer(7), source="bad.btf")
    with pytest.raises(BTFError, match=r"bad.btf.*\[2\] PTR.*\[7\]"):
        merge([_spec(INT), bad])
    with pytest.raises(BTFError, match="no BTF"):
        merge([])


# -- property: merging random specs gives each input's types at shifted ids ------------------

names = st.sampled_from(["", "a", "b", "node", "int"])


@st.composite
def specs(draw: st.DrawFn) -> btf.Spec:
    n = draw(st.integers(1, 8))
    ref = st.integers(0, n)
    one = st.one_of(
        st.builds(btf.Int, names, st.sampled_from([1, 4, 8]), st.sampled_from([0, 1]),
                  st.just(0), st.sampled_from([8, 32])),
        st.builds(btf.Pointer, ref), st.builds(btf.Const, ref),
        st.builds(btf.Typedef, names, ref),
        st.builds(btf.Array, ref, ref, st.integers(0, 4)),
        st.builds(btf.Struct, names, st.integers(0, 16),
                  st.lists(st.builds(btf.Member, names, ref, st.integers(0, 64)), max_size=3)),
        st.builds(btf.Enum, names, st.just(4),
                  st.lists(st.builds(btf.EnumValue, names, st.integers(0, 3)), max_size=2)),
        st.builds(btf.FuncProto, ref, st.lists(st.builds(btf.Param, names, ref), max_size=2)),
        st.builds(btf.Fwd, names, st.booleans()),
    )
    return _spec(*draw(st.lists(one, min_size=n, max_size=n)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(specs(), min_size=1, max_size=4))
def test_merge_keeps_every_input_at_shifted_ids(inputs: list[btf.Spec]) -> None:
    out = btf.from_bytes(merge(inputs))
    shift = 0
    for spec in inputs:
        for tid in spec.ids():
            want = remap_ids(spec.type(tid), lambda r, s=shift: r + s if r else 0)
            assert out.type(tid + shift) == want
        shift += spec.type_count - 1
    assert out.type_count - 1 == shift


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(specs(), st.integers(1, 3))
def test_dedup_of_copies_gives_the_first_back(spec: btf.Spec, copies: int) -> None:
    out = btf.from_bytes(merge([spec] * (copies + 1), dedup=True))
    assert _types(out) == _types(spec)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(specs(), min_size=2, max_size=3))
def test_dedup_maps_every_type_to_an_identical_one(inputs: list[btf.Spec]) -> None:
    """Each input type, followed through its references, reads the same in the deduped
    output as in the plain merge: its image there has the same shape all the way down."""
    plain = btf.from_bytes(merge(inputs))
    dedup = btf.from_bytes(merge(inputs, dedup=True))
    assert dedup.type_count <= plain.type_count
    assert _types(dedup)[:inputs[0].type_count - 1] == _types(inputs[0])

    def walk(spec: btf.Spec, tid: int, depth: int) -> object:
        t = spec.type(tid)
        if depth == 0:
            return repr(remap_ids(t, lambda r: 0))
        return (repr(remap_ids(t, lambda r: 0)),
                [walk(spec, r, depth - 1) for r in btf.types.referenced_ids(t)])

    # every plain type has some dedup type reading the same three levels down
    images = {repr(walk(dedup, tid, 3)) for tid in dedup.ids()}
    for tid in plain.ids():
        assert repr(walk(plain, tid, 3)) in images


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 1), st.lists(mutation, min_size=1, max_size=6), st.booleans())
def test_mutated_btf_merges_or_raises_btf_error(seed: int, muts: list[tuple[str, int, int]],
                                                dedup: bool) -> None:
    try:
        spec = btf.from_bytes(mutate(seeds()[seed], muts), source="fuzz.btf")
    except BTFError:
        return
    for order in ([spec, app_btf(APP_V1)], [app_btf(APP_V1), spec]):
        try:
            raw = merge(order, dedup=dedup)
        except BTFError as e:
            assert "fuzz.btf" in str(e) or "encode" in str(e) or "fit" in str(e), e
            continue
        btf.from_bytes(raw)


# -- the CLI -------------------------------------------------------------------------------


def test_cli_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v1, v2 = tmp_path / "v1.btf", tmp_path / "v2.btf"
    v1.write_bytes(app_btf(APP_V1).raw)
    v2.write_bytes(app_btf(APP_V2).raw)
    out = tmp_path / "out.btf"
    assert main(["btf", "merge", str(v1), str(v2), str(v1), "-o", str(out)]) == 0
    assert out.read_bytes() == merge([app_btf(APP_V1), app_btf(APP_V2), app_btf(APP_V1)])
    assert main(["btf", "merge", str(v1), str(v2), str(v1), "-o", str(out), "--dedup"]) == 0
    merged = btf.load(out)
    assert len(merged.find_by_name("data")) == 2 and len(merged.find_by_name("int")) == 1
    # an EXTRA that is split BTF on BASE adds its own types only
    b = Builder(app_btf(APP_V1))
    b.add(btf.Pointer(5))
    split = tmp_path / "split.btf"
    split.write_bytes(b.encode())
    assert main(["btf", "merge", str(v1), str(split), "-o", str(out)]) == 0
    assert _types(btf.load(out)) == [*_types(app_btf(APP_V1)), btf.Pointer(5)]
    assert main(["btf", "merge", str(v1), str(tmp_path / "nope"), "-o", str(out)]) == 1
    assert main(["btf", "merge", str(v1), str(v2), "-o", str(tmp_path / "no" / "x")]) == 1
    err = capsys.readouterr().err
    assert "nope" in err and "no/x: cannot write" in err and "Traceback" not in err


# -- libbpf 1.1 relocating against merged BTF ----------------------------------------------


@functools.cache
def _loader() -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None or not Path("/usr/include/bpf/libbpf.h").exists():
        pytest.skip("needs gcc and libbpf-dev")
    out = Path(tempfile.mkdtemp(prefix="corebpf-btf-custom-")) / "loader"
    subprocess.run([cc, "-O2", str(HERE / "btf_custom_loader.c"), "-lbpf", "-o", str(out)],
                   check=True, capture_output=True)
    return out


def _libbpf_load(obj: Path, custom: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(_loader()), str(obj), str(custom)], capture_output=True,
                          text=True, timeout=60)


def _values(reports: list[RelocationReport]) -> dict[str, int]:
    """corebpf's relocation decisions, by the .bss field the program stores each in."""
    field = {"byte_off struct data.b": "b_off", "byte_off struct data.c": "c_off",
             "byte_sz struct data.c": "c_size", "type_size struct data": "data_size",
             "field_exists struct data.x": "x_exists",
             "byte_off struct pt_regs.ip": "regs_ip_off"}
    out = {}
    for r in reports:
        assert r.error is None and not r.poisoned, r
        key = f"{r.kind.libbpf_name} {r.local_spec.split('] ', 1)[1].split(' (')[0]}"
        if key in field:
            out[field[key]] = r.target
    return out


needs_bpf = pytest.mark.skipif(not KERNEL_BTF.exists(), reason="no kernel BTF")


@pytest.fixture(scope="module")
def kernel() -> btf.Spec:
    if not KERNEL_BTF.exists():
        pytest.skip("no kernel BTF")
    return btf.kernel()


@needs_bpf
@pytest.mark.parametrize("dedup", [False, True], ids=["plain", "dedup"])
def test_libbpf_relocates_against_the_merged_file(tmp_path: Path, kernel: btf.Spec,
                                                  dedup: bool) -> None:
    """libbpf (btf_custom_path = kernel + the application's BTF, merged) loads the object
    and computes what corebpf decides for the same merged file, and for the two BTF as
    ordered targets: struct data from the application, task_struct/pt_regs from the
    kernel (the pid read is checked against the current task in every event)."""
    merged = tmp_path / "merged.btf"
    merged.write_bytes(merge([kernel, app_btf(APP_V1)], dedup=dedup))
    r = _libbpf_load(OBJ, merged)
    assert r.returncode == 0, r.stderr
    got = results(bytes.fromhex(r.stdout.strip()))
    assert got["pid_ok"] > 0 and got["pid_bad"] == 0
    obj = ObjectSpec.load(OBJ)
    want = _values(relocate(obj, btf.load(merged))[0])
    assert want == _values(relocate(obj, [app_btf(APP_V1), kernel])[0])
    assert {k: got[k] for k in want} == want
    assert {k: got[k] for k in expected(APP_V1)} == expected(APP_V1)


@needs_bpf
def test_same_named_layouts_are_ambiguous_when_merged(tmp_path: Path,
                                                      kernel: btf.Spec) -> None:
    """Two versions of struct data in one file: libbpf refuses the load (field offset
    ambiguity), and so does corebpf against that file; as ordered targets the first
    version decides and nothing is ambiguous."""
    merged = tmp_path / "merged.btf"
    merged.write_bytes(merge([kernel, app_btf(APP_V1), app_btf(APP_V2)], dedup=True))
    r = _libbpf_load(OBJ, merged)
    assert r.returncode == 1 and "ambiguity" in r.stderr, r.stderr
    obj = ObjectSpec.load(OBJ)
    errors = [rep.error for rep in relocate(obj, btf.load(merged))[0] if rep.error]
    assert errors and "field offset ambiguity" in errors[0]
    ordered = _values(relocate(obj, [app_btf(APP_V1), app_btf(APP_V2), kernel])[0])
    assert {k: ordered[k] for k in expected(APP_V1)} == expected(APP_V1)


APP_C = r"""
#include <stddef.h>
#include <stdio.h>
struct data { long id; int b; int a; char name[8]; long c; };
struct data global_data;
int main(void)
{
    printf("%zu %zu %zu\n", offsetof(struct data, b), offsetof(struct data, c),
           sizeof(struct data));
    return global_data.a;
}
"""


@needs_bpf
@pytest.mark.parametrize("split", [False, True], ids=["standalone", "split"])
def test_libbpf_with_an_applications_btf_from_dwarf(tmp_path: Path, kernel: btf.Spec,
                                                    split: bool) -> None:
    """A gcc-built program's BTF (from-dwarf, standalone or split on the kernel's),
    merged after the kernel's: libbpf relocates struct data to gcc's own layout, and
    corebpf with the two as ordered targets decides the same."""
    pytest.importorskip("elftools")
    from corebpf.dwarf import btf_from_dwarf

    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("needs gcc")
    (tmp_path / "app.c").write_text(APP_C)
    subprocess.run([cc, "-g", "-O0", str(tmp_path / "app.c"), "-o", str(tmp_path / "app")],
                   check=True, capture_output=True)
    out = subprocess.run([str(tmp_path / "app")], capture_output=True, text=True).stdout
    b_off, c_off, size = map(int, out.split())
    raw = btf_from_dwarf(tmp_path / "app", base=kernel if split else None)
    app = btf.Spec(raw, base=kernel) if split else btf.from_bytes(raw)
    merged = tmp_path / "merged.btf"
    merged.write_bytes(merge([kernel, app], dedup=True))
    r = _libbpf_load(OBJ, merged)
    assert r.returncode == 0, r.stderr
    got = results(bytes.fromhex(r.stdout.strip()))
    assert (got["b_off"], got["c_off"], got["data_size"], got["x_exists"]) == (
        b_off, c_off, size, 0)
    assert got["pid_ok"] > 0 and got["pid_bad"] == 0
    want = _values(relocate(ObjectSpec.load(OBJ), [app, kernel])[0])
    assert {k: got[k] for k in want} == want
