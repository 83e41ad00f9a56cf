"""Archive inputs: discovery of BTFHub trees (arm64 and aarch64), Debian/Ubuntu packages,
vmlinux ELF and raw BTF; bounded reading that names the file; safe tar extraction against
hostile tarballs, fuzzed."""

from __future__ import annotations

import io
import lzma
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
from corebpf.archive.sources import (
    BTFHUB,
    DEB,
    RAW,
    VMLINUX,
    KernelEntry,
    discover,
    entry_for,
    normalize_arch,
    os_release,
    read_btf,
    running_kernel,
    safe_extract,
)
from corebpf.errors import ArchiveError, Error
from tests.conftest import CORPUS, PROGS, corpus_files
from tests.test_kernel_image import SHT_PROGBITS, make_ar, make_elf, make_tar

#: real, small BTF: a test object's own .BTF section
OBJ_BTF = btf.load(PROGS / "maps.bpf.o", index_cache=False).raw


def btf_tar_xz(name: str, blob: bytes) -> bytes:
    """A BTFHub-style ``<release>.btf.tar.xz``: one ``<release>.btf`` in an xz'd tar."""
    return lzma.compress(make_tar({name: blob}, "w"))


def deb(release: str, vmlinuz: bytes) -> bytes:
    files = {f"./boot/vmlinuz-{release}": vmlinuz, f"./boot/config-{release}": b"CONFIG_X=y\n"}
    return make_ar([("debian-binary", b"2.0\n"),
                    ("control.tar.gz", make_tar({"./control": b"Package: x\n"}, "w:gz")),
                    ("data.tar.xz", make_tar(files, "w:xz"))])


