"""The lazy reader on real and handmade BTF."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
import corebpf.btf.types as bt
from corebpf.btf.writer import Builder
from corebpf.errors import BTFError, NotFoundError
from tests.conftest import DATA, KERNEL_BTF, PROGS, corpus_files, debian_files


def test_kernel_lookups(kernel_spec: btf.Spec) -> None:
    s = kernel_spec
    assert s.type_count > 10_000
    tid = s.find("task_struct", btf.Kind.STRUCT)
    t = s.type(tid)
    assert isinstance(t, btf.Struct)
    assert s.name(tid) == "task_struct" and s.kind(tid) == btf.Kind.STRUCT
    assert s.size_of(tid) == t.size
    assert s.align_of(tid) in (8, 16, 32, 64)
    pid = next(m for m in t.members if m.name == "pid")
    assert s.size_of(pid.type) == 4
    assert s.type(s.resolve(pid.type)).name == "int"
    assert tid in s.find_by_name("task_struct")
    assert s.find("void") == 0
    assert s.pointer_size == 8
    with pytest.raises(NotFoundError, match="no STRUCT type named 'no_such_struct_xyz'"):
        s.find("no_such_struct_xyz", btf.Kind.STRUCT)


def test_name_lookup_agrees_with_full_index(kernel_spec: btf.Spec) -> None:
    fresh = btf.load(KERNEL_BTF, index_cache=False)
    index = fresh.build_name_index()
    for name in ("task_struct", "list_head", "sk_buff", "bpf_map", "u32", "int", "pid_t"):
        assert fresh.find_by_name(name) == kernel_spec.find_by_name(name) == sorted(index[name])


def test_many_lookups_agree_with_full_index(kernel_spec: btf.Spec) -> None:
    """After the first lookup a packed name-offset column answers: same ids, base first."""
    fresh = btf.load(KERNEL_BTF, index_cache=False)
    index = kernel_spec.build_name_index()
    names = sorted(index)[::97]
    assert len(names) > 500
    for name in names:
        assert fresh.find_by_name(name) == sorted(index[name]), name
    assert fresh.find_by_name("no_such_type_anywhere_xyz") == []
    module = DATA / "btf" / "modules" / "6.1.0-56-amd64" / "veth.btf.xz"
    base = btf.load(DATA / "btf" / "6.1.0-56-amd64.btf.xz", index_cache=False)
    split = btf.load(module, base=base, index_cache=False)
    own = {split.name(t) for t in split.ids() if split.name(t)}
    for name in sorted(own):
        assert split.find_by_name(name) == sorted(
            t for t in range(1, split.type_count) if split.name(t) == name), name


def test_pointer_size_is_the_first_long_in_id_order() -> None:
    """libbpf's determine_ptr_size: the first INT named like a long, by id."""
    b = Builder()
    b.add(bt.Int("unsigned int", 4, 0, 0, 32))
    b.add(bt.Int("long unsigned int", 4, 0, 0, 32))  # a 32-bit target
    b.add(bt.Int("long", 8, 1, 0, 64))
    assert btf.from_bytes(b.encode()).pointer_size == 4
    b = Builder()
    b.add(bt.Int("long", 2, 1, 0, 16))  # neither 4 nor 8 bytes: skipped
    b.add(bt.Int("long int", 8, 1, 0, 64))
    assert btf.from_bytes(b.encode()).pointer_size == 8


