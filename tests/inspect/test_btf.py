"""btf list and btf dump id against bpftool 7.1."""

from __future__ import annotations

import json

from corebpf.btf.format_raw import dump_raw
from corebpf.inspect import (
    btf_json,
    btf_text,
    iter_btf,
    load_btf,
    parse_selector,
    render,
    select_btf,
)
from tests.inspect.loaded import Loaded, bpftool, fd_count, needs_root

pytestmark = needs_root


def test_list_equals_bpftool(loaded: Loaded) -> None:
    before = fd_count()
    ours = {b.id: b for b in iter_btf()}
    assert fd_count() == before
    theirs = {b["id"]: b for b in bpftool("btf", "show")}
    for btf_id in (1, loaded.btf_id):  # the kernel's, and the object's
        mine = json.loads(render(btf_json(ours[btf_id]), pretty=False))
        other = theirs[btf_id]
        # prog_ids/map_ids: the same ids; bpftool's order is its hash map's
        for key in ("prog_ids", "map_ids"):
            assert sorted(mine.pop(key)) == sorted(other.pop(key)), key
        assert mine == other
    obj = ours[loaded.btf_id]
    assert set(loaded.prog_ids.values()) <= set(obj.prog_ids)
    assert obj.name == "" and not obj.kernel
    assert btf_text(ours[1]) == bpftool("btf", "show", "id", "1", json_out=False)
    (one,) = select_btf(parse_selector(["id", str(loaded.btf_id)], "btf")[0])
    assert one.size == obj.size and btf_text(one).startswith(f"{loaded.btf_id}: name <anon>  ")


def test_dump_id_equals_bpftool_raw(loaded: Loaded) -> None:
    spec = load_btf(loaded.btf_id)
    out: list[str] = []
    dump_raw(spec, out.append)
    assert "".join(out) == bpftool("btf", "dump", "id", str(loaded.btf_id), json_out=False)
