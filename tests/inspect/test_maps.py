"""map show|dump|lookup|update|delete against bpftool 7.1: typed keys and values through
BTF, hex, per-CPU maps, maps of maps and program arrays, a ring buffer shown, not
dumped; changes made on one side read back on the other."""

from __future__ import annotations

import json

import pytest

from corebpf.inspect import (
    InspectError,
    delete_elem,
    dump_json,
    dump_maps,
    dump_text,
    iter_maps,
    map_json,
    map_text,
    parse_selector,
    render,
    select_maps,
    update_elem,
)
from corebpf.inspect.common import Selector
from corebpf.inspect.maps import lookup_elem, lookup_json, lookup_text
from tests.inspect.loaded import Loaded, bpftool, fd_count, needs_root

pytestmark = needs_root

DUMPED = ("typed", "counts", "pcpu", "pcpu_hash", "untyped", "outer", "jumps",
          "inspect.rodata", "inner1")


def as_json(tree: object) -> object:
    return json.loads(render(tree, pretty=False))


def sel(loaded: Loaded, name: str) -> Selector:
    return parse_selector(["id", str(loaded.map_ids[name])], "map")[0]


def test_show_equals_bpftool_for_every_map(loaded: Loaded) -> None:
    before = fd_count()
    listed = {m.id: m for m in iter_maps()}
    for name, mid in loaded.map_ids.items():
        (m,) = select_maps(sel(loaded, name))
        assert as_json(map_json(m)) == bpftool("map", "show", "id", str(mid)), name
        assert map_text(m) == bpftool("map", "show", "id", str(mid), json_out=False), name
        assert map_json(listed[mid]) == map_json(m)
    assert fd_count() == before
    (jumps,) = select_maps(sel(loaded, "jumps"))
    assert jumps.owner_prog_type == "tracepoint" and jumps.owner_jited
    (ro,) = select_maps(sel(loaded, "inspect.rodata"))
    assert ro.frozen == 1


def test_dump_equals_bpftool(loaded: Loaded) -> None:
    before = fd_count()
    for name in DUMPED:
        mid = str(loaded.map_ids[name])
        dumps = dump_maps(sel(loaded, name))
        assert as_json(dump_json(dumps)) == bpftool("map", "dump", "id", mid), name
        assert dump_text(dumps) == bpftool("map", "dump", "id", mid, json_out=False), name
    assert fd_count() == before


def test_typed_values_print_as_bpftool_prints_them(loaded: Loaded) -> None:
    dumps = dump_maps(sel(loaded, "typed"))
    entries = as_json(dump_json(dumps))
    assert isinstance(entries, list)
    one = next(e["formatted"] for e in entries if e["formatted"]["key"]["id"] == 1)
    v = one["value"]
    assert one["key"]["name"] == "one"
    assert (v["count"], v["delta"], v["port"], v["small"], v["tiny"]) == (5, -3, 8080, 200, -2)
    assert v["comm"] == "bash" and v["raw"] == [1, 2, 3, 4]
    assert v["color"] == "BLUE" and v["on"] is True
    assert (v["flag_a"], v["level"], v["mode"], v["sflag"]) == ("0x1", "0x5", "0x9", "0x1d")
    assert v["u"] == {"as_int": 0x01020304, "as_bytes": [4, 3, 2, 1]}
    assert v["pts"] == [{"x": -1, "y": 2}, {"x": 3, "y": -4}]
    assert v["ptr"] == 0xFFFF888012345678 and v["wide"] == hex((1 << 100) + 5)
    two = next(e["formatted"] for e in entries if e["formatted"]["key"]["id"] == 2)
    assert two["key"]["name"] == [116, 119, 111, 1] + [0] * 8  # not printable: numbers
    assert two["value"]["color"] == 3  # no enumerator of that value
    text = dump_text(dumps)
    assert '"ptr": 0xffff888012345678,' in text and '"sflag": 0x1d,' in text
    assert '"ptr": (nil),' in text


def test_ring_buffer_and_queue_are_shown_not_dumped(loaded: Loaded) -> None:
    for name, why in (("events", "ring buffer"), ("fifo", "queue")):
        (d,) = dump_maps(sel(loaded, name))
        assert d.entries == [] and "shown, not dumped" in d.note and why in d.note
        (m,) = select_maps(sel(loaded, name))
        assert dump_text([d]) == map_text(m)
        assert as_json(dump_json([d])) == [] == bpftool("map", "dump", "id",
                                                        str(loaded.map_ids[name]),
                                                        check=False)


def test_lookup_equals_bpftool(loaded: Loaded) -> None:
    for name, key in (("counts", ["1", "0", "0", "0"]), ("pcpu", ["0", "0", "0", "0"]),
                      ("pcpu_hash", ["hex", "09", "00", "00", "00"]),
                      ("untyped", ["1", "0", "0", "0"]), ("jumps", ["1", "0", "0", "0"])):
        mid = str(loaded.map_ids[name])
        m, spec, raw, entry = lookup_elem(sel(loaded, name), ["key", *key])
        assert entry is not None
        assert as_json(lookup_json(m, spec, entry)) == bpftool("map", "lookup", "id", mid,
                                                               "key", *key), name
        assert lookup_text(m, spec, raw, entry) == bpftool("map", "lookup", "id", mid, "key",
                                                           *key, json_out=False), name
    m, spec, raw, entry = lookup_elem(sel(loaded, "counts"),
                                      ["key", "json", "1"])
    assert entry is not None and entry.values == [(42).to_bytes(8, "little")]
    m, spec, raw, entry = lookup_elem(sel(loaded, "typed"),
                                      ["key", "json", '{"id": 7, "name": "nobody"}'])
    assert entry is None
    assert lookup_text(m, spec, raw, entry).endswith("\n\nNot found\n")
    assert lookup_json(m, spec, entry) is None