def test_persisted_index_matches_fresh_one(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    raw = tmp_path / "k.btf"
    raw.write_bytes(btf.load(PROGS / "btf_shapes.bpf.o").raw)
    first = btf.load(raw)
    assert list((tmp_path / "corebpf" / "btf-index").iterdir())
    second = btf.load(raw)
    assert second._by_name is not None
    assert list(first.offsets) == list(second.offsets)
    for name in ("uses", "node", "color", "int"):
        assert first.find_by_name(name) == second.find_by_name(name)
    # a stale entry (the file changed) is ignored
    raw.write_bytes(btf.load(PROGS / "btf_shapes.bpf.o").raw + b"")
    assert btf.load(raw).find("uses") == first.find("uses")


@pytest.mark.skipif(not KERNEL_BTF.exists(), reason="this kernel exposes no BTF in sysfs")
def test_sysfs_btf_copy_beside_the_index(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The kernel's BTF is kept beside its index for this boot and read back from there;
    a copy that disagrees with the kernel's first page is not used."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = btf.load(KERNEL_BTF)
    copies = list((tmp_path / "corebpf" / "btf-index").glob("*.btf"))
    assert len(copies) == 1 and copies[0].read_bytes() == first.raw
    second = btf.load(KERNEL_BTF)
    assert second.raw == first.raw and second._by_name is not None
    bad = bytearray(first.raw)
    bad[100] ^= 0xFF  # in the first page: caught
    copies[0].write_bytes(bytes(bad))
    assert btf.load(KERNEL_BTF).raw == first.raw
    copies[0].write_bytes(first.raw[:-1])  # wrong size: not used
    assert btf.load(KERNEL_BTF).raw == first.raw


@pytest.mark.parametrize("path", [*debian_files(), *corpus_files()], ids=lambda p: p.name)
def test_real_kernels_decode(path) -> None:  # type: ignore[no-untyped-def]
    s = btf.load(path, index_cache=False)
    assert s.type_count > 1000
    ts = s.find("task_struct", btf.Kind.STRUCT)
    assert s.size_of(ts) > 1000
    for tid, t in s.items():
        assert t.kind == s.kind(tid)


def test_both_byte_orders_read_the_same() -> None:
    le = btf.load(PROGS / "btf_shapes.bpf.o")
    be = btf.load(PROGS / "btf_shapes.bpfeb.o")
    assert le.endian == "<" and be.endian == ">"
    assert list(le.items()) == list(be.items())


def test_every_kind_from_clang() -> None:
    s = btf.load(PROGS / "btf_shapes.bpf.o")
    kinds = {s.kind(t) for t in s.ids()}
    want = set(btf.Kind) - {btf.Kind.UNKN}
    assert want <= kinds, want - kinds
    bits = s.type(s.find("bits", btf.Kind.STRUCT))
    assert isinstance(bits, btf.Struct) and bits.bitfield_encoding
    assert [(m.name, m.offset, m.bitfield_size) for m in bits.members] == [
        ("a", 0, 3), ("b", 3, 29), ("c", 32, 2), ("d", 64, 40), ("e", 128, 0)
    ]
    color = s.type(s.find("color", btf.Kind.ENUM))
    assert isinstance(color, btf.Enum) and color.signed
    assert [v.value for v in color.values] == [0, 5, -1]
    sbig = s.type(s.find("sbig", btf.Kind.ENUM64))
    assert isinstance(sbig, btf.Enum64) and [v.value for v in sbig.values] == [
        -0x100000000, 0x100000000
    ]
    big = s.type(s.find("big", btf.Kind.ENUM64))
    assert isinstance(big, btf.Enum64) and big.values[0].value == 0xFFFFFFFF00000000
    assert s.align_of(s.find("packed", btf.Kind.STRUCT)) == 1
    assert s.size_of(s.find("packed", btf.Kind.STRUCT)) == 11
    fwd = s.type(s.find("fwd_union"))
    assert isinstance(fwd, btf.Fwd) and fwd.is_union
    node = s.type(s.find("node", btf.Kind.STRUCT))
    assert isinstance(node, btf.Struct)
    grid = next(m for m in node.members if m.name == "grid")
    assert s.size_of(grid.type) == 48
    tags = [s.type(t) for t in s.ids() if s.kind(t) == btf.Kind.DECL_TAG]
    assert {(t.name, t.component_idx) for t in tags if isinstance(t, btf.DeclTag)} >= {
        ("struct_tag", -1), ("kfunc_field", 0), ("param_tag", 1), ("func_tag", -1)
    }


def test_split_btf_continues_base_ids_and_strings() -> None:
    base = btf.load(PROGS / "btf_shapes.bpf.o")
    b = Builder(base)
    int_id = base.find("int", btf.Kind.INT)
    sid = b.add(btf.Struct("mod_struct", 8, [btf.Member("next", int_id, 0),
                                              btf.Member("fresh_name", int_id, 32)]))
    assert sid == base.type_count
    split = btf.from_bytes(b.encode(), base=base)
    assert split.first_id == base.type_count
    assert split.find("mod_struct") == sid
    assert split.find("uses") == base.find("uses")
    assert split.type(int_id) == base.type(int_id)
    t = split.type(sid)
    assert isinstance(t, btf.Struct) and [m.name for m in t.members] == ["next", "fresh_name"]
    # "next" was reused from the base's string section
    raw = split.raw
    _, _, _, hl, _, _tl, so, sl = struct.unpack_from("<HBBIIIII", raw)
    assert b"next\0" not in raw[hl + so : hl + so + sl]
    assert b"fresh_name\0" in raw[hl + so : hl + so + sl]


def test_header_longer_than_24_bytes_is_accepted() -> None:
    b = Builder()
    b.add(btf.Int("int", 4, btf.IntEncoding.SIGNED, 0, 32))
    raw = b.encode()
    _, ver, flags, _hl, to, tl, so, sl = struct.unpack_from("<HBBIIIII", raw)
    longer = struct.pack("<HBBIIIII", 0xEB9F, ver, flags, 32, to, tl, so, sl) + bytes(8)
    longer += raw[24:]
    s = btf.from_bytes(longer)
    assert s.header_len == 32 and s.find("int") == 1


def test_containers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import gzip
    import io
    import lzma
    import tarfile

    raw = btf.load(PROGS / "btf_shapes.bpf.o").raw
    (tmp_path / "a.btf").write_bytes(raw)
    (tmp_path / "a.btf.xz").write_bytes(lzma.compress(raw))
    (tmp_path / "a.btf.gz").write_bytes(gzip.compress(raw))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        info = tarfile.TarInfo("5.10.0-test.btf")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    (tmp_path / "5.10.0-test.btf.tar.xz").write_bytes(buf.getvalue())
    for name in ("a.btf", "a.btf.xz", "a.btf.gz", "5.10.0-test.btf.tar.xz"):
        s = btf.load(tmp_path / name)
        assert s.raw == raw, name
        assert s.find("uses") > 0


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (b"", "not BTF .starts with nothing.: expected raw BTF"),
        (b"\x00" * 24, "not BTF .starts with 00000000."),
        (struct.pack("<HBBIIIII", 0xEB9F, 2, 0, 24, 0, 0, 0, 1) + b"\0", "version"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 1) + b"\0", "type section"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, 2) + b"\0a", "NUL-terminated"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 1)
         + struct.pack("<III", 0, 25 << 24, 0) + b"\0", "unknown kind 25"),
        (struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 12, 12, 1)
         + struct.pack("<III", 0, (4 << 24) | 100, 0) + b"\0", "vlen 100 needs"),
    ],
)
def test_bad_input_names_the_problem(blob: bytes, match: str) -> None:
    with pytest.raises(BTFError, match=match):
        btf.from_bytes(blob, source="bad.btf")


