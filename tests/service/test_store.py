"""The archive's index: what a walk takes and refuses, SQLite rows surviving a reopen,
only changed files re-read; and a running server seeing kernels added, replaced and
removed (on a miss, and on its timer)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from corebpf.service.store import KernelIndex, KernelRow, connect, walk
from tests.conftest import debian_files
from tests.service.conftest import (
    Server,
    error_of,
    first_regular_file,
    object_bytes,
    post_objects,
    query,
    request,
)


def debian(n: int) -> Path:
    files = debian_files()
    if len(files) <= n:
        pytest.skip("tests/data/btf has too few Debian kernels")
    return files[n]


def place(root: Path, n: int, distro: str = "debian", name: str | None = None) -> Path:
    src = debian(n)
    dest = root / distro / "12" / "x86_64" / (name or src.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def test_walk_takes_links_inside_refuses_links_out(tmp_path: Path) -> None:
    root = tmp_path / "a"
    real = place(root, 0)
    (root / "debian" / "12" / "x86_64" / "inside.btf.xz").symlink_to(real)
    (root / "debian" / "12" / "x86_64" / "out.btf").symlink_to(debian(1))
    (root / "debian" / "12" / "x86_64" / "dangling.btf").symlink_to(tmp_path / "none")
    (root / "README.md").write_text("not a kernel")
    (root / "modules" / "x").mkdir(parents=True)
    (root / "modules" / "x" / "m.btf").write_bytes(b"\x9f\xeb")
    cache = root / "cache"
    cache.mkdir()
    (cache / "x.btf").write_bytes(b"\x9f\xeb")
    got = walk(str(root), [str(cache)])
    assert [f.path for f in got.found] == ["debian/12/x86_64/" + real.name,
                                           "debian/12/x86_64/inside.btf.xz"]
    assert [p for p, _ in got.refused] == ["debian/12/x86_64/dangling.btf",
                                           "debian/12/x86_64/out.btf"]
    assert all("outside the archive" in why for _, why in got.refused)
    one = walk(str(real.parent), only=real.name)
    assert [f.path for f in one.found] == [real.name]


def row(path: str, release: str, *, error: str = "", btf: str = "b") -> KernelRow:
    return KernelRow(path, "debian", "12", "x86_64", release, "raw", 10, 1, "s", btf, 5,
                     error)


def test_index_rows_keys_and_reopen(tmp_path: Path) -> None:
    root = tmp_path / "a"
    place(root, 0)
    place(root, 1)
    w = walk(str(root))
    db = connect(str(tmp_path / "db.sqlite"))
    index = KernelIndex(db, str(root))
    assert index.stale(w) == w.found  # nothing indexed yet
    rows = [row(f.path, f.entry.release) for f in w.found]
    rows = [KernelRow(*(r.values()[:6]), f.size, f.mtime_ns, "s", "b", 5, "")
            for r, f in zip(rows, w.found, strict=True)]
    index.apply(w, rows)
    assert index.stale(w) == []
    assert [r.release for r in index.usable()] == sorted(f.entry.release for f in w.found)
    db.close()
    again = KernelIndex(connect(str(tmp_path / "db.sqlite")), str(root))
    assert again.rows == index.rows and again.generation == index.generation
    # another archive's rows are its own
    assert KernelIndex(again.db, str(tmp_path / "other")).rows == {}


def test_first_usable_file_of_a_key_wins(tmp_path: Path) -> None:
    db = connect(str(tmp_path / "db.sqlite"))
    index = KernelIndex(db, str(tmp_path))
    from corebpf.service.store import Walk

    w = Walk()
    index.apply(w, [row("a/k.btf", "5.0", error="corrupt"), row("b/k.btf", "5.0"),
                    row("c/k.btf", "5.0"), row("d/x.btf", "6.0", error="corrupt")])
    assert index.lookup(("debian", "12", "x86_64", "5.0")).path == "b/k.btf"  # type: ignore[union-attr]
    assert index.lookup(("debian", "12", "x86_64", "6.0")).error == "corrupt"  # type: ignore[union-attr]
    assert [r.path for r in index.usable()] == ["b/k.btf"]
    assert dict(index.errors()) == {"a/k.btf": "corrupt", "c/k.btf": "same key as b/k.btf",
                                    "d/x.btf": "corrupt"}


def test_lookup_release_takes_one_btf_only(tmp_path: Path) -> None:
    """A key that matches nothing exactly finds the kernel of its arch and release when
    every file of them holds one BTF (Bundle.lookup's rule), never when they differ."""
    from corebpf.service.store import Walk

    index = KernelIndex(connect(str(tmp_path / "db.sqlite")), str(tmp_path))

    def at(path: str, version: str, release: str, btf: str, error: str = "") -> KernelRow:
        return KernelRow(path, "debian", version, "x86_64", release, "raw", 10, 1, "s", btf,
                         5, error)

    index.apply(Walk(), [at("a", "", "5.0", "b1"), at("b", "12", "5.0", "b1"),
                         at("c", "11", "6.0", "b1"), at("d", "12", "6.0", "b2"),
                         at("e", "12", "7.0", "b3", error="corrupt"), at("f", "12", "8.0", "")])
    found = index.lookup_release("x86_64", "5.0")
    assert found is not None and found.btf_sha256 == "b1"
    assert index.lookup_release("x86_64", "6.0") is None  # two different kernels
    assert index.lookup_release("arm64", "5.0") is None
    assert index.lookup_release("x86_64", "7.0") is None  # corrupt: never a match
    assert index.lookup_release("x86_64", "8.0") is None  # not hashed


def until(ok: Callable[[], bool], timeout: float = 60.0) -> bool:
    """Poll ``ok`` until it holds (the server's walks run on their own schedule)."""
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def listed(url: str) -> set[str]:
    status, _, body = request("GET", f"{url}/api/v1/list")
    assert status == 200
    return {r["kernel_version"] for r in json.loads(body)}


def release(n: int) -> str:
    return debian(n).name.removesuffix(".btf.xz")


def test_server_sees_kernels_added_replaced_removed(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    first = place(root, 0)
    with Server(root, tmp_path / "cache", "--rescan", "0") as server:
        url = server.url
        assert listed(url) == {release(0)}
        # added: the first request for it walks the archive again (a miss)
        place(root, 1)
        key1 = ("debian", "12", "x86_64", release(1))
        # (a miss walks at most once a second: the first ask may come too soon)
        assert until(lambda: request("GET", f"{url}/api/v1/download?{query(key1)}")[0]
                     == 200)
        assert listed(url) == {release(0), release(1)}
        # replaced in place (same name, other BTF): noticed on the next request for it
        key0 = ("debian", "12", "x86_64", release(0))
        obj = [("syscount.bpfel.o", object_bytes("syscount.bpfel.o"))]
        status, h0, before = post_objects(f"{url}/api/v1/customize?{query(key0)}", obj)
        assert status == 200
        tmp = first.with_suffix(".new")
        shutil.copyfile(debian(2) if len(debian_files()) > 2 else debian(1), tmp)
        os.replace(tmp, first)
        status, h1, after = post_objects(f"{url}/api/v1/customize?{query(key0)}", obj)
        assert status == 200 and h1["etag"] != h0["etag"]
        assert h1["x-corebpf-cache"] == "miss"
        assert first_regular_file(after)[1] != first_regular_file(before)[1]
        # removed: a request for it finds it gone
        first.unlink()
        status, h, body = request("GET", f"{url}/api/v1/download?{query(key0)}")
        assert status == 404 and release(0) in error_of(status, h, body)
        assert listed(url) == {release(1)}
        status, _, text = request("GET", f"{url}/monitoring/metrics")
        assert b'corebpf_index_scans_total{reason="miss"}' in text
        assert b'corebpf_index_scans_total{reason="changed"}' in text


def test_server_rescans_on_its_timer(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    place(root, 0)
    with Server(root, tmp_path / "cache", "--rescan", "0.2") as server:
        place(root, 1, distro="other")
        # no request names it: the timer finds it
        assert until(lambda: listed(server.url) == {release(0), release(1)})
        (root / "other" / "12" / "x86_64" / debian(1).name).unlink()
        assert until(lambda: listed(server.url) == {release(0)})