def test_update_and_delete_round_trip_with_bpftool(loaded: Loaded) -> None:
    before = fd_count()
    typed = sel(loaded, "typed")
    mid = str(loaded.map_ids["typed"])
    key = '{"id": 3, "name": "three"}'
    key_bytes = ["3", "0", "0", "0", "0x74", "0x68", "0x72", "0x65", "0x65"] + ["0"] * 7
    value = {"count": 9, "comm": "zsh", "color": "GREEN", "flag_a": 1, "sflag": "0x1f",
             "u": {"as_int": 7}, "pts": [{"x": 1}], "wide": "0x5", "ptr": 4096}
    update_elem(typed, ["key", "json", key, "value", "json", json.dumps(value),
                        "noexist"])
    got = bpftool("map", "lookup", "id", mid, "key", *key_bytes)["formatted"]["value"]
    assert got["count"] == 9 and got["comm"] == "zsh" and got["color"] == "GREEN"
    assert (got["flag_a"], got["sflag"], got["wide"], got["ptr"]) == ("0x1", "0x1f", "0x5",
                                                                       4096)
    assert got["u"]["as_bytes"] == [7, 0, 0, 0] and got["pts"][1] == {"x": 0, "y": 0}
    with pytest.raises(InspectError, match="update failed: File exists"):
        update_elem(typed, ["key", "json", key, "value", "json", "{}", "noexist"])
    delete_elem(typed, ["key", *key_bytes])
    assert bpftool("map", "lookup", "id", mid, "key", *key_bytes, check=False) is None
    # bpftool writes, corebpf reads: hex bytes, per-CPU values on every CPU
    bpftool("map", "update", "id", str(loaded.map_ids["pcpu"]), "key", "1", "0", "0", "0",
            "value", "hex", "2a", "00", "00", "00")
    entry = lookup_elem(sel(loaded, "pcpu"), ["key", "hex", "01", "00", "00", "00"])[3]
    assert entry is not None and set(entry.values) == {b"\x2a\0\0\0"}
    update_elem(sel(loaded, "pcpu"), ["key", "1", "0", "0", "0", "value", "json", "0"])
    got = bpftool("map", "lookup", "id", str(loaded.map_ids["pcpu"]), "key", "1", "0", "0", "0")
    assert {v["value"] for v in got["formatted"]["values"]} == {0}
    # a program array takes a program handle, a map of maps a map handle
    update_elem(sel(loaded, "jumps"), ["key", "0", "0", "0", "0", "value", "id",
                                       str(loaded.prog_ids["tail_target"])])
    got = bpftool("map", "lookup", "id", str(loaded.map_ids["jumps"]), "key", "0", "0", "0", "0")
    assert int.from_bytes(bytes(int(b, 16) for b in got["value"]), "little") == \
        loaded.prog_ids["tail_target"]
    delete_elem(sel(loaded, "jumps"), ["key", "0", "0", "0", "0"])
    update_elem(sel(loaded, "outer"), ["key", "1", "0", "0", "0", "value", "id",
                                       str(loaded.map_ids["inner1"])])
    d = as_json(dump_json(dump_maps(sel(loaded, "outer"))))
    assert isinstance(d, list) and len(d) == 2
    delete_elem(sel(loaded, "outer"), ["key", "1", "0", "0", "0"])
    with pytest.raises(InspectError, match="update failed: Invalid argument"):
        update_elem(sel(loaded, "outer"), ["key", "1", "0", "0", "0", "value", "pinned",
                                           loaded.pin("counts")])  # not like the inner map
    assert fd_count() == before


def test_element_argument_errors(loaded: Loaded) -> None:
    counts, typed = sel(loaded, "counts"), sel(loaded, "typed")
    for words, msg in (
            (["key", "1", "0"], "key expected 4 bytes got 2"),
            (["key", "1", "0", "0", "0x100"], "not a byte"),
            (["key", "z", "0", "0", "0"], "error parsing byte: 'z'"),
            (["key", "1", "0", "0", "0"], "did not find value"),
            (["key", "1", "0", "0", "0", "value", "1", "0", "0", "0", "0", "0", "0", "0",
              "any", "exist"], "flags specified multiple times"),
            (["key", "json", "-1"], r"-1 does not fit")):
        with pytest.raises(InspectError, match=msg):
            update_elem(counts, words)
    with pytest.raises(InspectError, match="struct key has no member 'nam'"):
        update_elem(typed, ["key", "json", '{"nam": 1}', "value", "json", "{}"])
    with pytest.raises(InspectError, match="enum color has no 'PURPLE'"):
        update_elem(typed, ["key", "json", "{}", "value", "json", '{"color": "PURPLE"}'])
    with pytest.raises(InspectError, match="has no BTF type for its keys"):
        update_elem(sel(loaded, "untyped"), ["key", "json", "1", "value", "hex"] +
                    ["00"] * 12)
    with pytest.raises(InspectError, match="no map with name no_such_map"):
        dump_maps(parse_selector(["name", "no_such_map"], "map")[0])


def test_selection_by_name_and_pin(loaded: Loaded) -> None:
    (by_pin,) = select_maps(parse_selector(["pinned", loaded.pin("counts")], "map")[0])
    assert by_pin.id == loaded.map_ids["counts"]
    named = select_maps(parse_selector(["name", "pcpu_hash"], "map")[0])
    assert loaded.map_ids["pcpu_hash"] in {m.id for m in named}
    (withpins,) = select_maps(parse_selector(["id", str(by_pin.id)], "map")[0], pinned=True)
    assert withpins.pinned == [loaded.pin("counts")]
    assert bpftool("-f", "map", "show", "id", str(by_pin.id))["pinned"] == withpins.pinned