def test_error_names_file_and_offset() -> None:
    blob = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 24, 24, 1) + struct.pack(
        "<IIIIII", 0, 1 << 24, 4, 32, 0, 99) + b"\0"
    with pytest.raises(BTFError) as e:
        btf.from_bytes(blob, source="bad.btf")
    assert "bad.btf" in str(e.value) and "offset 0x28: type [2]: header truncated" in str(e.value)


def test_bad_string_offset_is_reported_on_decode() -> None:
    blob = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 16, 16, 1) + struct.pack(
        "<IIII", 500, 1 << 24, 4, 32) + b"\0"
    s = btf.from_bytes(blob, source="bad.btf")
    with pytest.raises(BTFError, match=r"type \[1\] INT: .*string offset 500"):
        s.type(1)


def test_cycles_do_not_recurse_forever() -> None:
    b = Builder()
    b.add(btf.Typedef("a", 2))
    b.add(btf.Typedef("b", 1))
    b.add(btf.Struct("s", 4, [btf.Member("self", 3, 0)]))
    s = btf.from_bytes(b.encode())
    with pytest.raises(BTFError, match="cyclic"):
        s.size_of(1)
    with pytest.raises(BTFError, match="cyclic"):
        s.resolve(1)
    with pytest.raises(BTFError, match="cyclic"):
        s.align_of(3)


