"""The result cache: atomic entries, LRU order and pins, reconciliation with the disk on
reopen; a server restarted on the same --cache answering from it, and a small
--cache-size evicting least recently used results."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from pathlib import Path

import pytest

from corebpf.service.cache import KINDS, Cache
from tests.conftest import debian_files
from tests.service.conftest import (
    Server,
    build_archive,
    object_bytes,
    post_objects,
    query,
    request,
)


def open_cache(root: Path, max_bytes: int = 100) -> Cache:
    root.mkdir(exist_ok=True)
    db = sqlite3.connect(root / "db.sqlite", isolation_level=None)
    return Cache(str(root), db, max_bytes)


def test_lru_eviction_order_and_pins(tmp_path: Path) -> None:
    evicted: list[tuple[str, int]] = []
    c = open_cache(tmp_path)
    c.on_evict = lambda kind, size: evicted.append((kind, size))
    for i in range(4):
        c.put("customize", f"{i:064x}", bytes(30))  # 4 x 30 > 100: the first goes
    assert c.total == 90 and evicted == [("customize", 30)]
    assert c.read("customize", f"{0:064x}") is None
    assert c.read("customize", f"{1:064x}") == bytes(30)  # now the most recent
    with c.pinned([f"customize/{2:064x}"]):
        c.put("object", "a" * 64, bytes(30))
    # 2 was the least recent but pinned: 3 went
    assert f"customize/{2:064x}" in c and f"customize/{3:064x}" not in c
    assert f"customize/{1:064x}" in c
    # an entry larger than the bound stays until the next one
    c.put("bundle", "b" * 64, bytes(500))
    assert c.entries == 1 and c.read("bundle", "b" * 64) == bytes(500)
    assert sorted(os.listdir(tmp_path / "tmp")) == []  # no temporaries left


def test_reopen_reconciles_with_the_disk(tmp_path: Path) -> None:
    c = open_cache(tmp_path, 1000)
    for i in range(3):
        c.put("check", f"{i:064x}", bytes(10 + i))
    c.read("check", f"{0:064x}")  # 0 becomes the most recent
    c.flush()
    os.unlink(c.path("check", f"{1:064x}"))  # lost behind its back
    stray = Path(c.path("download", "d" * 64))  # renamed, never recorded (a crash)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(bytes(7))
    (tmp_path / "tmp" / "half.written").write_bytes(b"x")
    c.db.close()
    again = open_cache(tmp_path, 1000)
    assert f"check/{1:064x}" not in again
    assert again.read("download", "d" * 64) == bytes(7)
    assert again.total == 10 + 12 + 7
    assert os.listdir(tmp_path / "tmp") == []
    # least recent first: 2 (never read after its write), then 0
    again.max_bytes = 10
    again.evict()
    assert f"check/{0:064x}" not in again and f"check/{2:064x}" not in again
    assert set(KINDS) >= {"customize", "download", "check", "bundle", "object"}


def metric(url: str, name: str) -> float:
    status, _, body = request("GET", f"{url}/monitoring/metrics")
    assert status == 200
    m = re.search(rf"^{re.escape(name)} (\S+)$", body.decode(), re.MULTILINE)
    return float(m[1]) if m else 0.0


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, ...]]]:
    if not debian_files():
        pytest.skip("tests/data/btf has no Debian kernels")
    root = tmp_path_factory.mktemp("cached") / "archive"
    keys = build_archive(root, broken=False, escape=False)
    return root, keys


def test_restart_keeps_the_cache(archive: tuple[Path, list[tuple[str, ...]]],
                                 tmp_path: Path) -> None:
    root, keys = archive
    cache = tmp_path / "cache"
    obj = [("runqlat.bpfel.o", object_bytes("runqlat.bpfel.o"))]
    first = Server(root, cache).start()
    status, h, body = post_objects(f"{first.url}/api/v1/customize?{query(keys[0])}", obj)
    assert status == 200 and h["x-corebpf-cache"] == "miss"
    assert first.stop() == 0  # SIGTERM: a clean shutdown
    with Server(root, cache) as second:
        status, h2, body2 = post_objects(f"{second.url}/api/v1/customize?"
                                         f"{query(keys[0])}", obj)
        assert status == 200 and h2["x-corebpf-cache"] == "hit"
        assert h2["etag"] == h["etag"] and body2 == body
        # nothing was re-read: the index came from SQLite, the result from disk
        assert metric(second.url, 'corebpf_job_duration_seconds_count{job="index"}') == 0
        assert metric(second.url, 'corebpf_job_duration_seconds_count{job="customize"}') == 0
        # the object uploaded to the first is known to the second
        sha = hashlib.sha256(obj[0][1]).hexdigest()
        status, _, _ = request("GET", f"{second.url}/api/v1/bundle?object={sha}"
                               f"&distribution={keys[0][0]}")
        assert status == 200


def test_small_cache_evicts_least_recently_used(
        archive: tuple[Path, list[tuple[str, ...]]], tmp_path: Path) -> None:
    root, keys = archive
    cache = tmp_path / "cache"
    size = 16 << 10
    names = ["syscount.bpfel.o", "core_poison.bpf.o", "core_module.bpf.o",
             "core_arrays.bpf.o"]
    asks = [(k, n) for n in names for k in keys[:2]]
    with Server(root, cache, "--cache-size", "16K") as server:
        url = server.url

        def ask(key: tuple[str, ...], name: str) -> str:
            status, h, body = post_objects(f"{url}/api/v1/customize?{query(key)}",
                                           [(name, object_bytes(name))])
            assert status == 200, body
            return h["x-corebpf-cache"]

        assert [ask(k, n) for k, n in asks] == ["miss"] * len(asks)
        assert ask(*asks[-1]) == "hit"  # the most recent stays
        assert ask(*asks[0]) == "miss"  # the least recent went
        evictions = sum(metric(url, f'corebpf_cache_evictions_total{{kind="{k}"}}')
                        for k in KINDS)
        assert evictions > 0
        held = metric(url, "corebpf_cache_bytes")
        assert 0 < held <= size
        on_disk = sum(p.stat().st_size for kind in KINDS if (cache / kind).is_dir()
                      for p in (cache / kind).rglob("*") if p.is_file())
        assert on_disk == held
