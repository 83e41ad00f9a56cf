"""`corebpf cache info|clear` (the wiring: corebpf.cache holds the logic), and the issue's
scenario through the command line: touching a file and dumping it three times leaves one
index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf import cache
from corebpf.cli import main
from tests.conftest import PROGS, ROOT, debian_files


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("COREBPF_CACHE_DIR", "COREBPF_NO_CACHE", "COREBPF_CACHE_SIZE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "corebpf"


@pytest.fixture
def filled(xdg: Path, tmp_path: Path) -> Path:
    """Two indexes (one stale: its file is gone) and one service answer of 5000 bytes."""
    for name in ("btf_shapes.bpf.o", "core_kinds.bpf.o"):
        f = tmp_path / f"{name}.btf"
        f.write_bytes(btf.load(PROGS / name, index_cache=False).raw)
        btf.load(f)
    (tmp_path / "core_kinds.bpf.o.btf").unlink()
    assert cache.write("service", "ab" * 32 + ".btf", bytes(5000))
    return xdg


def test_info_text(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out.splitlines()
    got = cache.info()
    assert out[0] == f"cache: {filled}"
    assert out[1] == (f"size: {cache.format_size(got.bytes)} in 3 entries; cap 256 MiB; "
                      f"stale: 1 entry, {cache.format_size(got.stale_bytes)}")
    assert out[2].split() == ["KIND", "ENTRIES", "BYTES", "STALE", "STALE", "BYTES", "WHAT"]
    rows = {line.split()[0]: line for line in out[3:]}
    assert list(rows) == ["btf-index", "kernel-btf", "service"]
    index = got.kinds[0]
    assert rows["btf-index"].split()[1:7] == [
        "2", *cache.format_size(index.bytes).split(), "1",
        *cache.format_size(index.stale_bytes).split()]
    assert rows["service"].split()[1:7] == ["1", "4.9", "KiB", "0", "0", "B"]
    # columns align: every row's WHAT starts where the header's does
    assert {line.index(w) for line, w in zip(out[2:], ["WHAT", "BTF", "copies", "answers"],
                                             strict=True)} == {out[2].index("WHAT")}


def test_info_json(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "info", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == cache.info().to_json()
    assert doc["root"] == str(filled) and doc["enabled"] is True and doc["cap"] == 256 << 20
    assert (doc["entries"], doc["stale_entries"]) == (3, 1)
    kinds = {k["kind"]: k for k in doc["kinds"]}
    assert kinds["service"] == {
        "kind": "service", "description": cache.KINDS["service"].description,
        "directory": str(filled / "service"), "managed": True, "entries": 1, "bytes": 5000,
        "stale_entries": 0, "stale_bytes": 0}
    assert kinds["btf-index"]["entries"] == 2 and kinds["btf-index"]["stale_entries"] == 1


def test_info_of_an_empty_or_disabled_cache(xdg: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREBPF_NO_CACHE", "1")
    monkeypatch.setenv("COREBPF_CACHE_SIZE", "0")
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"cache: {xdg} (off: COREBPF_NO_CACHE is set)"
    assert out[1] == "size: 0 B in 0 entries; cap none; stale: 0 entries, 0 B"
    assert not xdg.exists()


def test_clear(filled: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "clear", "--stale"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("removed 1 stale entry (") and ": btf-index 1; " in out
    assert cache.info().stale_entries == 0 and cache.info().entries == 2
    assert main(["cache", "clear", "--kind", "service", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["entries"] == 1 and doc["kinds"] == {"service": {"entries": 1, "bytes": 5000}}
    assert doc["remaining_bytes"] == cache.info().bytes > 0
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out.endswith(": btf-index 1; 0 B left\n")
    assert cache.info().entries == 0


def test_bad_input(xdg: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as e:
        main(["cache", "clear", "--kind", "vmlinux"])
    assert e.value.code == 2
    assert "invalid choice: 'vmlinux' (choose from 'btf-index', 'kernel-btf', 'service')" \
        in capsys.readouterr().err
    monkeypatch.setenv("COREBPF_CACHE_SIZE", "lots")
    assert main(["cache", "info"]) == 1
    assert capsys.readouterr().err == (
        "corebpf: error: COREBPF_CACHE_SIZE='lots' is not a size (expected bytes: "
        "268435456, 256M, 1G; 0 for no cap)\n")


def test_dumping_a_touched_file_three_times_leaves_one_index(xdg: Path,
                                                             tmp_path: Path) -> None:
    """The issue's report, as a user ran it: touch, `corebpf btf dump`, three times."""
    f = tmp_path / "vmlinux.btf"
    f.write_bytes(btf.load(debian_files()[0], index_cache=False).raw)
    env = dict(os.environ)
    for i in range(3):
        st = f.stat()
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        r = subprocess.run([sys.executable, "-m", "corebpf", "btf", "dump", str(f), "--type",
                            "1"], capture_output=True, text=True, cwd=ROOT, env=env,
                           check=False)
        assert r.returncode == 0 and r.stdout.startswith("[1] "), r.stderr
        left = os.listdir(xdg / "btf-index")
        assert len(left) == 1 and left[0].endswith(".idx"), (i, left)
    r = subprocess.run([sys.executable, "-m", "corebpf", "cache", "info", "--json"],
                       capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    kinds = {k["kind"]: k for k in json.loads(r.stdout)["kinds"]}
    assert kinds["btf-index"]["entries"] == 1 and kinds["btf-index"]["bytes"] > 1 << 20
