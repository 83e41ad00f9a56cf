"""corebpf prog|map|link|btf against bpftool on the same ids: the verbs' wiring, their
--json, their usage errors (exit 2) and their errors (exit 1, one line, no traceback)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.inspect.loaded import Loaded, bpftool, loaded_object, needs_root

pytestmark = needs_root


@pytest.fixture(scope="module")
def loaded() -> Iterator[Loaded]:
    with loaded_object() as obj:
        yield obj


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corebpf", *args], capture_output=True,
                          text=True, check=False)


def ok(*args: str) -> str:
    r = run(*args)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_prog_show_and_dump(loaded: Loaded) -> None:
    pid = str(loaded.prog_ids["on_getppid_with_a_long_name"])
    ours = json.loads(ok("prog", "show", "id", pid, "--json"))
    theirs = bpftool("prog", "show", "id", pid)
    assert abs(ours.pop("loaded_at") - theirs.pop("loaded_at")) <= 1
    assert ours == theirs
    listed = {p["id"] for p in json.loads(ok("prog", "list", "-j"))}
    assert set(map(int, loaded.prog_ids.values())) <= listed
    text = ok("prog", "show", "name", "on_getppid_with_a_long_name")
    assert f"{pid}: tracepoint  name on_getppid_with_a_long_name  tag " in text
    dump = ok("prog", "dump", "xlated", "id", pid, "linum")
    assert dump.startswith("int on_getppid_with_a_long_name(void * ctx):\n; ")
    assert "line_num:" in dump
    first = json.loads(ok("prog", "dump", "xlated", "id", pid, "opcodes", "--json"))[0]
    assert first["proto"] == "int on_getppid_with_a_long_name(void * ctx)"
    assert set(first["opcodes"]) == {"code", "src_reg", "dst_reg", "off", "imm"}


def test_prog_dump_file_writes_the_instructions(loaded: Loaded, tmp_path: object) -> None:
    pid = str(loaded.prog_ids["on_raw_tp"])
    out = os.path.join(str(tmp_path), "insns.bin")
    ours = os.path.join(str(tmp_path), "bpftool.bin")
    ok("prog", "dump", "xlated", "id", pid, "file", out)
    bpftool("prog", "dump", "xlated", "id", pid, "file", ours, json_out=False)
    assert open(out, "rb").read() == open(ours, "rb").read()


def test_map_verbs(loaded: Loaded) -> None:
    mid = str(loaded.map_ids["typed"])
    assert ok("map", "dump", "id", mid) == bpftool("map", "dump", "id", mid, json_out=False)
    assert json.loads(ok("map", "dump", "id", mid, "--json")) == \
        bpftool("map", "dump", "id", mid)
    shown = json.loads(ok("map", "show", "name", "typed", "-j"))  # several: an array
    assert int(mid) in ([shown["id"]] if isinstance(shown, dict) else [m["id"] for m in shown])
    key = ["key", "json", '{"id": 5, "name": "five"}']
    assert ok("map", "update", "id", mid, *key, "value", "json", '{"count": 1}', "-j") == \
        "null\n"
    got = json.loads(ok("map", "lookup", "id", mid, *key, "--json"))
    assert got["formatted"]["value"]["count"] == 1
    assert ok("map", "delete", "id", mid, *key) == ""
    r = run("map", "lookup", "id", mid, *key)
    assert r.returncode == 1 and r.stdout.endswith("\n\nNot found\n")
    assert run("map", "lookup", "id", mid, *key, "--json").stdout == "null\n"
    r = run("map", "dump", "pinned", loaded.pin("counts"))
    assert r.returncode == 0 and r.stdout == bpftool("map", "dump", "pinned",
                                                     loaded.pin("counts"), json_out=False)
    r = run("map", "dump", "id", str(loaded.map_ids["events"]))
    assert r.returncode == 0 and "shown, not dumped" in r.stderr
    assert r.stdout.startswith(f"{loaded.map_ids['events']}: ringbuf  name events")


def test_link_and_btf_verbs(loaded: Loaded) -> None:
    lid = str(loaded.link_ids["on_raw_tp"])
    assert ok("link", "show", "id", lid) == bpftool("link", "show", "id", lid, json_out=False)
    assert json.loads(ok("link", "show", "pinned", loaded.pin("raw_tp_link"), "--json"))[
        "tp_name"] == "sys_enter"
    assert f"\n\tpinned {loaded.pin('raw_tp_link')}\n" in ok("link", "list", "-f")
    bid = str(loaded.btf_id)
    assert ok("btf", "dump", "id", bid) == bpftool("btf", "dump", "id", bid, json_out=False)
    assert json.loads(ok("btf", "dump", "id", bid, "--json")) == \
        bpftool("btf", "dump", "id", bid)
    assert re.search(rf"^{bid}: name <anon>  size \d+B  prog_ids ", ok("btf", "list"), re.M)
    one = json.loads(ok("btf", "show", "id", "1", "--json"))
    assert one["name"] == "vmlinux" and one["kernel"] is True
    assert ok("btf", "dump", "--type", "1").startswith("[1] ")  # files as before


@pytest.mark.parametrize(("args", "code", "message"), [
    (("prog", "show", "label", "x"), 2, "expected 'id', 'tag', 'name', 'pinned'"),
    (("prog", "show", "id"), 2, "id: missing its value"),
    (("prog", "show", "id", "x"), 2, "can't parse 'x' as an id"),
    (("prog", "show", "id", "1", "extra"), 2, "unexpected 'extra'"),
    (("prog", "dump", "xlated", "id", "1", "visual"), 2, "expected opcodes, linum"),
    (("prog", "dump", "jited", "id", "1"), 2, "'bpftool prog dump jited' the native ones"),
    (("map", "show", "tag", "0011223344556677"), 2, "expected 'id', 'name', 'pinned'"),
    (("btf", "dump", "id"), 2, "missing the BTF object's id"),
    (("prog", "show", "name", "no_such_program"), 1, "no program with name no_such_program"),
    (("map", "dump", "id", "4294967295"), 1, "map id 4294967295: No such file"),
    (("link", "show", "pinned", "/sys/fs/bpf/no-such-pin"), 1, "cannot open pinned object"),
    (("btf", "dump", "id", "4294967295"), 1, "BTF id 4294967295"),
])
def test_errors(loaded: Loaded, args: tuple[str, ...], code: int, message: str) -> None:
    r = run(*args)
    assert r.returncode == code and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_bad_elements_are_one_line_errors(loaded: Loaded) -> None:
    mid = str(loaded.map_ids["counts"])
    for args, message in ((("key", "1", "0"), "key expected 4 bytes got 2"),
                          (("key", "json", "{"), "key json:"),
                          (("key", "json", '"x"'), "'x' is not a number")):
        r = run("map", "lookup", "id", mid, *args)
        assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr


def test_a_name_shared_by_several_objects_prints_as_bpftool(loaded: Loaded) -> None:
    """A second copy of the object: names match two programs and two maps, printed one
    after the other (JSON: an array of headers with elements or insns)."""
    with loaded_object():
        for args in (("map", "dump", "name", "counts"), ("map", "dump", "name", "untyped"),
                     ("map", "show", "name", "typed"),
                     ("prog", "dump", "xlated", "name", "on_raw_tp")):
            assert ok(*args) == bpftool(*args, json_out=False), args
            assert json.loads(ok(*args, "--json")) == bpftool(*args), args
        ours = json.loads(ok("prog", "show", "name", "on_raw_tp", "--json"))
        theirs = bpftool("prog", "show", "name", "on_raw_tp")
        assert len(ours) >= 2
        for a, b in zip(ours, theirs, strict=True):
            assert abs(a.pop("loaded_at") - b.pop("loaded_at")) <= 1
            assert a == b


@pytest.mark.parametrize(("verb", "names"), [
    (("map", "show"), ("typed", "counts", "pcpu_hash", "events", "fifo")),
    (("map", "dump"), ("typed", "counts", "pcpu", "pcpu_hash")),
    # (on_getppid_with_a_long_name reads a per-CPU address, which bpftool 7.1 prints as
    # 'r0 = r0': docs/inspect.md)
    (("prog", "dump", "xlated"), ("on_raw_tp",)),
])
def test_pretty_json_is_bpftools_byte_for_byte(loaded: Loaded, verb: tuple[str, ...],
                                               names: tuple[str, ...]) -> None:
    """-p prints what bpftool -p prints, spaces and line breaks included."""
    ids = loaded.map_ids if verb[0] == "map" else loaded.prog_ids
    for name in names:
        handle = ("id", str(ids[name]))
        ours = ok(*verb, *handle, "-p")
        assert ours == bpftool("-p", *verb, *handle, json_out=False), name
        assert json.loads(ours) == json.loads(ok(*verb, *handle, "--json"))
