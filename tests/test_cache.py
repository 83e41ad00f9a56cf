"""corebpf.cache: one index per file identity (the file's earlier ones go at once), stale
entries (changed or vanished files, earlier boots' kernel BTF, an older format, crashed
writers) pruned by the walk, an LRU size cap enforced by amortised walks, BTF service
answers counted and capped, concurrent processes writing and pruning at once, and hits
that walk nothing. Every test has its own XDG_CACHE_HOME; entries are real files."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf import cache
from tests.conftest import KERNEL_BTF, PROGS, ROOT, debian_files

SMALL_OBJECTS = ("btf_shapes.bpf.o", "core_kinds.bpf.o", "execsnoop.bpf.o")


@pytest.fixture
def xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache: XDG_CACHE_HOME in tmp_path, no override, no cap setting."""
    for var in ("COREBPF_CACHE_DIR", "COREBPF_NO_CACHE", "COREBPF_CACHE_SIZE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "corebpf"


@pytest.fixture(scope="module")
def kernel_sized_raw() -> bytes:
    """A Debian kernel's raw BTF (an index of ~1.4 MB, as in the issue)."""
    return btf.load(debian_files()[0], index_cache=False).raw


def _raw(name: str) -> bytes:
    return btf.load(PROGS / name, index_cache=False).raw


def _entries(root: Path, suffix: str) -> list[Path]:
    d = root / "btf-index"
    return sorted(p for p in d.iterdir() if p.name.endswith(suffix)) if d.is_dir() else []


def _bump(path: Path) -> None:
    """`touch`: a later mtime (a whole second on, whatever the clock's granularity)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _age(path: Path, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    os.utime(path, (t, t))


# -- one index per file identity ------------------------------------------------------------


def test_touching_a_file_three_times_leaves_one_index(xdg: Path, tmp_path: Path,
                                                      kernel_sized_raw: bytes) -> None:
    """The issue's scenario: each touch is a new identity, whose index replaces the one
    before it at once (not at the next walk)."""
    f = tmp_path / "vmlinux.btf"
    f.write_bytes(kernel_sized_raw)
    first = btf.load(f)
    seen = set()
    for _ in range(3):
        _bump(f)
        spec = btf.load(f)
        assert spec.find("task_struct") == first.find("task_struct")
        idx = _entries(xdg, ".idx")
        assert len(idx) == 1 and idx[0].stat().st_size > 1 << 20
        seen.add(idx[0].name)
    assert len(seen) == 3  # a new identity each time, each replacing the last
    key = cache.source_key(f, f.stat())
    assert key is not None and idx[0].name == key.stem + ".idx"
    walks = cache.stats["walks"]
    assert btf.load(f)._by_name is not None  # the index is used: a hit
    assert cache.stats["walks"] == walks
    info = cache.info()
    kinds = {k.kind: k for k in info.kinds}
    assert kinds["btf-index"].entries == 1 and kinds["btf-index"].stale_entries == 0


def test_changed_and_vanished_files_are_stale_and_pruned(xdg: Path, tmp_path: Path) -> None:
    files = {}
    for name in SMALL_OBJECTS:
        files[name] = tmp_path / f"{name}.btf"
        files[name].write_bytes(_raw(name))
        btf.load(files[name])
    kept, changed, gone = (files[n] for n in SMALL_OBJECTS)
    changed.write_bytes(changed.read_bytes() + b"\0")  # another size and mtime, not loaded
    gone.unlink()
    stale = {e.path: e.stale for e in cache.scan() if e.stale}
    assert sorted(stale.values()) == ["file changed", "file gone"]
    info = {k.kind: k for k in cache.info().kinds}
    assert info["btf-index"].entries == 3 and info["btf-index"].stale_entries == 2
    done = cache.prune()
    assert done is not None and done.entries == {"btf-index": 2}
    left = _entries(xdg, ".idx")
    assert len(left) == 1 and left[0].name.startswith(cache.source_key(
        kept, kept.stat()).stem)  # type: ignore[union-attr]
    assert not any(e.stale for e in cache.scan())


@pytest.mark.skipif(not KERNEL_BTF.exists(), reason="this kernel exposes no BTF in sysfs")
def test_an_earlier_boots_kernel_btf_is_pruned(xdg: Path) -> None:
    """Entries keyed by another boot id (real files, written the way btf.load writes this
    boot's) are stale: a walk removes them, and this boot's index replaces them at once."""
    spec = btf.load(KERNEL_BTF)
    assert len(_entries(xdg, ".idx")) == 1 and len(_entries(xdg, ".btf")) == 1
    now = {p.name for p in (xdg / "btf-index").iterdir()}
    this_boot = cache.boot_id()
    assert this_boot is not None

    def earlier_boot() -> set[str]:
        key = cache.source_key(KERNEL_BTF, KERNEL_BTF.stat(),
                               boot=b"00000000-0000-4000-8000-000000000000")
        assert key is not None and key.prefix in next(iter(now))
        assert cache.write("btf-index", key.stem + ".idx", bytes(4096), ident=key.ident)
        assert cache.write("kernel-btf", key.stem + ".btf", spec.raw)
        return {key.stem + ".idx", key.stem + ".btf"}

    old = earlier_boot()
    stale = {os.path.basename(e.path): e.stale for e in cache.scan() if e.stale}
    assert stale == dict.fromkeys(old, "an earlier boot")
    info = {k.kind: k for k in cache.info().kinds}
    assert info["kernel-btf"].entries == 2 and info["kernel-btf"].stale_entries == 1
    assert info["kernel-btf"].stale_bytes == len(spec.raw)
    done = cache.prune()
    assert done is not None and done.entries == {"btf-index": 1, "kernel-btf": 1}
    assert {p.name for p in (xdg / "btf-index").iterdir()} == now
    # this boot's index, written anew, removes an earlier boot's without a walk
    old = earlier_boot()
    for name in now:
        (xdg / "btf-index" / name).unlink()
    walks = cache.stats["walks"]
    again = btf.load(KERNEL_BTF)
    assert again.raw == spec.raw
    assert {p.name for p in (xdg / "btf-index").iterdir()} == now
    assert cache.stats["walks"] == walks


def test_older_formats_and_crashed_writes_are_stale(xdg: Path, tmp_path: Path) -> None:
    f = tmp_path / "a.btf"
    f.write_bytes(_raw("btf_shapes.bpf.o"))
    btf.load(f)
    d = xdg / "btf-index"
    (d / "e9d-5407be-bd6b605290ae1b52.idx").write_bytes(b"CBIX\x02l" + bytes(1200))
    young = d / ".tmp-x.idx-1-00000000"
    young.write_bytes(b"being written")
    old = d / ".tmp-y.idx-2-00000000"
    old.write_bytes(b"a crashed writer's")
    _age(old, cache.TEMP_AGE + 60)
    stale = {os.path.basename(e.path): e.stale for e in cache.scan() if e.stale}
    assert stale == {"e9d-5407be-bd6b605290ae1b52.idx": "older corebpf's format",
                     old.name: "unfinished write"}
    cache.prune()
    assert young.exists() and not old.exists()
    assert len(_entries(xdg, ".idx")) == 1
    assert (xdg / "CACHEDIR.TAG").read_bytes().startswith(
        b"Signature: 8a477f597d28d172789f06886806bc55")


# -- the cap ------------------------------------------------------------------------------------


def _service_name(i: int) -> str:
    return f"{i:064x}.btf"


def test_the_cap_evicts_least_recently_used_first(xdg: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREBPF_CACHE_SIZE", "100K")
    for i in range(8):  # 80 KiB: under the cap
        assert cache.write("service", _service_name(i), bytes(10 << 10))
    d = xdg / "service"
    for i in range(8):  # last used i minutes ago... except #7, the oldest
        _age(d / _service_name(i), 600 + 60 * (i if i != 7 else 100))
    # a hit marks #7 used (its mtime older than TOUCH_AFTER: stamped now)
    assert cache.read("service", _service_name(7)) == bytes(10 << 10)
    assert time.time() - (d / _service_name(7)).stat().st_mtime < 60
    walks = cache.stats["walks"]
    for i in (8, 9):  # 100 KiB: at the cap, not past it
        assert cache.write("service", _service_name(i), bytes(10 << 10))
    assert cache.stats["walks"] == walks
    assert cache.write("service", _service_name(10), bytes(10 << 10))
    assert cache.stats["walks"] == walks + 1  # 110 KiB: a walk evicts down to 90 KiB
    left = sorted(int(p.name[:64], 16) for p in d.iterdir())
    # the least recently used were #6 then #5 (#7 was read, #8-#10 just written)
    assert left == [0, 1, 2, 3, 4, 7, 8, 9, 10]
    assert cache.info().bytes == sum(p.stat().st_size for p in d.iterdir()) == 90 << 10


def test_an_index_and_its_kernel_btf_copy_are_evicted_together(
        xdg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """They are one entry for LRU: the more recently used of the two dates both."""
    f = tmp_path / "a.btf"
    f.write_bytes(_raw("execsnoop.bpf.o"))
    key = cache.source_key(f, f.stat())
    assert key is not None
    idx, copy = xdg / "btf-index" / (key.stem + ".idx"), xdg / "btf-index" / (key.stem + ".btf")
    assert cache.write("btf-index", idx.name, bytes(8 << 10), ident=key.ident)
    assert cache.write("kernel-btf", copy.name, bytes(20 << 10))

    def services() -> None:
        for i in range(3):
            assert cache.write("service", _service_name(i), bytes(10 << 10))
            _age(xdg / "service" / _service_name(i), 3600)

    services()
    _age(idx, 7200)  # the oldest file, but its copy was used 10 s ago
    _age(copy, 10)
    monkeypatch.setenv("COREBPF_CACHE_SIZE", "40K")  # 58 KiB held
    done = cache.prune()
    assert done is not None and done.entries == {"service": 3}
    assert idx.exists() and copy.exists()
    monkeypatch.delenv("COREBPF_CACHE_SIZE")
    services()
    _age(copy, 7200)  # now both are older than every answer
    monkeypatch.setenv("COREBPF_CACHE_SIZE", "40K")
    done = cache.prune()
    assert done is not None and done.entries == {"btf-index": 1, "kernel-btf": 1}
    assert len(list((xdg / "service").iterdir())) == 3


def test_entries_larger_than_the_cap_are_not_kept(xdg: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COREBPF_CACHE_SIZE", "4K")
    assert not cache.write("service", _service_name(1), bytes(5 << 10))
    assert cache.write("service", _service_name(2), bytes(3 << 10))
    monkeypatch.setenv("COREBPF_CACHE_SIZE", "0")  # no cap
    assert cache.write("service", _service_name(3), bytes(1 << 20))


def test_writes_walk_the_cache_now_and_then(xdg: Path) -> None:
    """Amortised: the first write measures (no counter yet), then one walk per
    WALK_EVERY writes."""
    walks = cache.stats["walks"]
    n = 3 * cache.WALK_EVERY + 5
    for i in range(n):
        assert cache.write("service", _service_name(i), b"x" * 100)
    assert cache.stats["walks"] - walks == 1 + (n - 1) // cache.WALK_EVERY
    total, writes = (int(x) for x in (xdg / ".usage").read_text().split())
    assert total == n * 100 and writes == (n - 1) % cache.WALK_EVERY


def test_a_cache_hit_walks_nothing(xdg: Path, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path, counted: a hit lists no directory, takes no lock, writes nothing."""
    f = tmp_path / "a.btf"
    f.write_bytes(_raw("core_kinds.bpf.o"))
    btf.load(f)  # the miss: indexes, writes, walks once (a new cache)
    calls: dict[str, int] = {}

    def counting(name: str, real: object) -> object:
        def wrapper(*a: object, **kw: object) -> object:
            calls[name] = calls.get(name, 0) + 1
            return real(*a, **kw)  # type: ignore[operator]
        return wrapper

    for mod, name in ((os, "scandir"), (os, "listdir"), (os, "walk"), (os, "replace"),
                      (os, "unlink"), (fcntl, "flock")):
        monkeypatch.setattr(mod, name, counting(name, getattr(mod, name)))
    stats = dict(cache.stats)
    for _ in range(5):
        assert btf.load(f)._by_name is not None
    assert calls == {}
    assert cache.stats["walks"] == stats["walks"] and cache.stats["writes"] == stats["writes"]
    assert cache.stats["hits"] == stats["hits"] + 5


# -- the BTF service's answers --------------------------------------------------------------


def test_service_answers_are_counted_and_capped(xdg: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Answers of a real `corebpf serve` (an archive of three small kernels) are entries of
    kind service: counted by info, evicted least recently used first under the cap; the
    server's own store beside them is reported and never touched."""
    from corebpf.archive.service import ServiceClient
    from tests.archive.serve import btfhub_archive, serve

    raws = {f"6.{i}.0-corebpf": _raw(name) for i, name in enumerate(SMALL_OBJECTS)}
    archive = tmp_path / "archive"
    for rel, raw in raws.items():
        btfhub_archive(archive, raw, release=rel)
    # a server whose store is the default one beside the client's answers
    server_store = xdg / "service"
    xdg.mkdir(parents=True)  # (its log goes beside its store: an "other" file)
    with serve(archive, server_store) as url:
        client = ServiceClient(url)
        for rel in raws:
            got = client.fetch(("debian", "12", "x86_64", rel))
            assert got.btf == raws[rel] and got.origin == "network"
    import json

    info = {k.kind: k for k in cache.info().kinds}
    answers = [p for p in server_store.iterdir() if p.name.endswith(".btf")]
    assert info["service"].entries == 3 == len(answers)
    assert info["service"].bytes == sum(p.stat().st_size for p in answers)
    assert info["serve"].managed is False and info["serve"].entries > 0

    def release(p: Path) -> str:  # the answer's kernel, from its header line
        meta = json.loads(p.read_bytes().split(b"\n")[1])
        return str(json.loads(meta["ident"])[2][3])  # [url, route, key, objects]

    answers.sort(key=lambda p: list(raws).index(release(p)))  # in fetch order
    theirs = sorted(str(p) for p in server_store.rglob("*") if p not in answers)
    for i, p in enumerate(answers):  # the first fetched is the least recently used
        _age(p, 3600 - 60 * i)
    sizes = [p.stat().st_size for p in answers]
    assert sizes[0] > sum(sizes) * (1 - cache.LOW_WATER)  # evicting it alone is enough
    monkeypatch.setenv("COREBPF_CACHE_SIZE", str(sum(sizes) - 1))
    done = cache.prune()
    assert done is not None and done.entries == {"service": 1}
    assert [p.exists() for p in answers] == [False, True, True]
    assert sorted(str(p) for p in server_store.rglob("*") if p not in answers) == theirs
    assert ServiceClient(url).fetch(  # the server is gone: the cached copy answers
        ("debian", "12", "x86_64", release(answers[2]))).origin == "stale"
    cache.clear()
    assert sorted(str(p) for p in server_store.rglob("*")) == theirs


# -- settings ---------------------------------------------------------------------------------


def test_settings(xdg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache.root() == str(xdg) and cache.max_size() == cache.DEFAULT_MAX_SIZE == 256 << 20
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # ignored, as XDG says
    assert cache.root() == os.path.join(os.path.expanduser("~"), ".cache", "corebpf")
    monkeypatch.setenv("COREBPF_CACHE_DIR", str(tmp_path / "own"))
    assert cache.root() == str(tmp_path / "own")
    f = tmp_path / "a.btf"
    f.write_bytes(_raw("btf_shapes.bpf.o"))
    btf.load(f)
    assert _entries(tmp_path / "own", ".idx")
    for text, value in (("268435456", 256 << 20), ("256M", 256 << 20), ("256MiB", 256 << 20),
                        ("1g", 1 << 30), ("64 KB", 64 << 10), ("0", 0), ("10b", 10)):
        assert cache.parse_size(text) == value
    for bad in ("", "-1", "1.5G", "lots", "12X", "iB"):
        with pytest.raises(cache.CacheError, match="is not a size"):
            cache.parse_size(bad)
    monkeypatch.setenv("COREBPF_CACHE_SIZE", "big")
    with pytest.raises(cache.CacheError, match=r"COREBPF_CACHE_SIZE='big' is not a size"):
        cache.max_size()


def test_no_cache(xdg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "a.btf"
    f.write_bytes(_raw("btf_shapes.bpf.o"))
    for off in ("1", "yes"):
        monkeypatch.setenv("COREBPF_NO_CACHE", off)
        assert not cache.enabled()
        btf.load(f)
        assert not xdg.exists()
    monkeypatch.setenv("COREBPF_NO_CACHE", "0")
    assert cache.enabled()


# -- hits through mmap -------------------------------------------------------------------------


def _sample(spec: btf.Spec) -> list[str]:
    """Types spread over the spec, and one name lookup through its index."""
    ids = list(range(1, spec.type_count, max(1, spec.type_count // 400)))
    return [repr(spec.type(i)) for i in ids] + [repr(spec.find_by_name(
        spec.type(ids[-1]).name))]


def _overwrite(entry: Path) -> None:
    """Another process's write: a whole new file renamed over the entry (same size, other
    bytes), then the cache cleared (unlinked)."""
    cache.write_file(str(entry), [bytes(255 - b for b in entry.read_bytes())])
    cache.clear()
    assert not entry.exists()


def test_a_mapped_index_outlives_its_entry(xdg: Path, tmp_path: Path) -> None:
    """A hit maps the index instead of reading it: a spec built on it reads correctly after
    the entry is replaced and removed (the mapping holds the old file)."""
    f = tmp_path / "a.btf"
    f.write_bytes(_raw("core_kinds.bpf.o"))
    want = _sample(btf.load(f, index_cache=False))
    btf.load(f)  # the miss writes the index
    spec = btf.load(f)
    assert isinstance(spec.offsets, memoryview) and spec._by_name is not None
    [entry] = _entries(xdg, ".idx")
    _overwrite(entry)
    assert _sample(spec) == want
    assert spec.raw == f.read_bytes()


@pytest.mark.skipif(not KERNEL_BTF.exists(), reason="no kernel BTF (/sys/kernel/btf/vmlinux)")
def test_a_mapped_kernel_copy_outlives_its_entry(xdg: Path) -> None:
    """The kernel's BTF copy is mapped too; replaced and removed while a spec uses it,
    the spec reads on, the same as one parsed without the cache."""
    plain = btf.load(KERNEL_BTF, index_cache=False)
    want = _sample(plain)
    btf.load(KERNEL_BTF)  # the miss writes the copy and the index
    spec = btf.load(KERNEL_BTF)
    assert isinstance(spec._data, memoryview) and isinstance(spec.offsets, memoryview)
    [copy] = _entries(xdg, ".btf")
    _overwrite(copy)
    assert _sample(spec) == want
    assert spec.find_by_name("task_struct") == plain.find_by_name("task_struct")
    assert isinstance(spec.raw, bytes) and spec.raw == plain.raw


def test_no_cache_reads_into_memory(xdg: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """COREBPF_NO_CACHE: nothing mapped, nothing written, the file read as it is."""
    f = tmp_path / "a.btf"
    f.write_bytes(_raw("core_kinds.bpf.o"))
    btf.load(f)
    monkeypatch.setenv("COREBPF_NO_CACHE", "1")
    for path in (f, KERNEL_BTF) if KERNEL_BTF.exists() else (f,):
        spec = btf.load(path)
        assert isinstance(spec._data, bytes) and not isinstance(spec.offsets, memoryview)
    assert _entries(xdg, ".btf") == []


# -- concurrency ------------------------------------------------------------------------------

_WORKER = r"""
import os, sys, time
import corebpf.btf as btf
from corebpf import cache
me, files = int(sys.argv[1]), sys.argv[2:]
for i in range(80):
    cache.write("service", f"{(me * 1000 + i) % 24:064x}.btf", os.urandom(3000 + 100 * me))
    f = files[(me + i) % len(files)]
    if i % 3 == me % 3:
        os.utime(f, ns=(0, time.time_ns() + i))   # a new identity: replaces the last
    btf.load(f)
    if i % 10 == me:
        cache.prune()
    if me == 0 and i % 13 == 12:
        cache.clear(["service"], stale_only=i % 2 == 0)
    cache.info()
print(cache.stats["walks"])
"""


def test_concurrent_writers_and_pruners(xdg: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Four processes writing, replacing, pruning and clearing the same small cache at
    once: none fails, and the cache ends whole and under its cap."""
    files = []
    for name in SMALL_OBJECTS:
        f = tmp_path / f"{name}.btf"
        f.write_bytes(_raw(name))
        files.append(str(f))
    env = dict(os.environ, COREBPF_CACHE_SIZE="48K", PYTHONDONTWRITEBYTECODE="1")
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, str(me), *files], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for me in range(4)]
    walks = 0
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and err == "", err
        walks += int(out)
    assert walks >= 4  # they did prune (a walk that finds another one going is skipped)
    monkeypatch.setenv("COREBPF_CACHE_SIZE", "48K")
    cache.prune()
    info = cache.info()
    assert info.bytes <= 48 << 10 and info.stale_entries == 0
    assert not [p for p in (xdg / "btf-index").iterdir() if p.name.startswith(".tmp-")]
    for name in files:
        assert btf.load(name).find("int")



def test_the_servers_default_store_is_its_own_directory(xdg: Path) -> None:
    """`corebpf serve`'s default --cache is serve/, apart from the client's answers
    (service/): reported by info as not managed, never removed by clear."""
    from corebpf.service.config import default_cache_dir

    assert default_cache_dir() == str(xdg / "serve")
    store = xdg / "serve"
    (store / "results").mkdir(parents=True)
    (store / "results" / "x.btf").write_bytes(bytes(100))
    info = {k.kind: k for k in cache.info().kinds}
    assert info["serve"].managed is False and info["serve"].entries == 1
    cache.clear()
    assert (store / "results" / "x.btf").exists()
