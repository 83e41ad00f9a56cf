"""Kernel maps against the running kernel: every map type user space can drive, pinning,
batches, per-CPU values, BTF-typed keys and values, mmap'ed arrays, fd hygiene."""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import mmap
import os
import socket
import struct
import tempfile
import uuid
from collections.abc import Iterator

import pytest

import corebpf.btf as btf
from corebpf.btf.codec import CodecError
from corebpf.btf.writer import Builder
from corebpf.errors import Error, LoadError
from corebpf.maps import (
    EXIST,
    NOEXIST,
    Map,
    MapError,
    MapFlags,
    MapKeyError,
    MapType,
    lpm_key,
    possible_cpus,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="BPF maps need root (CAP_BPF)")

NCPU = possible_cpus()
SIGNED = btf.IntEncoding.SIGNED


@pytest.fixture
def pin_dir() -> Iterator[str]:
    """A fresh directory on bpffs (mounting /sys/fs/bpf if nothing is there)."""
    from corebpf.sys.fs import ensure_bpffs

    root = ensure_bpffs()
    path = os.path.join(root, f"corebpf_test_{os.getpid()}_{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        yield path
    finally:
        for name in os.listdir(path):
            os.unlink(os.path.join(path, name))
        os.rmdir(path)


def u32(n: int) -> bytes:
    return struct.pack("=I", n)


def u64(n: int) -> bytes:
    return struct.pack("=Q", n)


def typed_btf() -> tuple[btf.Spec, dict[str, int]]:
    """int, struct key { u32 ip; u16 port; u16 proto }, struct val { u64 packets;
    char comm[16]; int state:4; _Bool seen:1; }"""
    b = Builder()
    ids: dict[str, int] = {}
    ids["int"] = b.add(btf.Int("int", 4, SIGNED, 0, 32))
    u32_ = b.add(btf.Int("unsigned int", 4, 0, 0, 32))
    u16 = b.add(btf.Int("unsigned short", 2, 0, 0, 16))
    u64_ = b.add(btf.Int("unsigned long long", 8, 0, 0, 64))
    ch = b.add(btf.Int("char", 1, SIGNED, 0, 8))
    boolean = b.add(btf.Int("_Bool", 1, btf.IntEncoding.BOOL, 0, 8))
    comm = b.add(btf.Array(ch, u32_, 16))
    ids["key"] = b.add(btf.Struct("key", 8, [btf.Member("ip", u32_, 0),
                                            btf.Member("port", u16, 32),
                                            btf.Member("proto", u16, 48)]))
    ids["val"] = b.add(btf.Struct("val", 32, [
        btf.Member("packets", u64_, 0), btf.Member("comm", comm, 64),
        btf.Member("state", ids["int"], 192, 4), btf.Member("seen", boolean, 196, 1)],
        bitfield_encoding=True))
    ids["u64"] = u64_
    return btf.from_bytes(b.encode()), ids


# -- hash and array ---------------------------------------------------------------------------


def test_hash_elements() -> None:
    with Map.create(MapType.HASH, 4, 8, 16, name="t_hash") as m:
        info = m.info()
        assert (info.type, info.key_size, info.value_size, info.max_entries, info.name) == \
            (MapType.HASH, 4, 8, 16, "t_hash")
        assert info.id == m.id > 0 and m.flags == 0
        m.update(1, 10)  # ints are native-endian, sized to the map
        m[2] = u64(20)
        m.update(u32(3), ctypes.c_uint64(30))  # ctypes instances are their bytes
        assert m.lookup(1) == u64(10) and m[2] == u64(20) and m.lookup(u32(3)) == u64(30)
        assert sorted(m.keys()) == [u32(1), u32(2), u32(3)]
        assert dict(m.items()) == {u32(i): u64(10 * i) for i in (1, 2, 3)}
        assert 1 in m and 4 not in m and m.get(4, "none") == "none"
        with pytest.raises(MapKeyError) as exc:
            m.lookup(4)
        assert isinstance(exc.value, KeyError) and isinstance(exc.value, Error)
        assert exc.value.errno == errno.ENOENT and "lookup: 4 not found" in str(exc.value)
        with pytest.raises(MapError, match="the key exists") as ex2:
            m.update(1, 11, NOEXIST)
        assert ex2.value.errno == errno.EEXIST
        with pytest.raises(MapKeyError):
            m.update(9, 11, EXIST)
        assert m.lookup_and_delete(2) == u64(20) and 2 not in m
        del m[1]
        with pytest.raises(KeyError):
            m.delete(1)
        with pytest.raises(CodecError, match="5 bytes for a 4-byte key"):
            m.lookup(b"12345")
        with pytest.raises(CodecError, match="cannot encode dict"):
            m.update(1, {"x": 1})
        for i in range(16 - len(list(m))):
            m.update(100 + i, 0)
        with pytest.raises(MapError, match="the map is full") as full:
            m.update(99, 0)
        assert full.value.errno == errno.E2BIG
    assert m.closed
    with pytest.raises(MapError, match="closed"):
        m.lookup(1)


def test_array_and_lru() -> None:
    with Map.create(MapType.ARRAY, 4, 4, 4) as a:
        assert list(a.keys()) == [u32(i) for i in range(4)]  # every slot always exists
        a[2] = 7
        assert a[2] == u32(7) and a[0] == bytes(4)
        with pytest.raises(MapError) as exc:
            a.delete(0)
        assert exc.value.errno == errno.EINVAL
        with pytest.raises(MapError) as exc:
            a[4] = 1
        assert exc.value.errno == errno.E2BIG
    with Map.create(MapType.LRU_HASH, 4, 4, 64) as lru:
        for i in range(1000):  # never full: the least recently used go
            lru[i] = i
        assert 999 in lru and len(list(lru.keys())) <= 64 + NCPU * 64


def test_possible_cpus_and_percpu_maps() -> None:
    with open("/sys/devices/system/cpu/possible") as f:
        last = int(f.read().strip().replace(",", "-").split("-")[-1])
    assert NCPU == last + 1
    with Map.create(MapType.PERCPU_ARRAY, 4, 4, 2) as a:  # 4-byte values, 8-byte slots
        assert a.ncpus == NCPU and a.lookup(0) == [bytes(4)] * NCPU
        a.update(0, [u32(c + 1) for c in range(NCPU)])
        assert a.lookup(0) == [u32(c + 1) for c in range(NCPU)]
        a.update(1, 5)  # one value for every CPU
        assert a[1] == [u32(5)] * NCPU
        assert dict(a.items()) == {u32(0): [u32(c + 1) for c in range(NCPU)],
                                   u32(1): [u32(5)] * NCPU}
        assert len(a.encode_value(1)) == 8 * NCPU
    with Map.create(MapType.PERCPU_HASH, 4, 12, 100, value_ctype=ctypes.c_uint32 * 3) as h:
        h.update(1, [(ctypes.c_uint32 * 3)(c, c, c) for c in range(NCPU)])
        got = h.lookup(1)
        assert [list(v) for v in got] == [[c, c, c] for c in range(NCPU)]
        assert h.update_batch({i: (ctypes.c_uint32 * 3)(i, 0, 0) for i in range(2, 50)}) == 48
        rows = dict(h.lookup_batch(chunk=7))
        assert len(rows) == 49 and [v[0] for v in rows[u32(17)]] == [17] * NCPU
        assert [list(v) for v in h.lookup_and_delete(1)] == [[c, c, c] for c in range(NCPU)]


def test_lpm_trie() -> None:
    flags = MapFlags.NO_PREALLOC
    with Map.create(MapType.LPM_TRIE, 8, 4, 16, flags) as t:
        def key(net: str) -> bytes:
            n = ipaddress.ip_network(net)
            return lpm_key(n.prefixlen, n.network_address.packed)

        t[key("10.0.0.0/8")] = 1
        t[key("10.1.0.0/16")] = 2
        assert t[key("10.1.2.3/32")] == u32(2)  # the longest match wins
        assert t[key("10.200.0.1/32")] == u32(1)
        assert key("11.0.0.1/32") not in t
        assert sorted(t.keys()) == sorted([key("10.0.0.0/8"), key("10.1.0.0/16")])
        assert t.update_batch([(key("192.168.0.0/16"), 3), (key("172.16.0.0/12"), 4)]) == 2
        assert len(dict(t.items())) == 4
        assert t.delete_batch([key("192.168.0.0/16")]) == 1
        # tries have no LOOKUP_AND_DELETE (batch or element): lookup, then delete
        assert sorted(v for _, v in t.lookup_batch(delete=True)) == [u32(1), u32(2), u32(4)]
        assert list(t.keys()) == []
        assert t.update_batch([(key("10.0.0.0/8"), 5)]) == 1  # the other batches still work
        assert dict(t.lookup_batch()) == {key("10.0.0.0/8"): u32(5)}
    with Map.create(MapType.QUEUE, 0, 4, 4) as q:  # no batches at all: one by one
        q.push(1)
        with pytest.raises(CodecError, match="has no keys"):
            q.update_batch([(0, 1)])
        assert q.pop() == u32(1)


def test_queue_stack_bloom() -> None:
    with Map.create(MapType.QUEUE, 0, 4, 3) as q:
        for i in (1, 2, 3):
            q.push(i)
        with pytest.raises(MapError) as exc:
            q.push(4)
        assert exc.value.errno == errno.E2BIG
        q.push(4, EXIST)  # a full queue drops its oldest
        assert q.peek() == u32(2)
        assert [q.pop() for _ in range(3)] == [u32(2), u32(3), u32(4)]
        with pytest.raises(MapKeyError, match="the map is empty"):
            q.pop()
        with pytest.raises(MapError, match="no keys"):
            list(q.keys())
    with Map.create(MapType.STACK, 0, 8, 8) as s:
        s.push(1)
        s.push(2)
        assert s.peek() == u64(2) and s.pop() == u64(2) and s.pop() == u64(1)
    with Map.create(MapType.BLOOM_FILTER, 0, 4, 1000, map_extra=3) as b:
        assert b.info().map_extra == 3
        for i in range(0, 200, 2):
            b.push(i)
        assert all(i in b for i in range(0, 200, 2))  # never a false negative
        misses = sum(not b.peek(i) for i in range(1, 200, 2))
        assert misses > 80  # false positives are rare at this load
        with pytest.raises(MapError):
            b.lookup_and_delete()


def test_create_only_types() -> None:
    page = mmap.PAGESIZE
    with Map.create(MapType.RINGBUF, 0, 0, 4 * page) as rb:
        assert rb.info().max_entries == 4 * page
    with Map.create(MapType.PERF_EVENT_ARRAY, 4, 4) as pe:  # one slot per possible CPU
        assert pe.max_entries == NCPU
    with Map.create(MapType.STACK_TRACE, 4, 8 * 127, 64) as stk:
        assert stk.info().value_size == 8 * 127
    with Map.create(MapType.PROG_ARRAY, 4, 4, 8) as pa:
        assert pa.type == MapType.PROG_ARRAY
        assert list(pa.items()) == []  # no programs in it
    with pytest.raises(LoadError, match=r"RINGBUF.*Invalid argument") as exc:
        Map.create(MapType.RINGBUF, 0, 0, 3 * page + 1)
    assert exc.value.errno == errno.EINVAL


@pytest.mark.parametrize("outer_type", [MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS])
def test_maps_of_maps(outer_type: MapType) -> None:
    with Map.create(MapType.ARRAY, 4, 8, 1, name="inner_a") as a, \
            Map.create(MapType.ARRAY, 4, 8, 1, name="inner_b") as b, \
            Map.create(outer_type, 4, 4, 4, inner_map=a, name="outer") as outer:
        outer.update(0, a)  # a Map, an FD or an int fd
        outer.update(1, b.fd)
        outer.update(2, b.fd.fd)
        assert outer[0] == a.id and outer[1] == b.id and outer[2] == b.id  # ids come back
        assert dict(outer.items()) == {u32(0): a.id, u32(1): b.id, u32(2): b.id}
        del outer[1]
        assert 1 not in outer
        with Map.create(MapType.HASH, 4, 8, 1) as wrong, pytest.raises(MapError) as exc:
            outer.update(3, wrong)  # not like the inner map
        assert exc.value.errno == errno.EINVAL


# -- BTF-typed maps -----------------------------------------------------------------------


def test_btf_typed_hash_round_trip_and_pinned_reopen(pin_dir: str) -> None:
    spec, ids = typed_btf()
    key = {"ip": 0x0A000001, "port": 443, "proto": 6}
    val = {"packets": 12, "comm": b"curl".ljust(16, b"\0"), "state": -3, "seen": True}
    with Map.create(MapType.HASH, max_entries=8, name="flows", btf=spec, key_type_id=ids["key"],
                    value_type_id=ids["val"]) as m:
        assert (m.key_size, m.value_size) == (8, 32)  # from the types
        info = m.info()
        assert info.btf_id and (info.btf_key_type_id, info.btf_value_type_id) == \
            (ids["key"], ids["val"])
        m.update(key, val)
        assert m.lookup(key) == val
        assert list(m.items()) == [(key, val)]
        m.update({"ip": 1}, {"comm": "sh"})  # C rules: the rest is zero
        assert m[{"ip": 1, "port": 0, "proto": 0}]["comm"] == b"sh" + bytes(14)
        with pytest.raises(CodecError, match=r"^val\.comm: 17 bytes for a 16-byte array"):
            m.update(key, {"comm": b"x" * 17})
        with pytest.raises(CodecError, match=r"^key\.port: 65536 does not fit"):
            m.lookup({"port": 65536})
        m.pin(os.path.join(pin_dir, "flows"))
        # another process would see raw bytes unless it asks the kernel for the map's BTF
        with Map.from_pin(os.path.join(pin_dir, "flows")) as again:
            assert again.id == m.id and again.pinned is None
            assert again.lookup(key) == val  # decoded with the BTF fetched from the kernel
        with Map.from_pin(os.path.join(pin_dir, "flows"), load_btf=False) as raw:
            assert raw.lookup(spec_encode(spec, ids["key"], key)) == \
                spec_encode(spec, ids["val"], val)
        m.unpin()
        assert not os.path.exists(os.path.join(pin_dir, "flows"))


def spec_encode(spec: btf.Spec, tid: int, value: object) -> bytes:
    from corebpf.btf.codec import encode

    return encode(spec, tid, value)


def test_ctypes_keys_and_values() -> None:
    class Key(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint32), ("b", ctypes.c_uint32)]

    class Val(ctypes.Structure):
        _fields_ = [("x", ctypes.c_int64)]

    with Map.create(MapType.HASH, max_entries=4, key_ctype=Key, value_ctype=Val) as m:
        assert (m.key_size, m.value_size) == (8, 8)
        m.update(Key(1, 2), Val(-5))
        got = m.lookup(Key(1, 2))
        assert isinstance(got, Val) and got.x == -5
        (k,) = m.keys()
        assert isinstance(k, Key) and (k.a, k.b) == (1, 2)
        with pytest.raises(CodecError, match="pass a Val instance"):
            m.update(Key(1, 2), {"x": 1})


