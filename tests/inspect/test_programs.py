"""prog show and prog dump xlated against bpftool 7.1, program by program (by id: other
processes load programs too)."""

from __future__ import annotations

import json
import re

import pytest

from corebpf.inspect import (
    InspectError,
    dump_xlated,
    iter_programs,
    parse_selector,
    program_json,
    program_text,
    render,
    select_programs,
    xlated_json,
    xlated_text,
)
from corebpf.inspect.programs import programs_json
from tests.inspect.loaded import Loaded, bpftool, fd_count, needs_root

pytestmark = needs_root


def as_json(tree: object) -> object:
    return json.loads(render(tree, pretty=False))


def same_second(ours: dict[str, object], theirs: dict[str, object]) -> None:
    """loaded_at is computed from the clocks when each tool runs: equal to the second,
    or one apart when the second turned in between."""
    a, b = ours.pop("loaded_at", None), theirs.pop("loaded_at", None)
    assert (a is None) == (b is None)
    if a is not None:
        assert isinstance(a, int) and isinstance(b, int) and abs(a - b) <= 1


def test_show_json_equals_bpftool_for_every_program(loaded: Loaded) -> None:
    for name, pid in loaded.prog_ids.items():
        sel, _ = parse_selector(["id", str(pid)], "prog")
        (prog,) = select_programs(sel)
        ours = as_json(program_json(prog))
        theirs = bpftool("prog", "show", "id", str(pid))
        assert isinstance(ours, dict) and isinstance(theirs, dict)
        same_second(ours, theirs)
        assert ours == theirs, name
        for key in ("id", "type", "name", "tag", "uid", "bytes_xlated", "jited", "bytes_jited",
                    "bytes_memlock", "btf_id"):
            assert key in ours, (name, key)
    long = as_json(program_json(select_programs(parse_selector(
        ["id", str(loaded.prog_ids["on_getppid_with_a_long_name"])], "prog")[0])[0]))
    assert isinstance(long, dict)
    assert long["name"] == "on_getppid_with_a_long_name"  # past the kernel's 15 chars
    assert long["metadata"] == {"version": "inspect-1"}
    assert len(long["map_ids"]) >= 5


def test_show_text_equals_bpftool(loaded: Loaded) -> None:
    for pid in loaded.prog_ids.values():
        (prog,) = select_programs(parse_selector(["id", str(pid)], "prog")[0])
        theirs = bpftool("prog", "show", "id", str(pid), json_out=False)
        ours = program_text(prog)
        # the loaded_at line may be a second apart (see same_second)
        pat = re.compile(r"loaded_at \S+")
        assert pat.sub("loaded_at T", ours) == pat.sub("loaded_at T", theirs)


def test_list_holds_every_program_as_bpftool_lists_it(loaded: Loaded) -> None:
    before = fd_count()
    ours = {p.id: p for p in iter_programs()}
    assert fd_count() == before
    theirs = {p["id"]: p for p in bpftool("prog", "show")}
    for pid in loaded.prog_ids.values():
        a = as_json(program_json(ours[pid]))
        assert isinstance(a, dict)
        same_second(a, theirs[pid])
        assert a == theirs[pid]


def test_selection_by_name_tag_and_pin(loaded: Loaded) -> None:
    before = fd_count()
    by_name = select_programs(parse_selector(["name", "on_getppid_with_a_long_name"],
                                             "prog")[0])
    assert loaded.prog_ids["on_getppid_with_a_long_name"] in [p.id for p in by_name]
    # tail_target, on_iter and on_socket compile to the same code: one tag, three programs
    tag = by_name[0].tag
    (tailp,) = select_programs(parse_selector(["id", str(loaded.prog_ids["tail_target"])],
                                              "prog")[0])
    same = select_programs(parse_selector(["tag", tailp.tag], "prog")[0])
    mine = {loaded.prog_ids[n] for n in ("tail_target", "on_iter", "on_socket")}
    assert mine <= {p.id for p in same}
    theirs = bpftool("prog", "show", "tag", tailp.tag)
    assert {p["id"] for p in theirs} >= mine
    ours = as_json(programs_json(same))
    assert isinstance(ours, list)
    assert {p["id"] for p in ours} == {p["id"] for p in theirs}
    assert tag != tailp.tag
    (pinned,) = select_programs(parse_selector(["pinned", loaded.pin("on_raw_tp")], "prog")[0])
    assert pinned.id == loaded.prog_ids["on_raw_tp"]
    # bpftool's -f: every program gets its pins
    (withpins,) = select_programs(parse_selector(["id", str(pinned.id)], "prog")[0],
                                  pinned=True)
    assert withpins.pinned == [loaded.pin("on_raw_tp")]
    theirs_f = bpftool("-f", "prog", "show", "id", str(pinned.id))
    assert theirs_f["pinned"] == withpins.pinned
    assert fd_count() == before