VMLINUX_ELF = make_elf([(".text", SHT_PROGBITS, b"\x90" * 16), (".BTF", SHT_PROGBITS, OBJ_BTF)])


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Every input kind in one tree, plus files that are not kernels."""
    files = {
        "ubuntu/20.04/x86_64/5.4.0-91-generic.btf.tar.xz": btf_tar_xz("5.4.0-91-generic.btf",
                                                                      OBJ_BTF),
        "ubuntu/20.04/arm64/5.4.0-91-generic.btf.tar.xz": btf_tar_xz("5.4.0-91-generic.btf",
                                                                     OBJ_BTF),
        "centos/8/aarch64/4.18.0-147.el8.aarch64.btf.tar.xz": btf_tar_xz("x.btf", OBJ_BTF),
        "debian/12/x86_64/6.1.0-9-amd64.btf.xz": lzma.compress(OBJ_BTF),
        "pkgs/linux-image-6.1.0-9-cloud-amd64-unsigned_6.1.27-1_amd64.deb":
            deb("6.1.0-9-cloud-amd64", VMLINUX_ELF),
        "pkgs/linux-image-unsigned-5.15.0-91-generic_5.15.0-91.101_arm64.deb":
            deb("5.15.0-91-generic", VMLINUX_ELF),
        "elf/vmlinux-6.6.0": VMLINUX_ELF,
        "raw/custom.btf": OBJ_BTF,
        "raw/modules/6.1.0-9-amd64/veth.btf": OBJ_BTF,  # split BTF: not a kernel
        "README.md": b"# not a kernel\n",
        "ubuntu/20.04/x86_64/SHA256SUMS": b"abc  x\n",
    }
    for rel, data in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return tmp_path


def test_discover_every_kind(tree: Path) -> None:
    entries = {os.path.relpath(e.path, tree): e for e in discover(tree)}
    assert set(entries) == {
        "ubuntu/20.04/x86_64/5.4.0-91-generic.btf.tar.xz",
        "ubuntu/20.04/arm64/5.4.0-91-generic.btf.tar.xz",
        "centos/8/aarch64/4.18.0-147.el8.aarch64.btf.tar.xz",
        "debian/12/x86_64/6.1.0-9-amd64.btf.xz",
        "pkgs/linux-image-6.1.0-9-cloud-amd64-unsigned_6.1.27-1_amd64.deb",
        "pkgs/linux-image-unsigned-5.15.0-91-generic_5.15.0-91.101_arm64.deb",
        "elf/vmlinux-6.6.0",
        "raw/custom.btf",
    }
    centos = entries["centos/8/aarch64/4.18.0-147.el8.aarch64.btf.tar.xz"]
    assert centos.key == ("centos", "8", "arm64", "4.18.0-147.el8.aarch64")
    assert centos.kind == BTFHUB
    arm = entries["ubuntu/20.04/arm64/5.4.0-91-generic.btf.tar.xz"]
    assert arm.key == ("ubuntu", "20.04", "arm64", "5.4.0-91-generic")
    d = entries["pkgs/linux-image-6.1.0-9-cloud-amd64-unsigned_6.1.27-1_amd64.deb"]
    assert (d.distro, d.arch, d.release, d.kind) == ("debian", "x86_64",
                                                     "6.1.0-9-cloud-amd64", DEB)
    u = entries["pkgs/linux-image-unsigned-5.15.0-91-generic_5.15.0-91.101_arm64.deb"]
    assert (u.distro, u.arch, u.release) == ("ubuntu", "arm64", "5.15.0-91-generic")
    assert entries["elf/vmlinux-6.6.0"].kind == VMLINUX
    assert entries["elf/vmlinux-6.6.0"].release == "6.6.0"
    assert entries["raw/custom.btf"].kind == RAW
    assert entries["debian/12/x86_64/6.1.0-9-amd64.btf.xz"].key == (
        "debian", "12", "x86_64", "6.1.0-9-amd64")


def test_every_kind_reads_to_the_same_btf(tree: Path) -> None:
    for entry in discover(tree):
        assert read_btf(entry) == OBJ_BTF, entry.path


def test_a_single_file_is_an_archive(tree: Path) -> None:
    path = tree / "raw" / "custom.btf"
    assert [e.path for e in discover(path)] == [str(path)]
    assert read_btf(str(path)) == OBJ_BTF
    with pytest.raises(ArchiveError, match=r"README\.md: not a kernel"):
        discover(tree / "README.md")
    with pytest.raises(ArchiveError, match="no such file"):
        discover(tree / "missing")


def test_arch_names() -> None:
    assert normalize_arch("aarch64") == normalize_arch("arm64") == "arm64"
    assert normalize_arch("amd64") == normalize_arch("x86_64") == "x86_64"
    assert normalize_arch("s390x") == "s390x"


def test_running_kernel_key() -> None:
    me = running_kernel()
    assert me.release == os.uname().release
    assert me.arch == normalize_arch(os.uname().machine)
    assert me.distro == os_release().get("ID", "")


def test_os_release_parsing(tmp_path: Path) -> None:
    p = tmp_path / "os-release"
    p.write_text('PRETTY_NAME="Ubuntu 22.04.3 LTS"\nID=ubuntu\nVERSION_ID="22.04"\n# x\n\n')
    assert os_release(str(p)) == {"PRETTY_NAME": "Ubuntu 22.04.3 LTS", "ID": "ubuntu",
                                  "VERSION_ID": "22.04"}
    assert os_release(str(tmp_path / "none")) == {}


@pytest.mark.parametrize("name, data, message", [
    ("bad.btf.tar.xz", b"\xfd7zXZ\x00" + b"\0" * 40, "corrupt compressed"),
    ("trunc.btf.tar.xz", lzma.compress(make_tar({"a.btf": OBJ_BTF}, "w"))[:200],
     "corrupt"),
    ("two.btf.tar.xz", lzma.compress(make_tar({"a.btf": OBJ_BTF, "b.btf": OBJ_BTF}, "w")),
     "expected one BTF"),
    ("notbtf.btf", b"hello world", "not BTF"),
    ("linux-image-6.1.0-1-amd64_6.1.1-1_amd64.deb", b"!<arch>\nnonsense", "deb|ar|package|member"),
    ("linux-image-6.1.0-1-amd64_6.1.1-1_amd64.deb", deb("6.1.0-1-amd64", make_elf([])),
     "no .BTF"),
    ("vmlinux", make_elf([(".text", SHT_PROGBITS, b"\0")]), "no .BTF"),
])
def test_bad_inputs_name_their_file(tmp_path: Path, name: str, data: bytes,
                                    message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    entry = entry_for(path) or KernelEntry(str(path))
    with pytest.raises(ArchiveError, match=message) as e:
        read_btf(entry)
    assert str(path) in str(e.value)


def test_size_bound(tmp_path: Path) -> None:
    path = tmp_path / "big.btf"
    path.write_bytes(OBJ_BTF)
    with pytest.raises(ArchiveError, match="more than"):
        read_btf(str(path), max_size=100)


@pytest.mark.skipif(not corpus_files(), reason="../shared/btf-corpus is not present")
def test_the_corpus_tree() -> None:
    entries = discover(CORPUS)
    assert len(entries) == len(corpus_files())
    assert all(e.distro and e.version and e.arch in ("arm64", "x86_64") and e.release
               for e in entries)
    blob = read_btf(entries[0])
    assert btf.from_bytes(blob).type_count > 10_000


# -- safe extraction ---------------------------------------------------------------------


def hostile_tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:xz") as tar:
        for m in members:
            payload = data.get(m.name)
            if payload is not None:
                m.size = len(payload)
            tar.addfile(m, io.BytesIO(payload) if payload is not None else None)
    return path


def info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    m = tarfile.TarInfo(name)
    m.type = kind
    m.linkname = linkname
    return m


def all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_safe_extract_refuses_what_escapes(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    members = [
        info("ok/a/1.btf.tar.xz"),
        info("/etc/evil"),
        info("../escape"),
        info("ok/../../escape2"),
        info("link", tarfile.SYMTYPE, str(outside)),
        info("link/through"),
        info("hard", tarfile.LNKTYPE, "/etc/passwd"),
        info("dev", tarfile.CHRTYPE),
        info("fifo", tarfile.FIFOTYPE),
        info("ok/dir", tarfile.DIRTYPE),
    ]
    data = {"ok/a/1.btf.tar.xz": b"x", "/etc/evil": b"x", "../escape": b"x",
            "ok/../../escape2": b"x", "link/through": b"x"}
    tar = hostile_tar(tmp_path / "evil.tar.xz", members, data)
    dest = tmp_path / "dest"
    report = safe_extract(tar, dest)
    assert all_files(dest) == {"ok", "ok/a", "ok/a/1.btf.tar.xz", "ok/dir", "link",
                               "link/through"}
    assert not (dest / "link").is_symlink()  # a plain directory made for link/through
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "escape").exists() and not (tmp_path / "escape2").exists()
    refused = dict(report.refused)
    assert set(refused) == {"/etc/evil", "../escape", "ok/../../escape2", "link", "hard",
                            "dev", "fifo"}
    assert "absolute" in refused["/etc/evil"]
    assert "links" in refused["link"]


def test_safe_extract_does_not_write_through_a_link_in_dest(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    (dest / "file").symlink_to(outside / "target")
    tar = hostile_tar(tmp_path / "t.tar", [info("sub/x"), info("file")],
                      {"sub/x": b"1", "file": b"2"})
    report = safe_extract(tar, dest)
    assert list(outside.iterdir()) == []
    assert [name for name, _ in report.refused] == ["sub/x", "file"]
    assert report.written == []


def test_safe_extract_bounds(tmp_path: Path) -> None:
    tar = hostile_tar(tmp_path / "t.tar.gz", [info("big"), info("small")],
                      {"big": b"x" * 5000, "small": b"y"})
    report = safe_extract(tar, tmp_path / "d1", max_member=1000)
    assert report.refused == [("big", "5000 bytes is more than the 1000 a member may weigh")]
    assert all_files(tmp_path / "d1") == {"small"}
    with pytest.raises(ArchiveError, match="add up to more than"):
        safe_extract(tar, tmp_path / "d2", max_total=3000)
    with pytest.raises(ArchiveError, match="more than 1 members"):
        safe_extract(tar, tmp_path / "d3", max_members=1)


def test_safe_extract_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.xz"
    bad.write_bytes(lzma.compress(b"garbage" * 100))
    with pytest.raises(ArchiveError, match=r"bad\.tar\.xz: corrupt"):
        safe_extract(bad, tmp_path / "d")


names = st.lists(st.sampled_from(["a", "..", ".", "", "/", "b", "/tmp", "c:", "..."]),
                 min_size=1, max_size=5).map("/".join)
kinds = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                         tarfile.CHRTYPE, tarfile.FIFOTYPE])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(names, kinds, names), min_size=1, max_size=8))
def test_fuzz_safe_extract_stays_inside(tmp_path: Path,
                                        members: list[tuple[str, bytes, str]]) -> None:
    import shutil
    import tempfile

    work = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        outside = work / "outside"
        outside.mkdir()
        tar = work / "t.tar"
        with tarfile.open(tar, "w") as t:
            for name, kind, link in members:
                m = info(name or "x", kind, link)
                payload = b"data" if kind == tarfile.REGTYPE else None
                if payload:
                    m.size = len(payload)
                t.addfile(m, io.BytesIO(payload) if payload else None)
        dest = work / "dest"
        try:
            safe_extract(tar, dest)
        except ArchiveError:
            pass
        for p in work.rglob("*"):
            assert p == outside or p == tar or dest in p.parents or p == dest, p
            assert not p.is_symlink(), p
    finally:
        shutil.rmtree(work)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 400), st.sampled_from(
    ["k.btf.tar.xz", "k.btf", "vmlinux", "linux-image-6.1.0-1-amd64_6.1-1_amd64.deb"]))
def test_fuzz_read_btf_raises_only_archive_error(junk: bytes, at: int, name: str) -> None:
    import tempfile

    base = {"k.btf.tar.xz": btf_tar_xz("k.btf", OBJ_BTF), "k.btf": OBJ_BTF,
            "vmlinux": VMLINUX_ELF,
            "linux-image-6.1.0-1-amd64_6.1-1_amd64.deb": deb("6.1.0-1-amd64", VMLINUX_ELF)}[name]
    at = min(at, len(base))
    data = base[:at] + junk + base[at + len(junk):]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        entry = entry_for(path) or KernelEntry(path)
        try:
            read_btf(entry)
        except ArchiveError as e:
            assert path in str(e)
        except Error as e:  # pragma: no cover - the failure this test exists for
            pytest.fail(f"{type(e).__name__} instead of ArchiveError: {e}")
