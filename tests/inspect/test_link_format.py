"""Link types this kernel cannot make here (no kprobes, no netfilter hooks in the test)
printed from records, in current bpftool's fields and layout (no kernel)."""

from __future__ import annotations

import json
from typing import Any

from corebpf.inspect import Link, link_json, link_text, render


def js(link: Link) -> Any:
    return json.loads(render(link_json(link), pretty=False))


def test_perf_event_kprobe_and_event() -> None:
    kp = Link(3, "perf_event", 7, 10, {"perf_event_type": 4, "func_name": "do_sys_openat2",
                                       "offset": 0, "addr": 0xFFFFFFFF81234560, "missed": 2,
                                       "cookie": 0})
    assert js(kp) == {"id": 3, "type": "perf_event", "prog_id": 10, "retprobe": True,
                      "addr": 0xFFFFFFFF81234560, "func": "do_sys_openat2", "offset": 0,
                      "missed": 2, "cookie": 0}
    assert link_text(kp) == ("3: perf_event  prog 10  \n\tkretprobe ffffffff81234560 "
                             "do_sys_openat2  missed 2  \n")
    ev = Link(4, "perf_event", 7, 11, {"perf_event_type": 6, "type": 1, "config": 0,
                                       "cookie": 5})
    assert js(ev) == {"id": 4, "type": "perf_event", "prog_id": 11, "event_type": "software",
                      "event_config": "cpu-clock", "cookie": 5}
    assert link_text(ev) == "4: perf_event  prog 11  \n\tevent software:cpu-clock  cookie 5  \n"
    up = Link(5, "perf_event", 7, 12, {"perf_event_type": 2, "file_name": "/bin/bash",
                                       "offset": 0, "cookie": 0, "ref_ctr_offset": 0})
    assert link_text(up) == "5: perf_event  prog 12  \n\turetprobe /bin/bash+0  \n"


def test_multi_links_and_netfilter() -> None:
    km = Link(6, "kprobe_multi", 8, 13, {"count": 2, "flags": 0, "missed": 0,
                                         "addrs": [0x10, 0x20], "cookies": [1, 2]},
              funcs=[(0x10, 1, "a_func"), (0x20, 2, None)])
    assert js(km)["funcs"] == [
        {"addr": 16, "func": "a_func", "module": None, "cookie": 1},
        {"addr": 32, "func": None, "module": None, "cookie": 2}]
    assert "\n\tkprobe.multi  func_cnt 2  \n\taddr             cookie           func " \
           "[module]\n\t0000000000000010 1                a_func  " in link_text(km)
    um = Link(7, "uprobe_multi", 12, 14, {"count": 1, "flags": 1, "pid": 0, "path_size": 10,
                                          "path": "/bin/true", "offsets": [0x1040],
                                          "ref_ctr_offsets": [0], "cookies": [9]})
    assert js(um) == {"id": 7, "type": "uprobe_multi", "prog_id": 14, "retprobe": True,
                      "path": "/bin/true", "func_cnt": 1, "pid": 0,
                      "funcs": [{"offset": 0x1040, "ref_ctr_offset": 0, "cookie": 9}]}
    nf = Link(8, "netfilter", 10, 15, {"pf": 2, "hooknum": 1, "priority": -100, "flags": 0})
    assert js(nf) == {"id": 8, "type": "netfilter", "prog_id": 15, "pf": 2, "hook": 1,
                      "prio": -100, "flags": 0}
    assert link_text(nf) == "8: netfilter  prog 15  \n\tipv4 input prio -100\n"
    so = Link(9, "struct_ops", 9, 0, {"map_id": 77})
    assert link_text(so) == "9: struct_ops  map 77  \n" and js(so)["map_id"] == 77
    unknown = Link(10, 99, 99, 16, {})
    assert link_text(unknown) == "10: type 99  prog 16  \n"