def test_kernel_file_is_present_here() -> None:
    if not KERNEL_BTF.exists():
        pytest.skip("no kernel BTF on this machine")
    assert btf.kernel().type_count > 0


def test_member_offsets_through_anonymous_members_and_bitfields() -> None:
    s = btf.load(PROGS / "btf_shapes.bpf.o")
    uses = s.find("uses", btf.Kind.STRUCT)
    assert s.member_offset(uses, "ah.y") == (1024 + 32, 0, s.find("int", btf.Kind.INT))
    assert s.member_offset(uses, "bits.d")[:2] == (704 + 64, 40)
    assert s.member_offset(uses, "nd.grid[2]")[0] == 1088 + 320 + 2 * 4 * 32
    with pytest.raises(NotFoundError, match="has no member 'nope'"):
        s.member_offset(uses, "nd.nope")


def test_member_offset_on_kernel(kernel_spec: btf.Spec) -> None:
    ts = kernel_spec.find("task_struct", btf.Kind.STRUCT)
    off, bits, tid = kernel_spec.member_offset(ts, "pid")
    assert off % 8 == 0 and bits == 0 and kernel_spec.size_of(tid) == 4


def test_string_offsets_after_the_table_is_built() -> None:
    """Past a few dozen lookups the string section becomes a table: same answers as the
    scan, repeated strings (which hand-written BTF may hold) included."""
    strings = b"\0a\0task_struct\0pid\0a\0pid\0x___y\0"
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, len(strings))
    spec = btf.from_bytes(hdr + strings)
    names = ["a", "task_struct", "pid", "x___y", "missing", "task", "struct", ""]
    scanned = {n: spec.string_offsets(n) for n in names}
    assert scanned["a"] == [1, 19] and scanned["pid"] == [15, 21]
    for _ in range(60):
        spec.string_offsets("zzz")
    assert spec._str_offsets is not None
    assert {n: spec.string_offsets(n) for n in names} == scanned


def test_prefetched_string_offsets_equal_the_scan() -> None:
    """One regex pass for many names finds what one scan per name finds: repeated strings,
    names that prefix others, a split spec's first string, its base's strings."""
    def raw(strings: bytes) -> bytes:
        return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, len(strings)) + strings

    base_strs = b"\0a\0task_struct\0pid\0a\0pid\0task\0x___y\0"
    split_strs = b"task_struct\0file\0pid\0file_ops\0"
    names = ["a", "task_struct", "pid", "task", "x___y", "file", "file_ops", "missing", ""]
    plain = btf.from_bytes(raw(base_strs))
    scanned = {n: plain.string_offsets(n) for n in names}
    split_plain = btf.Spec(raw(split_strs), base=btf.from_bytes(raw(base_strs)))
    split_scanned = {n: split_plain.string_offsets(n) for n in names}

    fresh = btf.from_bytes(raw(base_strs))
    fresh.prefetch_string_offsets(names)
    assert fresh._str_found
    assert {n: fresh.string_offsets(n) for n in names} == scanned
    split = btf.Spec(raw(split_strs), base=btf.from_bytes(raw(base_strs)))
    split.prefetch_string_offsets(iter(names))
    assert {n: split.string_offsets(n) for n in names} == split_scanned
    assert split_scanned["task_struct"] == [3, len(base_strs)]