def _storage_btf() -> tuple[btf.Spec, int, int]:
    b = Builder()
    int_ = b.add(btf.Int("int", 4, SIGNED, 0, 32))
    u64_ = b.add(btf.Int("unsigned long long", 8, 0, 0, 64))
    val = b.add(btf.Struct("storage", 16, [btf.Member("count", u64_, 0),
                                           btf.Member("tag", int_, 64)]))
    return btf.from_bytes(b.encode()), int_, val


@pytest.mark.parametrize("map_type", [MapType.TASK_STORAGE, MapType.SK_STORAGE,
                                      MapType.INODE_STORAGE])
def test_local_storage(map_type: MapType) -> None:
    """Storage maps are keyed by an fd of their owner: a pidfd, a socket, a file."""
    spec, int_, val = _storage_btf()
    with pytest.raises(LoadError, match="storage maps need BPF_F_NO_PREALLOC"):
        Map.create(map_type, btf=spec, key_type_id=int_, value_type_id=val)
    with Map.create(map_type, flags=MapFlags.NO_PREALLOC, btf=spec, key_type_id=int_,
                    value_type_id=val) as m:
        assert (m.key_size, m.value_size, m.max_entries) == (4, 16, 0)
        if map_type == MapType.TASK_STORAGE:
            owner = os.pidfd_open(os.getpid())
        elif map_type == MapType.SK_STORAGE:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            owner = os.dup(sock.fileno())
            sock.close()
        else:
            tmp = tempfile.NamedTemporaryFile()
            owner = os.dup(tmp.fileno())
            tmp.close()
        try:
            assert owner not in m
            m.update(owner, {"count": 3, "tag": -1})
            assert m.lookup(owner) == {"count": 3, "tag": -1}
            m.delete(owner)
            assert owner not in m
        finally:
            os.close(owner)


