"""BPF_*_GET_NEXT_ID and the typed BPF_OBJ_GET_INFO_BY_FD readers, on objects this test
loads (compared with what bpftool reads for the same ids)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from corebpf import sys as ksys
from corebpf.btf import Spec
from tests.inspect.loaded import Loaded, bpftool, fd_count, loaded_object, needs_root

pytestmark = needs_root


@pytest.fixture(scope="module")
def loaded() -> Iterator[Loaded]:
    with loaded_object() as obj:
        yield obj


def _ids(next_id: object) -> list[int]:
    out: list[int] = []
    cur = 0
    while (nxt := next_id(cur)) is not None:  # type: ignore[operator]
        assert nxt > cur
        out.append(nxt)
        cur = nxt
    return out


def test_next_ids_list_what_is_loaded(loaded: Loaded) -> None:
    assert set(loaded.prog_ids.values()) <= set(_ids(ksys.prog_get_next_id))
    assert set(loaded.map_ids.values()) <= set(_ids(ksys.map_get_next_id))
    assert set(loaded.link_ids.values()) <= set(_ids(ksys.link_get_next_id))
    assert {1, loaded.btf_id} <= set(_ids(ksys.btf_get_next_id))


def test_prog_info(loaded: Loaded) -> None:
    before = fd_count()
    fd = loaded.coll.programs["on_getppid_with_a_long_name"].fd.fd
    info = ksys.prog_info(fd, xlated=True, jited=True, func_info=True, line_info=True,
                          jited_ksyms=True)
    theirs = bpftool("prog", "show", "id", str(info.id))
    assert info.name == "on_getppid_with_a_long_name"[:15] and info.type == 5  # tracepoint
    assert info.tag.hex() == theirs["tag"] and info.map_ids == theirs["map_ids"]
    assert info.xlated_insns is not None and len(info.xlated_insns) == theirs["bytes_xlated"]
    assert info.jited_insns is not None and len(info.jited_insns) == theirs["bytes_jited"]
    assert info.func_info[0][0] == 0 and len(info.func_info) == 2
    assert len(info.jited_ksyms) == 2 and len(info.jited_func_lens) == 2
    assert sum(info.jited_func_lens) == len(info.jited_insns)
    offs = [rec[0] for rec in info.line_info]
    assert offs == sorted(offs) and len(offs) > 10
    assert info.btf_id == loaded.btf_id and info.load_time > 0 and info.gpl_compatible
    plain = ksys.prog_info(fd, map_ids=False)
    assert plain.map_ids == [] and plain.xlated_insns is None and plain.nr_map_ids == 6
    assert ksys.fdinfo(fd)["memlock"] == str(theirs["bytes_memlock"])
    assert ksys.fd_kind(fd) == "prog"
    assert fd_count() == before


def test_map_info(loaded: Loaded) -> None:
    fd = loaded.coll.maps["typed"].fd.fd
    info = ksys.map_info(fd)
    theirs = bpftool("map", "show", "id", str(info.id))
    assert (info.type, info.name, info.key_size, info.value_size, info.max_entries) == \
        (1, "typed", theirs["bytes_key"], theirs["bytes_value"], theirs["max_entries"])
    assert info.btf_id == theirs["btf_id"] and info.btf_key_type_id and info.btf_value_type_id
    assert ksys.fd_kind(fd) == "map"
    assert ksys.fdinfo(loaded.coll.maps["inspect.rodata"].fd.fd)["frozen"] == "1"


def test_link_info_per_type(loaded: Loaded) -> None:
    def info(name: str) -> ksys.LinkInfo:
        fd = loaded.links[name].fd
        assert fd is not None and ksys.fd_kind(fd.fd) == "link"
        return ksys.link_info(fd.fd)

    raw = info("on_raw_tp")
    assert (raw.type, raw.attrs["tp_name"]) == (1, "sys_enter")
    assert raw.prog_id == loaded.prog_ids["on_raw_tp"]
    tp = info("tail_target")
    assert (tp.type, tp.attrs["perf_event_type"], tp.attrs["tp_name"]) == \
        (7, 5, "sys_enter_getppid")
    up = info("on_uprobe")
    assert up.attrs["perf_event_type"] == 1 and up.attrs["file_name"].endswith("libc.so.6")
    it = info("on_iter")
    assert (it.type, it.attrs["target_name"]) == (4, "bpf_map")
    cg = info("on_sock_create")
    assert cg.type == 3 and cg.attrs["attach_type"] == 2 and cg.attrs["cgroup_id"] > 0
    ns = info("on_sk_lookup")
    assert ns.type == 5 and ns.attrs["attach_type"] == 36 and ns.attrs["netns_ino"] > 0
    if loaded.iface is not None:
        assert info("on_xdp").type == 6 and info("on_xdp").attrs["ifindex"] > 0
        tcx = info("on_tcx")
        assert tcx.type == 11 and tcx.attrs["attach_type"] == 46


def test_btf_info_gives_the_bytes(loaded: Loaded) -> None:
    before = fd_count()
    with ksys.btf_get_fd_by_id(loaded.btf_id) as fd:
        assert ksys.fd_kind(fd.fd) == "btf"
        head = ksys.btf_info(fd.fd)
        full = ksys.btf_info(fd.fd, data=True)
    assert head.data is None and not head.kernel and head.name == ""
    assert full.data is not None and len(full.data) == head.size
    assert Spec(full.data).find("value")
    with ksys.btf_get_fd_by_id(1) as fd:
        vmlinux = ksys.btf_info(fd.fd)
    assert vmlinux.kernel and vmlinux.name == "vmlinux"
    assert fd_count() == before


def test_kallsyms_lookup() -> None:
    by_addr, by_name = ksys.kallsyms_lookup([], ["__bpf_call_base", "no_such_symbol_x"])
    if not by_name:
        pytest.skip("/proc/kallsyms hides addresses here (kptr_restrict)")
    base = by_name["__bpf_call_base"]
    assert "no_such_symbol_x" not in by_name
    assert ksys.kallsyms_lookup([base])[0][base] == "__bpf_call_base" or by_addr == {}
