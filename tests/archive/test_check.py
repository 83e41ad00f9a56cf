"""corebpf check on real kernels: the matrix, its agreement with `core relocate`, a corrupt
kernel skipped, JSON/HTML outputs and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("corebpf.archive.sources",
                    reason="corebpf.archive.sources (discover/read_btf) is not in the tree yet")

from corebpf.archive.check import (
    FAILED,
    OK,
    POISONED,
    RESOLVED,
    CheckReport,
    KernelCheck,
    RelocationCheck,
    check_archive,
    format_table,
)
from corebpf.archive.report_html import render_html
from corebpf.errors import Error
from tests.conftest import CORPUS, PROGS, debian_files

POISON = str(PROGS / "core_poison.bpf.o")
KINDS = str(PROGS / "core_kinds.bpf.o")
EXECSNOOP = str(PROGS / "execsnoop.bpf.o")
#: corpus kernels: Android 5.10, CentOS 8 (4.18: an ambiguous relocation of core_kinds),
#: Kylin 4.19 (no bpf_iter)
CORPUS_PICKS = [
    "android/12/arm64/a12-5.10-lts-arm64.btf.tar.xz",
    "centos/8/aarch64/4.18.0-147.5.1.el8_1.aarch64.btf.tar.xz",
    "kylin/V10/aarch64/4.19.90-24.4.v2101.ky10.aarch64.btf.tar.xz",
]
BROKEN = "broken/1/x86_64/5.0.0-broken.btf.tar.xz"


def build_archive(root: Path, *, corpus: bool = True, broken: bool = True) -> list[Path]:
    """A BTFHub-layout tree of copies of real kernels (and a truncated one)."""
    files = []
    for deb in debian_files()[:2]:
        dest = root / "debian" / "12" / "x86_64" / deb.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(deb, dest)
        files.append(dest)
    if corpus and CORPUS.is_dir():
        for rel in CORPUS_PICKS:
            if (CORPUS / rel).exists():
                dest = root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(CORPUS / rel, dest)
                files.append(dest)
    if broken:
        dest = root / BROKEN
        dest.parent.mkdir(parents=True, exist_ok=True)
        whole = (CORPUS / CORPUS_PICKS[0]) if CORPUS.is_dir() else debian_files()[0]
        dest.write_bytes(whole.read_bytes()[:4096])
        files.append(dest)
    return files


def new_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh archive (skips without the Debian kernels)."""
    if not debian_files():
        pytest.skip("tests/data/btf has no Debian kernels")
    root = tmp_path_factory.mktemp("archive")
    build_archive(root)
    return root


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return new_archive(tmp_path_factory)


@pytest.fixture(scope="module")
def report(archive: Path) -> CheckReport:
    return check_archive([POISON, KINDS, EXECSNOOP], archive, jobs=2, progress=False)


def by_name(report: CheckReport) -> dict[str, KernelCheck]:
    return {Path(k.path).name: k for k in report.kernels}


def test_every_kernel_has_a_row(report: CheckReport, archive: Path) -> None:
    on_disk = sorted(p.name for p in archive.rglob("*") if p.is_file())
    assert sorted(by_name(report)) == on_disk
    columns = report.columns()
    for k in report.kernels:
        if k.error is None:  # every readable kernel has every relocation of every object
            assert [r.key for r in k.relocations] == [c.key for c in columns]


def test_corrupt_kernel_is_reported_and_skipped(report: CheckReport) -> None:
    broken = by_name(report)[Path(BROKEN).name]
    assert broken.status == FAILED and not broken.relocations
    assert broken.error is not None and BROKEN in broken.error
    others = [k for k in report.kernels if k is not broken]
    assert others and all(k.error is None and k.relocations for k in others)


def test_poisoned_relocation_says_what_is_missing(report: CheckReport) -> None:
    for k in report.kernels:
        if k.error is not None:
            continue
        poison = [r for r in k.relocations if r.object == POISON]
        assert poison and all(r.result == POISONED for r in poison)
        assert poison[0].message == "struct task_struct has no field no_such_field_anywhere"
        assert poison[0].target is None
        assert k.status in (POISONED, FAILED)


def test_statuses_on_real_kernels(report: CheckReport) -> None:
    rows = by_name(report)
    for deb in debian_files()[:2]:
        row = rows[deb.name]
        assert row.status == POISONED
        # on Debian 12 only core_poison's read and core_kinds' guarded read of the pre-5.14
        # task_struct.state are poisoned; execsnoop resolves fully
        problems = {(r.object, r.message) for r in row.relocations if r.result != RESOLVED}
        assert problems == {
            (POISON, "struct task_struct has no field no_such_field_anywhere"),
            (KINDS, "struct task_struct___old has no field state")}
    centos = Path(CORPUS_PICKS[1]).name
    if centos in rows:
        row = rows[centos]
        assert row.status == FAILED and row.error is None
        failed = [r for r in row.relocations if r.result == FAILED]
        assert failed and "ambiguity" in failed[0].message
        assert failed[0].object == KINDS