def test_selection_errors(loaded: Loaded) -> None:
    with pytest.raises(InspectError, match="no program with name no_such_prog"):
        select_programs(parse_selector(["name", "no_such_prog"], "prog")[0])
    with pytest.raises(InspectError, match="program id 4294967295"):
        select_programs(parse_selector(["id", "4294967295"], "prog")[0])
    with pytest.raises(InspectError, match="incorrect object type: map"):
        select_programs(parse_selector(["pinned", loaded.pin("counts")], "prog")[0])
    with pytest.raises(InspectError, match="16 hex digits"):
        parse_selector(["tag", "xyz"], "prog")
    with pytest.raises(InspectError, match="expected 'id', 'tag', 'name', 'pinned'"):
        parse_selector(["label", "x"], "prog")
    with pytest.raises(InspectError, match="expected 'id', 'name', 'pinned'"):
        parse_selector(["tag", "0011223344556677"], "map")
    assert parse_selector(["i", "7"], "prog")[0].value == 7  # bpftool's prefixes


def _percpu_mov(text: str) -> str:
    """bpftool 7.1's disassembler predates the per-CPU address move (6.9+) and prints
    ``r0 = r0`` for what the kernel's disasm.c, and corebpf, print as
    ``r0 = &(void __percpu *)(r0)``."""
    return re.sub(r"r(\d) = &\(void __percpu \*\)\(r(\d)\)", r"r\1 = r\2", text)


@pytest.mark.parametrize("option", [None, "opcodes", "linum"])
def test_dump_xlated_equals_bpftool(loaded: Loaded, option: str | None) -> None:
    extra = [option] if option else []
    kw = {option: True} if option else {}
    before = fd_count()
    for name in ("on_getppid_with_a_long_name", "on_raw_tp", "on_tcx", "on_iter"):
        pid = str(loaded.prog_ids[name])
        progs = dump_xlated(parse_selector(["id", pid], "prog")[0])
        theirs = bpftool("prog", "dump", "xlated", "id", pid, *extra, json_out=False)
        assert _percpu_mov(xlated_text(progs, **kw)) == theirs, name
        ours_j = as_json(xlated_json(progs, **kw))
        theirs_j = bpftool("prog", "dump", "xlated", "id", pid, *extra)
        assert json.loads(_percpu_mov(json.dumps(ours_j))) == theirs_j, name
    assert fd_count() == before


def test_dump_xlated_shows_functions_lines_maps_and_calls(loaded: Loaded) -> None:
    (xp,) = dump_xlated(parse_selector(
        ["id", str(loaded.prog_ids["on_getppid_with_a_long_name"])], "prog")[0])
    text = xlated_text([xp])
    assert text.startswith("int on_getppid_with_a_long_name(void * ctx):\n")
    assert "int count_event(__u32 slot):\n" in text
    assert "; __u32 zero = 0;\n" in text
    assert f"map[id:{loaded.map_ids['pcpu']}]" in text
    assert f"map[id:{loaded.map_ids['inspect.rodata']}][0]+" in text  # target_pid
    assert re.search(r"call bpf_get_current_pid_tgid#-?\d+", text)
    assert re.search(r"call pc[+-]\d+#bpf_prog_[0-9a-f]{16}_count_event", text)
    assert "call bpf_tail_call#12" in text
    linum = xlated_text([xp], linum=True)
    assert "inspect.bpf.c line_num:" in linum


def test_dump_xlated_of_several_programs(loaded: Loaded) -> None:
    (tailp,) = select_programs(parse_selector(["id", str(loaded.prog_ids["tail_target"])],
                                              "prog")[0])
    sel = parse_selector(["tag", tailp.tag], "prog")[0]
    progs = dump_xlated(sel)
    theirs = bpftool("prog", "dump", "xlated", "tag", tailp.tag)
    ours = as_json(xlated_json(progs))
    assert isinstance(ours, list) and isinstance(theirs, list)
    if [p["id"] for p in ours] != [p["id"] for p in theirs]:
        pytest.skip("programs with this tag came or went between the two listings")
    for a, b in zip(ours, theirs, strict=True):
        a.pop("loaded_at", None)
        b.pop("loaded_at", None)
        assert a == b
