"""The archive index and BTF bundles over real kernels: every kernel indexed with the right
sha256/size/type count; a bundle's BTF decides every relocation as the full BTF; identical
minimized BTF stored once; lookup by os-release/arch/release; the loader takes a bundle and
loads for real from it; hostile and corrupt bundles fail with ArchiveError only."""

from __future__ import annotations

import hashlib
import io
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
from corebpf.archive.bundle import (
    Bundle,
    BundledKernel,
    BundleReport,
    NoBTFError,
    build_bundle,
    core_btf_for,
    lookup_btf,
    minimize_entry,
    nearest_kernels,
    select_core_btf,
)
from corebpf.archive.index import ArchiveIndex, build_index
from corebpf.archive.sources import discover, running_kernel
from corebpf.btfgen import load_object
from corebpf.core import relocate
from corebpf.errors import ArchiveError, BTFError
from tests.archive.test_check import CORPUS_PICKS, new_archive
from tests.btfgen.test_minimize import decided
from tests.conftest import CORPUS, KERNEL_BTF, PROGS, debian_files

OBJECTS = [str(PROGS / f"{n}.bpf.o") for n in ("execsnoop", "tools_sized", "core_kinds")]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = new_archive(tmp_path_factory)
    for deb in debian_files()[2:]:  # all four Debian kernels
        dest = root / "debian" / "12" / "x86_64" / deb.name
        shutil.copyfile(deb, dest)
    # the same kernel build shipped by another distro version: stored once in a bundle
    again = root / "debian" / "13" / "x86_64" / debian_files()[0].name
    again.parent.mkdir(parents=True)
    shutil.copyfile(debian_files()[0], again)
    return root


