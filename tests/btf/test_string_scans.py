"""The two ways of prefetching names (a bytes.find pass per name for a few, one regular
expression pass for more) and of searching a word (bytes.find over a small section, a
compiled pattern over a large one) find the same things."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
import corebpf.btf.spec as spec_mod
from tests.conftest import DATA


def _raw(strings: bytes) -> bytes:
    return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 0, 0, len(strings)) + strings


_BASE = b"\0task_struct\0task_struct___v2\0task_struct___a___b\0pid\0file\0x___\0pi\0pid\0"
_SPLIT = b"file___new\0sock\0task_struct\0pid_ns\0"
#: no name is another's flavor: one pattern pass answers one name per position, finds
#: answer each name alone (see test_finds_answer_each_name_alone)
_NAMES = ["task_struct", "pid", "file", "x", "sock", "pi", "missing", "pid_ns", "fil"]


def _prefetched(names: list[str], find_scans: int, monkeypatch: pytest.MonkeyPatch
                ) -> tuple[dict[str, object], dict[str, object]]:
    monkeypatch.setattr(spec_mod, "_FIND_SCANS", find_scans)
    base = btf.from_bytes(_raw(_BASE))
    base.prefetch_string_offsets(names, prefix_sep="___")
    split = btf.Spec(_raw(_SPLIT), base=btf.from_bytes(_raw(_BASE)))
    split.prefetch_string_offsets(names, prefix_sep="___")
    return ({n: (base.string_offsets(n), base.prefixed_string_offsets(n, "___"))
             for n in names},
            {n: (split.string_offsets(n), split.prefixed_string_offsets(n, "___"))
             for n in names})


@pytest.mark.parametrize("count", [1, 2, 3, 4, len(_NAMES)])
def test_finds_and_pattern_prefetch_the_same(count: int, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    names = _NAMES[:count]
    by_find = _prefetched(names, 100, monkeypatch)
    by_pattern = _prefetched(names, 0, monkeypatch)
    assert by_find == by_pattern
    base, split = by_find
    if "task_struct" in names:
        assert base["task_struct"] == ([1], [13, 30])
        assert split["task_struct"] == ([1, len(_BASE) + 16], [])
    if "file" in names:
        assert split["file"] == ([_BASE.index(b"\0file\0") + 1], [len(_BASE)])


def test_finds_answer_each_name_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """"x___" is x's flavor and a name of its own: finds report it for both, as a
    prefetch of either name alone does."""
    both = _prefetched(["x", "x___"], 100, monkeypatch)[0]
    assert both == {"x": ([], [59]), "x___": ([59], [])}
    assert _prefetched(["x"], 0, monkeypatch)[0]["x"] == ([], [59])


_KERNEL = btf.load(DATA / "btf" / "6.1.0-56-cloud-amd64.btf.xz", index_cache=False)
_KERNEL_NAMES = sorted({_KERNEL.name(t) for t in _KERNEL.ids() if _KERNEL.name(t)})


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(_KERNEL_NAMES), min_size=1, max_size=3),
       st.lists(st.text("abc_", min_size=1, max_size=6), max_size=2))
def test_few_names_on_a_kernel_as_the_pattern_finds_them(real: list[str], made_up: list[str]
                                                         ) -> None:
    """A loader's one or two root names: the per-name finds decide every candidate as
    the pattern pass does, flavors and missing names included."""
    names = real + [f"{n}___{m}" for n, m in zip(real, made_up, strict=False)] + made_up
    old = spec_mod._FIND_SCANS
    try:
        spec_mod._FIND_SCANS = 100
        found = btf.Spec(_KERNEL.raw, _offsets=_KERNEL.offsets)
        found.prefetch_string_offsets(names, prefix_sep="___")
        spec_mod._FIND_SCANS = 0
        matched = btf.Spec(_KERNEL.raw, _offsets=_KERNEL.offsets)
        matched.prefetch_string_offsets(names, prefix_sep="___")
    finally:
        spec_mod._FIND_SCANS = old
    for n in names:
        assert found.find_by_name(n) == matched.find_by_name(n) == _KERNEL.find_by_name(n)
        if not any(m.startswith(n + "___") for m in names):
            assert found.prefixed_string_offsets(n, "___") == \
                matched.prefixed_string_offsets(n, "___")


@pytest.mark.parametrize("small_scan", [0, 1 << 16])
@given(data=st.binary(max_size=64), needle=st.binary(min_size=4, max_size=4),
       start=st.integers(0, 3))
def test_word_hits_both_ways(small_scan: int, data: bytes, needle: bytes, start: int) -> None:
    data = data + needle + data[:5] + needle[:2] + needle
    want = [p for p in range(start, len(data) - 3, 4) if data[p : p + 4] == needle]
    old = spec_mod._SMALL_SCAN
    try:
        spec_mod._SMALL_SCAN = small_scan  # type: ignore[misc]
        assert spec_mod._word_hits(data, needle, start, len(data)) == want
    finally:
        spec_mod._SMALL_SCAN = old  # type: ignore[misc]