def test_prefetch_finds_prefixed_strings() -> None:
    """CO-RE's flavors: the same pass finds "name___x..." strings, in a split spec's
    first string too; names not prefetched answer None (search yourself)."""
    def raw(strings: bytes) -> bytes:
        return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, len(strings)) + strings

    base_strs = b"\0task_struct\0task_struct___v2\0task_struct___a___b\0pid\0file\0x___\0"
    base = btf.from_bytes(raw(base_strs))
    base.prefetch_string_offsets(["task_struct", "pid", "file", "x"], prefix_sep="___")
    assert base.prefixed_string_offsets("task_struct", "___") == [13, 30]
    assert base.prefixed_string_offsets("pid", "___") == []
    assert base.prefixed_string_offsets("x", "___") == [59]
    assert base.prefixed_string_offsets("sock", "___") is None
    assert base.string_offsets("task_struct") == [1]
    split = btf.Spec(raw(b"file___new\0sock\0"), base=base)
    split.prefetch_string_offsets(["file", "sock", "task_struct"], prefix_sep="___")
    assert split.prefixed_string_offsets("file", "___") == [len(base_strs)]
    assert split.string_offsets("sock") == [len(base_strs) + 11]


def test_prefetched_type_ids_equal_the_search(kernel_spec: btf.Spec) -> None:
    """Past a few names the types they name come from one pass over the name column:
    the same ids, in the same order, as one search per name."""
    names = ["task_struct", "file", "path", "dentry", "inode", "sock", "pid", "mm_struct",
             "cred", "qstr", "sk_buff", "int", "nope_not_here"]
    fresh = btf.from_bytes(kernel_spec.raw)
    want = {n: fresh.find_by_name(n) for n in names}
    again = btf.from_bytes(kernel_spec.raw)
    again.prefetch_string_offsets(names, prefix_sep="___")
    assert again._ids_found
    assert {n: again.find_by_name(n) for n in names} == want


def test_names_found_while_indexing_equal_the_search(kernel_spec: btf.Spec) -> None:
    """find_names: the types of known names (and their ___flavors) are listed by the
    indexing pass itself; what they answer equals a plain spec's searches (on this
    kernel, and on CentOS 8's undeduplicated BTF when the corpus is here)."""
    names = ["task_struct", "file", "sock", "mm_struct", "cgroup", "pid_type", "list_head",
             "nope_not_here"]
    old = [btf.load(f, index_cache=False).raw for f in corpus_files() if "el8" in f.name]
    for raw in (kernel_spec.raw, *old[:1]):
        plain = btf.from_bytes(raw)
        found = btf.Spec(raw, find_names=names, prefix_sep="___")
        assert found._name_column is None and found._ids_found
        for n in names:
            assert found.find_by_name(n) == plain.find_by_name(n)
            assert found.prefixed_string_offsets(n, "___") is not None
        assert found.find_by_name("inode") == plain.find_by_name("inode")  # not prefetched


@given(st.sets(st.binary(min_size=1, max_size=6), min_size=1, max_size=12),
       st.lists(st.binary(max_size=7), max_size=20))
def test_trie_pattern_matches_exactly_its_words(words: set[bytes], others: list[bytes]
                                                ) -> None:
    import re

    from corebpf.btf.spec import _trie_pattern

    pattern = re.compile(b"(?:" + _trie_pattern(words) + b")", re.DOTALL)
    for w in words | set(others):
        assert (pattern.fullmatch(w) is not None) == (w in words), w