@pytest.fixture(scope="module")
def bundle(archive: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[Path, BundleReport]:
    out = tmp_path_factory.mktemp("bundle") / "btf.tar.xz"
    return out, build_bundle(OBJECTS, archive, out, jobs=2, progress=False)


# -- index -------------------------------------------------------------------------------


def test_index_every_kernel(archive: Path, tmp_path: Path) -> None:
    index = build_index(archive, jobs=2, progress=False)
    entries = discover(archive)
    assert len(index.kernels) + len(index.errors) == len(entries)
    assert [p for p, _ in index.errors] == [str(archive / "broken/1/x86_64/5.0.0-broken"
                                                          ".btf.tar.xz")]
    for k in index.kernels:
        spec = btf.load(k.path, index_cache=False)
        assert k.types == spec.type_count - 1
        assert k.btf_size == len(spec.raw)
        assert k.btf_sha256 == hashlib.sha256(spec.raw).hexdigest()
        assert k.sha256 == hashlib.sha256(Path(k.path).read_bytes()).hexdigest()
        assert k.size == os.path.getsize(k.path)
        assert k.arch and k.release and k.distro and k.version
    index.write(tmp_path / "index.json")
    assert ArchiveIndex.read(tmp_path / "index.json") == index


@pytest.mark.parametrize("doc, message", [
    ([], "not a corebpf archive index"),
    ({"format": "corebpf-archive-index", "version": 9}, "version 9"),
    ({"format": "corebpf-archive-index", "version": 1, "kernels": [{"distro": 1}]},
     "kernel #0"),
    ({"format": "corebpf-archive-index", "version": 1, "kernels": [], "errors": [1]},
     "error #0"),
])
def test_index_from_bad_json(doc: object, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        ArchiveIndex.from_json(doc, "x.json")


# -- bundles -----------------------------------------------------------------------------


def test_bundle_report_and_dedup(bundle: tuple[Path, BundleReport], archive: Path) -> None:
    path, report = bundle
    entries = discover(archive)
    assert report.kernels == len(entries) - 1
    assert [p for p, _ in report.skipped] == [str(archive / "broken/1/x86_64/5.0.0-broken"
                                                            ".btf.tar.xz")]
    b = Bundle.open(path)
    assert len(b.kernels) == report.kernels and b.blob_count == report.blobs
    # the kernel found twice is stored once
    assert report.blobs == report.kernels - 1 and report.dedup_ratio > 1
    assert report.stored_bytes < report.raw_bytes
    assert report.file_size < report.stored_bytes
    assert b.index["objects"][0]["name"] == "execsnoop.bpf.o"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/btf-corpus is not present")
def test_corpus_bundle_dedups(tmp_path: Path) -> None:
    """Point releases of one kernel line rarely move what a tool reads."""
    report = build_bundle(OBJECTS[:1], CORPUS, tmp_path / "c.tar.xz", jobs=2,
                          progress=False)
    assert report.kernels == len(discover(CORPUS)) and not report.skipped
    assert report.dedup_ratio >= 1.5, report


def test_bundle_btf_decides_as_the_full_btf(bundle: tuple[Path, BundleReport],
                                            archive: Path) -> None:
    b = Bundle.open(bundle[0])
    objs = [load_object(p) for p in OBJECTS]
    for entry in discover(archive):
        if "broken" in entry.path:
            continue
        match = b.lookup(distro=entry.distro, version=entry.version, arch=entry.arch,
                         release=entry.release)
        assert match is not None and match.rule == "exact", entry.path
        assert match.btf == minimize_entry(entry, OBJECTS)[0]
        full = btf.load(entry.path, index_cache=False)
        small = btf.from_bytes(match.btf)
        for obj in objs:
            assert decided(relocate(obj, small)[0]) == decided(relocate(obj, full)[0]), (
                obj.source, entry.path)


def test_lookup_rules(bundle: tuple[Path, BundleReport]) -> None:
    b = Bundle.open(bundle[0])
    deb = debian_files()[0]
    release = deb.name.removesuffix(".btf.xz")
    exact = b.lookup(distro="debian", version="12", arch="amd64", release=release)
    assert exact is not None and exact.rule == "exact" and exact.kernel.arch == "x86_64"
    # another distro version of the very same kernel build: same blob, by release
    other = b.lookup(distro="ubuntu", version="24.04", arch="x86_64", release=release)
    assert other is not None and other.rule == "release" and other.btf == exact.btf
    assert b.lookup(distro="debian", version="12", arch="arm64", release=release) is None
    assert b.lookup(distro="debian", version="12", arch="x86_64", release="9.9.9") is None
    if CORPUS.is_dir():
        centos = b.lookup(distro="centos", version="8", arch="aarch64",
                          release="4.18.0-147.5.1.el8_1.aarch64")
        assert centos is not None and centos.kernel.arch == "arm64"
    assert lookup_btf(bundle[0], distro="debian", version="12", arch="x86_64",
                      release=release) == exact.btf


def test_loader_prefers_the_kernels_own_btf(bundle: tuple[Path, BundleReport],
                                           tmp_path: Path) -> None:
    if KERNEL_BTF.exists():
        assert core_btf_for(bundle[0]) is None
    with pytest.raises(ArchiveError, match=r"no BTF for debian/12/x86_64/9\.9\.9"):
        core_btf_for(bundle[0], kernel_btf=str(tmp_path / "none"), distro="debian",
                     version="12", arch="x86_64", release="9.9.9")


# -- choosing the CO-RE target -----------------------------------------------------------


@pytest.mark.skipif(not KERNEL_BTF.exists(), reason="this kernel has no /sys/kernel/btf/vmlinux")
def test_select_prefers_the_kernels_own_btf(bundle: tuple[Path, BundleReport]) -> None:
    """Even with a bundle at hand, and whatever the bundle holds for this machine."""
    for b in (None, bundle[0]):
        choice = select_core_btf(bundle=b)
        assert choice.kind == "kernel" and choice.source == str(KERNEL_BTF)
        assert choice.spec.raw == btf.load(KERNEL_BTF).raw and choice.match is None
    assert choice.key[3] == os.uname().release


def test_select_explicit_btf_first(tmp_path: Path) -> None:
    deb = debian_files()[0]
    choice = select_core_btf(deb)
    assert (choice.kind, choice.source) == ("explicit", str(deb))
    spec = choice.spec
    assert select_core_btf(spec).spec is spec
    with pytest.raises(BTFError, match="missing: cannot read"):
        select_core_btf(tmp_path / "missing")


def test_select_a_vmlinux_on_disk(tmp_path: Path) -> None:
    """libbpf's places, in order, with uname -r in them; one that holds no BTF is passed
    over (and named if nothing else fits)."""
    rel = "6.1.0-56-amd64"
    bad = tmp_path / f"vmlinux-{rel}.bad"
    bad.write_bytes(b"\x7fELF not really")
    good = tmp_path / rel / "vmlinux"
    good.parent.mkdir()
    good.write_bytes(btf.load(debian_files()[0]).raw)
    paths = [str(tmp_path / "none-{r}"), str(tmp_path / "vmlinux-{r}.bad"),
             str(tmp_path / "{r}" / "vmlinux")]
    choice = select_core_btf(kernel_btf=str(tmp_path / "no-sysfs"), vmlinux_paths=paths,
                             release=rel)
    assert (choice.kind, choice.source) == ("vmlinux", str(good))
    with pytest.raises(NoBTFError) as e:
        select_core_btf(kernel_btf=str(tmp_path / "no-sysfs"), vmlinux_paths=paths[:2],
                        distro="debian", version="12", arch="amd64", release=rel)
    msg = str(e.value)
    assert "distro=debian, version=12, arch=x86_64, release=6.1.0-56-amd64" in msg, msg
    assert f"no {tmp_path}/no-sysfs" in msg and f"no {tmp_path}/none-{rel}" in msg, msg
    assert f"{bad}: " in msg and "give a BTF bundle" in msg, msg
    assert e.value.key == ("debian", "12", "x86_64", rel) and not e.value.nearest


def test_select_from_a_bundle(bundle: tuple[Path, BundleReport], tmp_path: Path) -> None:
    deb = debian_files()[0].name.removesuffix(".btf.xz")
    b = Bundle.open(bundle[0])
    choice = select_core_btf(bundle=b, kernel_btf=str(tmp_path / "none"), vmlinux_paths=(),
                             distro="debian", version="12", arch="x86_64", release=deb)
    assert choice.kind == "bundle" and choice.match is not None
    assert choice.source == f"bundle {b.path} entry debian/12/x86_64/{deb} (exact match)"
    assert choice.spec.raw == choice.match.btf
    assert choice.key == ("debian", "12", "x86_64", deb)
    # the loader's entry point gives the same bytes
    assert core_btf_for(bundle[0], kernel_btf=str(tmp_path / "none"), distro="debian",
                        version="12", arch="x86_64", release=deb) == choice.match.btf


def test_no_entry_names_keys_and_nearest(bundle: tuple[Path, BundleReport],
                                         tmp_path: Path) -> None:
    with pytest.raises(NoBTFError) as e:
        select_core_btf(bundle=bundle[0], kernel_btf=str(tmp_path / "none"),
                        vmlinux_paths=("/nonexistent/vmlinux-{r}",), distro="debian",
                        version="12", arch="x86_64", release="6.12.200-amd64")
    msg = str(e.value)
    for part in ("distro=debian", "version=12", "arch=x86_64", "release=6.12.200-amd64",
                 "/nonexistent/vmlinux-6.12.200-amd64", "nearest entries: "
                 "debian/12/x86_64/6.12.117+deb12-amd64, debian/12/x86_64/6.1.0-56"):
        assert part in msg, (part, msg)
    assert isinstance(e.value, ArchiveError) and e.value.nearest
    assert all(k.arch == "x86_64" for k in e.value.nearest)
    with pytest.raises(NoBTFError, match="the bundle has no riscv64 kernels"):
        select_core_btf(bundle=bundle[0], kernel_btf=str(tmp_path / "none"),
                        vmlinux_paths=(), arch="riscv64")


def test_nearest_kernels_order() -> None:
    def k(distro: str, version: str, arch: str, release: str) -> BundledKernel:
        return BundledKernel(distro, version, arch, release, "0" * 64, 1, 1, 1)

    kernels = [k("ubuntu", "20.04", "x86_64", "5.4.0-42-generic"),
               k("ubuntu", "20.04", "x86_64", "5.4.0-100-generic"),
               k("ubuntu", "20.04", "x86_64", "5.8.0-63-generic"),
               k("ubuntu", "20.04", "arm64", "5.4.0-45-generic"),
               k("centos", "8", "x86_64", "5.4.0-45.el8"),
               k("ubuntu", "18.04", "x86_64", "5.4.0-45-generic")]
    got = nearest_kernels(kernels, ("ubuntu", "20.04", "x86_64", "5.4.0-45-generic"))
    assert [(x.version, x.release) for x in got] == [
        ("20.04", "5.4.0-42-generic"), ("20.04", "5.4.0-100-generic"),
        ("20.04", "5.8.0-63-generic"), ("18.04", "5.4.0-45-generic"),
        ("8", "5.4.0-45.el8")]


@pytest.fixture(scope="module")
def here_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle holding this machine's kernel, minimized for execsnoop."""
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel has no /sys/kernel/btf/vmlinux to bundle")
    out = tmp_path_factory.mktemp("here") / "here.tar.xz"
    report = build_bundle([OBJECTS[0]], [running_kernel()], out, jobs=1, progress=False)
    assert report.kernels == 1
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")
def test_execsnoop_runs_on_btf_from_a_bundle(here_bundle: Path, tmp_path: Path) -> None:
    """As on a kernel without BTF: CO-RE against this machine's entry of the bundle, then
    load, attach and read right values."""
    from corebpf.loader import load
    from tests.test_portability import exec_events

    found = core_btf_for(here_bundle, kernel_btf=str(tmp_path / "no-vmlinux"))
    assert found is not None and len(found) < 100_000
    small = btf.from_bytes(found)
    with load(PROGS / "execsnoop.bpf.o", btf=small, rodata={"target_uid": os.getuid()}
              ) as coll:
        full = decided(relocate(coll.obj, btf.load(KERNEL_BTF))[0])
        assert decided(coll.core_reports) == full
        _, mine = exec_events(coll, ["/bin/true", "bundle"])
    assert mine and mine[0][1] == os.getpid() and mine[0][5].rstrip(b"\0") == b"/bin/true"


@pytest.mark.skipif(os.geteuid() != 0 or not KERNEL_BTF.exists(),
                    reason="loading BPF programs needs root and a kernel with BTF")
def test_load_with_a_bundle_uses_the_kernels_btf(here_bundle: Path) -> None:
    from corebpf.loader import load

    with load(PROGS / "execsnoop.bpf.o", bundle=here_bundle) as coll:
        assert coll.programs and coll.core_reports


# -- hostile and corrupt bundles ---------------------------------------------------------


def _pack(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return lzma.compress(buf.getvalue())


def _member(name: str, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type = kind
    return m


INDEX = (b'{"format": "corebpf-btf-bundle", "version": 1, "kernels": [{"distro": "d", '
         b'"version": "1", "arch": "x86_64", "release": "r", "btf": "' + b"0" * 64
         + b'", "size": 1, "types": 1, "relocations": 1}]}')


@pytest.mark.parametrize("data, message", [
    (b"not xz", "not an xz-compressed bundle"),
    (lzma.compress(b"\0" * 1024), "no index.json"),
    (_pack([(_member("../index.json"), b"{}")]), "unexpected member '../index.json'"),
    (_pack([(_member("index.json", tarfile.SYMTYPE), None)]), "not a regular file"),
    (_pack([(_member("index.json"), b"[1")]), "not JSON"),
    (_pack([(_member("index.json"), b"{}")]), "not a corebpf bundle index"),
    (_pack([(_member("index.json"), INDEX)]), "names blob 0000"),
    (_pack([(_member("index.json"), INDEX.replace(b'"size": 1', b'"size": "1"'))]),
     "size is not int"),
    (_pack([(_member("index.json"), b"{}"), (_member("index.json"), b"{}")]),
     "appears twice"),
])
def test_bad_bundles(data: bytes, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        Bundle.from_bytes(data, "b.tar.xz")


def test_blob_sha_is_checked() -> None:
    b = Bundle.from_bytes(_pack([(_member("index.json"), INDEX),
                                 (_member("btf/" + "0" * 64 + ".btf"), b"tampered")]))
    with pytest.raises(ArchiveError, match="does not match its sha256"):
        b.lookup(distro="d", version="1", arch="x86_64", release="r")


def test_bundle_size_bound() -> None:
    with pytest.raises(ArchiveError, match="decompresses to more than"):
        Bundle.from_bytes(lzma.compress(b"\0" * 100_000), max_size=50_000)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzz_bundle_reader(data: st.DataObject) -> None:
    """Any damage to a real bundle is an ArchiveError, never another exception."""
    raw = _SMALL_BUNDLE
    body = lzma.decompress(raw)
    target = data.draw(st.sampled_from(["compressed", "tar"]))
    blob = raw if target == "compressed" else body
    at = data.draw(st.integers(0, len(blob) - 1))
    junk = data.draw(st.binary(min_size=1, max_size=16))
    cut = data.draw(st.booleans())
    mutated = blob[:at] + junk + (b"" if cut else blob[at + len(junk):])
    if target == "tar":
        mutated = lzma.compress(mutated)
    try:
        b = Bundle.from_bytes(mutated, "fuzz.tar.xz")
        for k in b.kernels:
            b.lookup(distro=k.distro, version=k.version, arch=k.arch, release=k.release)
    except ArchiveError:
        pass


_SMALL_BUNDLE = _pack([
    (_member("index.json"), INDEX.replace(b"0" * 64, hashlib.sha256(b"blob").hexdigest()
                                          .encode())),
    (_member(f"btf/{hashlib.sha256(b'blob').hexdigest()}.btf"), b"blob"),
])


def test_small_bundle_is_valid() -> None:
    b = Bundle.from_bytes(_SMALL_BUNDLE)
    m = b.lookup(distro="d", version="1", arch="x86_64", release="r")
    assert m is not None and m.btf == b"blob"


# -- CLI ---------------------------------------------------------------------------------


def corebpf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corebpf", *args], capture_output=True,
                          text=True, check=False)


def test_cli(archive: Path, tmp_path: Path) -> None:
    r = corebpf("archive", "index", str(archive), "--no-progress", "-o",
                str(tmp_path / "i.json"))
    assert r.returncode == 1 and "skipped" in r.stderr and "broken" in r.stderr
    assert "debian" in r.stdout and ArchiveIndex.read(tmp_path / "i.json").kernels
    out = tmp_path / "b.tar.xz"
    r = corebpf("archive", "bundle", str(archive), "--object", OBJECTS[0], "-o", str(out),
                "--no-progress", "--jobs", "2")
    assert r.returncode == 1 and "dedup ratio" in r.stdout, r.stderr
    deb = debian_files()[0].name.removesuffix(".btf.xz")
    r = corebpf("archive", "lookup", str(out), "--distro", "debian", "--distro-version",
                "12", "--arch", "x86_64", "--release", deb, "-o", str(tmp_path / "m.btf"))
    assert r.returncode == 0 and "matched by exact" in r.stdout, r.stderr
    assert btf.load(tmp_path / "m.btf").find("task_struct", btf.Kind.STRUCT)
    r = corebpf("archive", "lookup", str(out), "--release", "0.0.0")
    assert r.returncode == 1 and "no BTF" in r.stderr
    r = corebpf("archive", "list", str(out))
    assert r.returncode == 0 and "distinct BTF" in r.stdout
    if CORPUS.is_dir():
        assert any(p.split("/")[-1].split(".btf")[0] in r.stdout for p in CORPUS_PICKS)


def test_cli_extract(tmp_path: Path) -> None:
    tar = tmp_path / "t.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        for name, data in (("ok/k.btf", b"x"), ("../evil", b"y")):
            m = tarfile.TarInfo(name)
            m.size = len(data)
            t.addfile(m, io.BytesIO(data))
    r = corebpf("archive", "extract", str(tar), str(tmp_path / "d"))
    assert r.returncode == 1 and "refused '../evil'" in r.stderr
    assert (tmp_path / "d" / "ok" / "k.btf").read_bytes() == b"x"
    assert not (tmp_path / "evil").exists()


@pytest.mark.skipif(os.geteuid() != 0 or not KERNEL_BTF.exists(),
                    reason="loading BPF programs needs root and a kernel with BTF")
def test_run_takes_a_bundle(here_bundle: Path) -> None:
    import io
    import json

    from corebpf.run import run

    out = io.StringIO()
    assert run(PROGS / "execsnoop.bpf.o", duration=0.2, bundle=here_bundle, out=out,
               err=io.StringIO()) == 0
    final = json.loads(out.getvalue().splitlines()[-1])
    assert set(final) == {"globals", "maps"}
