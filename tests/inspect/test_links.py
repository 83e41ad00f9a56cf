"""link show against bpftool 7.1: the fields it prints agree; what it leaves out for
newer link types (interfaces, perf event targets) is there as newer bpftool prints it."""

from __future__ import annotations

import json
import os

import pytest

from corebpf.inspect import (
    InspectError,
    iter_links,
    link_json,
    link_text,
    parse_selector,
    render,
    select_links,
)
from corebpf.inspect.names import LINK_TYPES
from tests.inspect.loaded import Loaded, bpftool, fd_count, needs_root

pytestmark = needs_root

#: link types bpftool 7.1 (libbpf 1.1) prints fully, plain text included
KNOWN_TO_71 = {"raw_tracepoint", "tracing", "cgroup", "iter", "netns"}


def as_json(tree: object) -> dict[str, object]:
    out = json.loads(render(tree, pretty=False))
    assert isinstance(out, dict)
    return out


def test_json_holds_bpftools_values_for_every_link(loaded: Loaded) -> None:
    before = fd_count()
    ours = {x.id: x for x in iter_links()}
    assert fd_count() == before
    for name, lid in loaded.link_ids.items():
        mine = as_json(link_json(ours[lid]))
        theirs = bpftool("link", "show", "id", str(lid))
        for key, value in theirs.items():
            if key == "type" and isinstance(value, int):  # a type libbpf 1.1 has no name for
                assert mine["type"] == LINK_TYPES[value], name
            else:
                assert mine[key] == value, (name, key)
        if mine["type"] in KNOWN_TO_71:
            assert link_text(ours[lid]) == bpftool("link", "show", "id", str(lid),
                                                    json_out=False), name


def test_what_each_link_is_attached_to(loaded: Loaded) -> None:
    got = {name: as_json(link_json(select_links(parse_selector(["id", str(lid)], "link")[0])[0]))
           for name, lid in loaded.link_ids.items()}
    assert got["on_raw_tp"]["tp_name"] == "sys_enter"
    assert got["tail_target"]["type"] == "perf_event"
    assert got["tail_target"]["tracepoint"] == "sys_enter_getppid"
    assert got["on_iter"]["target_name"] == "bpf_map"
    assert got["on_sock_create"]["attach_type"] == "cgroup_inet_sock_create"
    assert got["on_sk_lookup"] == {**got["on_sk_lookup"], "type": "netns",
                                   "attach_type": "sk_lookup",
                                   "netns_ino": os.stat("/proc/self/ns/net").st_ino}
    up = got["on_uprobe"]
    assert up["type"] == "perf_event" and up["retprobe"] is False
    assert str(up["file"]).endswith("libc.so.6") and isinstance(up["offset"], int)
    if loaded.iface is None:
        pytest.skip("no interface of our own for XDP and tcx (iproute2 missing)")
    ifindex = int(open(f"/sys/class/net/{loaded.iface}/ifindex").read())
    assert got["on_xdp"] == {**got["on_xdp"], "type": "xdp", "devname": loaded.iface,
                             "ifindex": ifindex}
    assert got["on_tcx"] == {**got["on_tcx"], "type": "tcx", "devname": loaded.iface,
                             "ifindex": ifindex, "attach_type": "tcx_ingress"}
    text = link_text(select_links(parse_selector(["id", str(loaded.link_ids["on_tcx"])],
                                                 "link")[0])[0])
    assert f"\n\tifindex {loaded.iface}({ifindex})  attach_type tcx_ingress  \n" in text


def test_selection_by_pin(loaded: Loaded) -> None:
    (link,) = select_links(parse_selector(["pinned", loaded.pin("raw_tp_link")], "link")[0],
                           pinned=True)
    assert link.id == loaded.link_ids["on_raw_tp"]
    assert link.pinned == [loaded.pin("raw_tp_link")]
    assert bpftool("-f", "link", "show", "id", str(link.id))["pinned"] == link.pinned
    with pytest.raises(InspectError, match="incorrect object type: prog"):
        select_links(parse_selector(["pinned", loaded.pin("on_raw_tp")], "link")[0])
    with pytest.raises(InspectError, match="expected 'id', 'pinned'"):
        parse_selector(["name", "x"], "link")