# -- pinning, fds ---------------------------------------------------------------------------


def test_pin_reopen_unpin(pin_dir: str) -> None:
    path = os.path.join(pin_dir, "counts")
    with Map.create(MapType.ARRAY, 4, 8, 4, name="counts") as m:
        m.pin(path)
        assert m.pinned == path and os.path.exists(path)
        with pytest.raises(MapError, match="pin at") as exc:
            m.pin(path)
        assert exc.value.errno == errno.EEXIST
        m[1] = 42
        mid = m.id
    # the pin keeps the map alive after its last fd is gone
    with Map.from_pin(path) as again:
        assert again.id == mid and again[1] == u64(42) and again.name == "counts"
        again[2] = 7
        with Map.from_fd(again.fd.fd) as dup:  # a duplicate fd: closing it leaves ours open
            assert dup.id == mid and dup.fd.fd != again.fd.fd
        assert again[2] == u64(7)
        again.pinned = path
        again.unpin()
    assert not os.path.exists(path)
    with pytest.raises(MapError, match="cannot open pinned map") as exc:
        Map.from_pin(path)
    assert exc.value.errno == errno.ENOENT
    with pytest.raises(MapError, match="not a map"):
        with open("/dev/null") as f:
            Map.from_fd(f.fileno())


def test_close_releases_fds() -> None:
    before = set(os.listdir("/proc/self/fd"))
    maps = [Map.create(MapType.HASH, 4, 4, 4) for _ in range(20)]
    with Map.create(MapType.ARRAY, 4, 8, 2, MapFlags.MMAPABLE) as a:
        view = a.mmap()
        view.release()
    spec, ids = typed_btf()
    with Map.create(MapType.HASH, max_entries=2, btf=spec, key_type_id=ids["key"],
                    value_type_id=ids["val"]):
        pass  # the BTF fd loaded for creation is closed too
    assert len(set(os.listdir("/proc/self/fd")) - before) >= 20
    for m in maps:
        m.close()
        m.close()  # twice is fine
    assert set(os.listdir("/proc/self/fd")) == before