def _raw_reads_agree(s: btf.Spec) -> None:
    """resolve_kind, vlen, member, member_index/member_names and size_of read records
    without decoding them; each must say what the decoded type says."""
    for tid, t in s.items():
        got = s.resolve_kind(tid)
        if got is not None:
            rid, rkind = got
            assert rid == s.resolve(tid) and rkind == s.kind(rid)
        if isinstance(t, btf.Struct | btf.Union):
            assert s.vlen(tid) == len(t.members)
            assert [s.member(tid, i) for i in range(len(t.members))] == t.members
            names = s.member_names(tid)
            assert names == tuple(m.name for m in t.members)
            by_name, anon = s.member_index(tid)
            assert anon == tuple(i for i, m in enumerate(t.members) if not m.name)
            assert by_name == {n: names.index(n) for n in names if n}
        try:
            size = s.size_of(tid)
        except BTFError:
            continue
        if isinstance(t, btf.Int | btf.Struct | btf.Union | btf.Enum | btf.Enum64):
            assert size == t.size


def test_raw_reads_agree_with_decoded_types(kernel_spec: btf.Spec) -> None:
    _raw_reads_agree(btf.Spec(kernel_spec.raw))


def test_raw_reads_agree_in_both_byte_orders_and_split_btf() -> None:
    le = btf.load(PROGS / "btf_shapes.bpf.o")
    be = btf.load(PROGS / "btf_shapes.bpfeb.o")
    _raw_reads_agree(le)
    _raw_reads_agree(be)
    with pytest.raises(BTFError, match="no member #99"):
        le.member(le.find("node", btf.Kind.STRUCT), 99)
    with pytest.raises(BTFError, match="not a struct or union"):
        le.member_index(le.find("color", btf.Kind.ENUM))
    assert le.resolve_kind(0) == (0, 0) and le.vlen(0) == 0


@pytest.mark.parametrize("path", [f for f in corpus_files() if "el8" in f.name][:1]
                         + corpus_files()[:1], ids=lambda p: p.name)
def test_raw_reads_agree_on_old_kernels(path) -> None:  # type: ignore[no-untyped-def]
    _raw_reads_agree(btf.load(path, index_cache=False))


@given(st.binary(max_size=64), st.binary(min_size=4, max_size=4), st.integers(0, 3))
def test_word_hits_are_every_aligned_occurrence(data: bytes, needle: bytes, start: int
                                                ) -> None:
    """The regex search for a 4-byte word finds exactly the aligned occurrences, also
    where a misaligned match overlaps an aligned one (b"\\x1a\\x00\\x1a\\x00")."""
    from corebpf.btf.spec import _word_hits

    data = data + needle + data[:5] + needle[:2] + needle  # some hits, some overlaps
    want = [p for p in range(start, len(data) - 3, 4) if data[p : p + 4] == needle]
    assert _word_hits(data, needle, start, len(data)) == want


_SMALL = btf.load(DATA / "btf" / "6.1.0-56-cloud-amd64.btf.xz", index_cache=False)
_SMALL_NAMES = sorted({_SMALL.name(t) for t in _SMALL.ids() if _SMALL.name(t)})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(_SMALL_NAMES), min_size=0, max_size=12),
       st.lists(st.text("abc_", min_size=1, max_size=6), max_size=3))
def test_any_names_found_while_indexing_equal_the_search(real: list[str], made_up: list[str]
                                                         ) -> None:
    """find_names with any mix of real, flavored (``name___x``) and missing names."""
    names = real + [f"{n}___{m}" for n, m in zip(real, made_up, strict=False)] + made_up
    found = btf.Spec(_SMALL.raw, find_names=names, prefix_sep="___")
    later = btf.Spec(_SMALL.raw)
    later.prefetch_string_offsets(names, prefix_sep="___")
    for n in {*names, *real[:1]}:
        assert found.find_by_name(n) == _SMALL.find_by_name(n)
        assert found.prefixed_string_offsets(n, "___") == later.prefixed_string_offsets(
            n, "___")