def test_decisions_equal_core_relocate(report: CheckReport) -> None:
    """The same decisions as `corebpf core relocate --json` on each kernel file."""
    for k in report.kernels:
        if k.error is not None:
            continue
        for obj in (POISON, KINDS):
            out = subprocess.run(
                [sys.executable, "-m", "corebpf", "core", "relocate", obj, "--target", k.path,
                 "--json"], capture_output=True, text=True, check=False)
            expected = [json.loads(line) for line in out.stdout.splitlines()]
            got = [r for r in k.relocations if r.object == obj]
            assert len(got) == len(expected), k.path
            for r, e in zip(got, expected, strict=True):
                assert (r.program, r.section, r.index) == (e["program"], e["section"],
                                                           e["index"])
                if "error" in e:
                    assert r.result == FAILED and r.message == e["error"]
                    continue
                assert r.kind == e["kind"] and r.local == e["local"] and r.insn == e["insn"]
                assert r.target == e["target"]
                assert (r.result == POISONED) == e["poisoned"]


def test_executors_give_the_same_matrix(archive: Path, report: CheckReport) -> None:
    serial = check_archive([POISON, KINDS, EXECSNOOP], archive, jobs=1, progress=False)
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = check_archive([POISON, KINDS, EXECSNOOP], archive, executor=pool)
    assert serial.to_json() == report.to_json() == threaded.to_json()


def test_bad_object_is_an_error_before_any_work(archive: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.o"
    bogus.write_bytes(b"not an ELF file")
    with pytest.raises(Error, match=r"bogus\.o"):
        check_archive([str(bogus)], archive, jobs=1)


def test_table(report: CheckReport) -> None:
    text = format_table(report)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["kernel", "distro/version/arch", "status"]
    assert len(lines) == len(report.kernels) + 2
    assert "no field no_such_field_anywhere" in text
    assert lines[-1].startswith(f"{len(report.kernels)} kernels: ")


class _Checker(HTMLParser):
    """Well-formedness: every non-void element closed in order."""

    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.cells: dict[str, int] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "td":
            for cls in (dict(attrs).get("class") or "").split():
                self.cells[cls] = self.cells.get(cls, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.stack == []
    return checker


def test_html_is_well_formed_and_complete(report: CheckReport) -> None:
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page
    parsed = parse_html(page)
    text = "".join(parsed.text)
    for k in report.kernels:
        assert k.kernel in text and k.path in text
    n_cells = len(report.kernels) * len(report.columns())
    assert sum(parsed.cells.get(c, 0) for c in (RESOLVED, POISONED, FAILED, "unread")) == n_cells
    assert parsed.cells[POISONED] and parsed.cells[RESOLVED]


def test_html_escapes_untrusted_text() -> None:
    evil = "<script>alert(1)</script>"
    rel = RelocationCheck(object="/x/a.o", program=evil, section="s", index=0, insn=1,
                          kind="byte_off", access="0:1", spec="struct x.y", result=FAILED,
                          message=evil)
    report = CheckReport(objects=["/x/a.o"], kernels=[
        KernelCheck(kernel=evil, path="/k/" + evil, relocations=[rel]),
        KernelCheck(kernel="bad", path="/k/bad", error=evil)])
    page = render_html(report)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert evil in "".join(parse_html(page).text)


def test_json_schema(report: CheckReport) -> None:
    doc = json.loads(json.dumps(report.to_json()))
    assert set(doc) == {"kernels"}
    for k in doc["kernels"]:
        assert {"kernel", "path", "status", "relocations"} <= set(k)
        assert set(k) - {"kernel", "path", "status", "relocations"} <= {"error"}
        assert k["status"] in (OK, POISONED, FAILED)
        for r in k["relocations"]:
            assert set(r) == {"object", "program", "section", "index", "insn", "kind",
                              "access", "spec", "result", "local", "target", "message"}
            assert r["result"] in (RESOLVED, POISONED, FAILED)


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corebpf", "check", *args],
                          capture_output=True, text=True, check=False)


def test_cli_json_html_and_exit_codes(archive: Path, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    out = run_check(POISON, KINDS, "--archive", str(archive), "--json", "--html", str(html),
                    "--jobs", "2")
    assert out.returncode == 1, out.stderr  # a corrupt kernel (and CentOS's ambiguity)
    assert BROKEN in out.stderr
    doc = json.loads(out.stdout)
    assert len(doc["kernels"]) == len(list(p for p in archive.rglob("*") if p.is_file()))
    parse_html(html.read_text())

    clean = tmp_path / "clean"
    build_archive(clean, corpus=False, broken=False)
    ok = run_check(EXECSNOOP, "--archive", str(clean))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert " ok " in ok.stdout.splitlines()[1]
    poisoned = run_check(POISON, "--archive", str(clean), "--jobs", "1")
    assert poisoned.returncode == 0 and "poisoned" in poisoned.stdout
    assert run_check(POISON, "--archive", str(clean), "--strict").returncode == 1
    assert run_check(KINDS, "--archive", str(clean), "--jobs", "0").returncode == 2