# -- batches ---------------------------------------------------------------------------------


def test_batches_on_10000_entries() -> None:
    n = 10_000
    with Map.create(MapType.HASH, 4, 8, n) as m:
        assert m.update_batch((i, i * 3) for i in range(n)) == n
        assert m[9_999] == u64(29_997)
        seen = dict(m.lookup_batch())
        assert len(seen) == n and seen[u32(1234)] == u64(3702)
        assert sum(1 for _ in m.lookup_batch(chunk=3)) == n  # grows past crowded buckets
        assert m.delete_batch(range(0, n, 2)) == n // 2
        with pytest.raises(MapKeyError, match="delete batch: 0 not found"):
            m.delete_batch([1, 0, 3])  # 1 went, 0 stopped it
        rest = dict(m.lookup_batch(delete=True))
        assert len(rest) == n // 2 - 1 and u32(3) in rest
        assert list(m.keys()) == []
        with pytest.raises(MapError, match="the key exists"):
            m.update_batch([(1, 1), (1, 1)], NOEXIST)
    with Map.create(MapType.ARRAY, 4, 4, 100) as a:
        a.update_batch({i: i for i in range(100)})
        assert dict(a.items()) == {u32(i): u32(i) for i in range(100)}


# -- freeze and mmap --------------------------------------------------------------------------


def test_freeze() -> None:
    with Map.create(MapType.HASH, 4, 4, 4) as m:
        m[1] = 1
        m.freeze()
        with pytest.raises(MapError) as exc:
            m[2] = 2
        assert exc.value.errno == errno.EPERM
        assert m[1] == u32(1)


def test_mmap_global_data() -> None:
    """A .bss-like array: one DATASEC value, read through the mapping with the codec."""
    b = Builder()
    int_ = b.add(btf.Int("int", 4, SIGNED, 0, 32))
    u64_ = b.add(btf.Int("unsigned long long", 8, 0, 0, 64))
    v1 = b.add(btf.Var("counter", u64_, btf.VarLinkage.GLOBAL))
    v2 = b.add(btf.Var("level", int_, btf.VarLinkage.GLOBAL))
    bss = b.add(btf.Datasec(".bss", 16, [btf.VarSecinfo(v1, 0, 8), btf.VarSecinfo(v2, 8, 4)]))
    spec = btf.from_bytes(b.encode())
    with Map.create(MapType.ARRAY, 4, 16, 1, MapFlags.MMAPABLE, name=".bss", btf=spec,
                    key_type_id=0, value_type_id=bss) as m:
        view = m.mmap()
        assert len(view) == mmap.PAGESIZE and not view.readonly
        m[0] = {"counter": 5, "level": -2}  # through bpf(2) ...
        assert m.value_codec is not None
        assert m.value_codec.decode(view) == {"counter": 5, "level": -2}  # ... seen mapped
        m.value_codec.encode_into(view, 0, {"counter": 6})
        assert m[0] == {"counter": 6, "level": -2}
        view.release()
        m.freeze()
        ro = m.mmap()
        assert ro.readonly and struct.unpack_from("=Q", ro)[0] == 6
        ro.release()
        with pytest.raises(MapError) as exc:
            m.mmap(writable=True)
        assert exc.value.errno == errno.EPERM
    with Map.create(MapType.ARRAY, 4, 4, 4) as plain, pytest.raises(MapError, match="MMAPABLE"):
        plain.mmap()


@pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"),
                    reason="loading the object needs a kernel with BTF")
def test_loader_global_data_decodes_through_the_kernels_btf() -> None:
    """A map another component created: its BTF comes back from the kernel, so .data
    and .bss read as dicts of their variables, through bpf(2) and through mmap."""
    from corebpf.loader import load
    from tests.conftest import PROGS

    with load(PROGS / "btf_shapes.bpf.o") as coll:
        with Map.from_fd(coll.maps["btf_shap.data"].fd.fd) as data:
            assert data.btf is not None and data.flags & MapFlags.MMAPABLE
            assert data[0] == {"g_counter": 1}
            view = data.mmap()
            assert data.value_codec is not None
            data.value_codec.encode_into(view, 0, {"g_counter": 41})
            assert data.lookup(0) == {"g_counter": 41}
            view.release()
        with Map.from_fd(coll.maps["btf_shap.bss"].fd.fd, enum_names=True) as bss:
            value = bss[0]
            assert value["g_static"] == 0 and value["g_uses"]["bits"] == {
                "a": 0, "b": 0, "c": 0, "d": 0, "e": 0}
            assert value["g_uses"]["col"] == "RED"  # enum_names: zero is RED
