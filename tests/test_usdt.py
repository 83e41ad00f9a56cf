"""USDT: notes and argument specs as data (against readelf -n), then real <sys/sdt.h>
probes in a program and a shared library, with and without semaphores, read by an
object written against libbpf's <bpf/usdt.bpf.h>."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from corebpf import usdt
from corebpf.elf import ElfFile
from corebpf.links import attach
from corebpf.loader import Collection, load
from corebpf.obj import ObjectSpec
from corebpf.usdt import Arg, ArgType, UsdtError, parse_args
from tests.conftest import PROGS

SRC = Path(__file__).parent / "progs" / "usdt"
CC = shutil.which("gcc") or shutil.which("cc")
SDT_H = any(os.path.exists(p) for p in ("/usr/include/sys/sdt.h",
                                        "/usr/include/x86_64-linux-gnu/sys/sdt.h",
                                        "/usr/include/aarch64-linux-gnu/sys/sdt.h"))

root_only = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/sys/bus/event_source/devices/uprobe"),
    reason="attaching uprobes needs root and the uprobe PMU")

#: (label, CFLAGS): -O2 PIE keeps arguments in registers, -O0 non-PIE on the stack
BUILDS = [("O2-pie", "-O2 -g -fPIE -pie"), ("O0-nopie", "-O0 -g -fno-pie -no-pie")]


@pytest.fixture(scope="module", params=BUILDS, ids=[b[0] for b in BUILDS])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CC is None or not SDT_H:
        pytest.skip("needs gcc and <sys/sdt.h> (systemtap-sdt-dev)")
    label, cflags = request.param
    out = tmp_path_factory.mktemp(f"usdt-{label}")
    subprocess.run(["make", "-s", "-C", str(SRC), f"OUT={out}", f"CC={CC}",
                    f"CFLAGS={cflags}"], check=True)
    return out


# -- pure data -------------------------------------------------------------------------


def A(size: int, signed: bool, kind: ArgType, val: int, reg: str, off: int) -> Arg:
    return Arg(size, signed, kind, val, reg, off)


def test_x86_argument_specs() -> None:
    got = parse_args("-4@%eax 8@-8(%rbp) -4@$5 8@%rdx -1@%sil 2@%r9w -8@(%rsp) "
                     "4@0x10(%r12d) -2@$-9 1@%al 8@%rip -4@-1204(%rbp)")
    R, D, C = ArgType.REG, ArgType.REG_DEREF, ArgType.CONST
    assert got == (A(4, True, R, 0, "eax", 80), A(8, False, D, -8, "rbp", 32),
                   A(4, True, C, 5, "", 0), A(8, False, R, 0, "rdx", 96),
                   A(1, True, R, 0, "sil", 104), A(2, False, R, 0, "r9w", 64),
                   A(8, True, D, 0, "rsp", 152), A(4, False, D, 16, "r12d", 24),
                   A(2, True, C, -9, "", 0), A(1, False, R, 0, "al", 80),
                   A(8, False, R, 0, "rip", 128), A(4, True, D, -1204, "rbp", 32))
    assert [a.bitshift for a in got[:3]] == [32, 0, 32]
    assert parse_args("") == ()


def test_arm64_argument_specs() -> None:
    got = parse_args("-4@[sp, 8] 8@x0 4@5 -8@[x29] 2@[x1, -16] -4@w2 8@-3 8@sp", "arm64")
    R, D, C = ArgType.REG, ArgType.REG_DEREF, ArgType.CONST
    assert got == (A(4, True, D, 8, "sp", 248), A(8, False, R, 0, "x0", 0),
                   A(4, False, C, 5, "", 0), A(8, True, D, 0, "x29", 232),
                   A(2, False, D, -16, "x1", 8), A(4, True, R, 0, "w2", 16),
                   A(8, False, C, -3, "", 0), A(8, False, R, 0, "sp", 248))


@pytest.mark.parametrize("spec, match", [
    ("-4@%xyz", "unknown x86_64 register 'xyz'"),
    ("3@%eax", "size 3"),
    ("8@-96(%rbp,%rax,8)", "not a constant, register or register\\+offset"),
    (" ".join(["4@%eax"] * 13), "13 arguments, at most 12"),
    ("garbage", "cannot split"),
])
def test_bad_argument_specs(spec: str, match: str) -> None:
    with pytest.raises(UsdtError, match=match):
        parse_args(spec)


def test_register_offsets_are_the_kernels(kernel_spec) -> None:  # type: ignore[no-untyped-def]
    """The x86-64 table equals struct pt_regs as this kernel's BTF lays it out."""
    import platform

    from corebpf.btf import types as bt

    if platform.machine() != "x86_64":
        pytest.skip("the x86-64 table is checked on x86-64")
    t = kernel_spec.type(kernel_spec.find("pt_regs", bt.Kind.STRUCT))
    offsets = {m.name: m.offset // 8 for m in t.members if m.name}
    for name, off in usdt.X86_64_REGISTERS.items():
        reg = next(r for r, names in usdt._X86_ALIASES.items() if name in names)
        assert offsets[reg] == off, name


def test_spec_layout() -> None:
    args = parse_args("-4@%eax 8@-8(%rbp) -2@$-9")
    raw = usdt.spec_bytes(args, cookie=0xABCDEF)
    assert len(raw) == usdt.SPEC_SIZE == 208
    assert struct.unpack_from("=QIhBb", raw, 0) == (0, 1, 80, 1, 32)
    assert struct.unpack_from("=QIhBb", raw, 16) == ((-8) & (1 << 64) - 1, 2, 32, 0, 0)
    assert struct.unpack_from("=QIhBb", raw, 32) == ((-9) & (1 << 64) - 1, 0, 0, 1, 48)
    assert struct.unpack_from("=Qh", raw, 192) == (0xABCDEF, 3)


def test_spec_layout_is_usdt_bpf_hs() -> None:
    """Offsets and sizes spec_bytes() writes equal struct __bpf_usdt_spec in the BTF of an
    object compiled against libbpf's usdt.bpf.h."""
    from corebpf.btf import types as bt

    btf = ObjectSpec.load(PROGS / "usdt.bpf.o").btf
    assert btf is not None
    spec = btf.type(btf.find("__bpf_usdt_spec", bt.Kind.STRUCT))
    arg = btf.type(btf.find("__bpf_usdt_arg_spec", bt.Kind.STRUCT))
    assert isinstance(spec, bt.Struct) and isinstance(arg, bt.Struct)
    assert spec.size == usdt.SPEC_SIZE and arg.size == 16
    assert {m.name: m.offset // 8 for m in spec.members} == {
        "args": 0, "usdt_cookie": 16 * usdt.MAX_ARGS, "arg_cnt": 200}
    assert {m.name: m.offset // 8 for m in arg.members} == {
        "val_off": 0, "arg_type": 8, "reg_off": 12, "arg_signed": 14, "arg_bitshift": 15}


def _readelf_notes(path: Path) -> list[tuple[str, str, int, int, int, str]]:
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True,
                         check=True).stdout
    notes = []
    for m in re.finditer(r"Provider: (\S+)\s+Name: (\S+)\s+Location: (0x[0-9a-f]+), Base: "
                         r"(0x[0-9a-f]+), Semaphore: (0x[0-9a-f]+)\s+Arguments:(.*)", out):
        p, n, loc, base, sema, args = m.groups()
        notes.append((p, n, int(loc, 16), int(base, 16), int(sema, 16), args.strip()))
    return notes


def test_notes_match_readelf(built: Path) -> None:
    for f in ("usdt_app", "libusdtlib.so"):
        elf = ElfFile((built / f).read_bytes(), source=str(built / f))
        got = [(n.provider, n.name, n.pc, n.base, n.semaphore, n.args)
               for n in usdt.read_notes(elf)]
        assert got == _readelf_notes(built / f) and got


def test_targets(built: Path) -> None:
    elf = ElfFile((built / "usdt_app").read_bytes(), source="usdt_app")
    (t,) = usdt.find_targets(elf, "corebpf_test", "args")
    assert [a.size for a in t.args] == [8, 1, 2, 4, 8, 4]
    assert [a.signed for a in t.args] == [False, True, False, True, True, True]
    assert t.args[5] == A(4, True, ArgType.CONST, 42, "", 0)
    assert t.semaphore_offset == 0
    (s,) = usdt.find_targets(elf, "corebpf_test", "sema")
    assert 0 < s.semaphore_offset != s.note.semaphore  # a file offset, not the address
    with pytest.raises(UsdtError, match=r"no USDT probe corebpf_test:argz \(closest: "
                                        r"corebpf_test:args"):
        usdt.find_targets(elf, "corebpf_test", "argz")
    plain = ElfFile(Path("/bin/true").read_bytes(), source="/bin/true")
    if not usdt.read_notes(plain):
        with pytest.raises(UsdtError, match="no USDT probes"):
            usdt.find_targets(plain, "a", "b")


# -- on the kernel ---------------------------------------------------------------------

SLOT = struct.Struct("=12qqqq32s")


def _load() -> Collection:
    return load(ObjectSpec.load(PROGS / "usdt.bpf.o"))


def _slots(coll: Collection) -> list[tuple[list[int], int, int, int, bytes]]:
    data = coll.maps[next(n for n in coll.maps if n.endswith(".bss"))].read_data()
    base = {s.name: s.value for s in coll.obj.elf.symbols}["slots"]
    out = []
    for i in range(8):
        v = SLOT.unpack_from(data, base + i * SLOT.size)
        out.append((list(v[:12]), v[12], v[13], v[14], v[15].split(b"\0")[0]))
    return out


def _typed(coll: Collection) -> tuple[int, ...]:
    data = coll.maps[next(n for n in coll.maps if n.endswith(".bss"))].read_data()
    off = {s.name: s.value for s in coll.obj.elf.symbols}["typed"]
    return struct.unpack_from("=3q", data, off)


@root_only
def test_usdt_in_program_and_library(built: Path) -> None:
    """Every argument of every probe as bpf_usdt_arg() and BPF_USDT() see it: several
    widths, negatives, a constant, a string through a pointer; the semaphores count up
    while attached (ref_ctr_offset), so the gated probes fire."""
    app, lib = built / "usdt_app", built / "libusdtlib.so"
    child = subprocess.Popen([str(app)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "ready 0 0\n"
        with _load() as coll:
            h = coll.programs["handle"]
            links = [
                usdt.attach_usdt(h, str(app), "corebpf_test", "args", pid=child.pid,
                                 cookie=0),
                usdt.attach_usdt(h, str(app), "corebpf_test", "sema", cookie=1),
                usdt.attach_usdt(h, str(lib), "corebpf_lib", "libargs", cookie=2),
                usdt.attach_usdt(h, str(lib), "corebpf_lib", "libsema", pid=child.pid,
                                 cookie=3),
                # SEC("usdt") with a target, as links.attach / the skeleton pass it
                attach(coll.programs["handle_typed"], target=f"{lib}:corebpf_lib:libargs",
                       pid=child.pid),
            ]
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "1 1\n"  # both semaphores set by the kernel
            assert child.wait(timeout=10) == 0
            slots = _slots(coll)
            typed = _typed(coll)
            for link in links:
                link.close()
        u64 = 0xFEDCBA9876543210
        pad = [0] * 12
        want = [
            (b"hello", [-5, 65000, -123456, -1234567890123, 42], 6),
            (b"sema", [-77], 2),
            (b"lib", [-99, u64 - (1 << 64)], 3),
            (b"libsema", [-300], 2),
        ]
        for i, (s, args, argc) in enumerate(want):
            vals, got_argc, hits, cookie, text = slots[i]
            assert (text, got_argc, hits, cookie) == (s, argc, 1, i), i
            assert vals[1:] == (args + pad)[:11], i
            assert vals[0] != 0  # the string's address
        assert typed == (-99, u64 - (1 << 64), 1)
    finally:
        child.kill()
        child.wait()


def _spec(coll: Collection, sid: int) -> tuple[int, int]:
    """(usdt_cookie, arg_cnt) of spec ``sid`` as the kernel holds it."""
    import ctypes

    from corebpf import sys as ksys

    val = ctypes.create_string_buffer(usdt.SPEC_SIZE)
    ksys.map_elem(ksys.BPFCommand.MAP_LOOKUP_ELEM, coll.maps["__bpf_usdt_specs"].fd.fd,
                  ctypes.c_int(sid), val)
    return struct.unpack_from("=Qh", val.raw, 192)  # type: ignore[return-value]


@root_only
def test_spec_ids_are_reused_after_detach(built: Path) -> None:
    """Ids come from one allocator per object (libbpf's usdt_manager), found through the
    program's own maps; a closed attachment gives its ids back."""
    app = str(built / "usdt_app")
    with _load() as coll:
        h = coll.programs["handle"]
        first = usdt.attach_usdt(h, app, "corebpf_test", "args", cookie=5)
        second = usdt.attach_usdt(h, app, "corebpf_test", "sema", cookie=6)
        assert _spec(coll, 0) == (5, 6) and _spec(coll, 1) == (6, 2)
        first.close()
        third = usdt.attach_usdt(coll.programs["handle_typed"], app, "corebpf_test", "sema",
                                 cookie=7)
        assert _spec(coll, 0) == (7, 2)  # id 0 again
        second.close()
        third.close()


@root_only
def test_attach_errors(built: Path) -> None:
    with _load() as coll:
        with pytest.raises(UsdtError, match="no USDT probe corebpf_test:nope"):
            usdt.attach_usdt(coll.programs["handle"], str(built / "usdt_app"),
                             "corebpf_test", "nope")
        with pytest.raises(UsdtError, match="usdt needs BINARY:PROVIDER:NAME"):
            attach(coll.programs["handle"], target="justone")
    with load(PROGS / "uprobe.bpf.o", programs=["on_entry"]) as other:
        with pytest.raises(UsdtError, match=r"include <bpf/usdt\.bpf\.h>"):
            usdt.attach_usdt(other.programs["on_entry"], str(built / "usdt_app"),
                             "corebpf_test", "args")


def test_probes_match_bpftrace(built: Path) -> None:
    bpftrace = shutil.which("bpftrace")
    if bpftrace is None:
        pytest.skip("no bpftrace to compare with")
    for f in ("usdt_app", "libusdtlib.so"):
        path = built / f
        out = subprocess.run([bpftrace, "-l", f"usdt:{path}:*"], capture_output=True,
                             text=True, timeout=60).stdout
        theirs = {line.rsplit(":", 2)[1] + ":" + line.rsplit(":", 2)[2]
                  for line in out.split() if line.startswith("usdt:")}
        elf = ElfFile(path.read_bytes(), source=str(path))
        assert {f"{n.provider}:{n.name}" for n in usdt.read_notes(elf)} == theirs != set()


def test_damaged_notes_raise_corebpf_errors(built: Path) -> None:
    """Every byte of the note section flipped, and the section cut short: a UsdtError or
    ElfError (corebpf.Error), never a traceback."""
    from corebpf.errors import Error

    data = bytearray((built / "usdt_app").read_bytes())
    sec = ElfFile(bytes(data), source="x").section(usdt.NOTE_SECTION)
    assert sec is not None
    for i in range(sec.offset, sec.offset + sec.size):
        for flip in (0xFF, 0x80):
            bad = bytearray(data)
            bad[i] ^= flip
            try:
                usdt.find_targets(ElfFile(bytes(bad), source="bad"), "corebpf_test", "args")
            except Error:
                pass


@root_only
def test_attach_programs_with_usdt_targets(built: Path) -> None:
    """What `corebpf run --usdt PROG=BINARY:PROVIDER:NAME --pid PID` hands the library:
    targets by program and a pid; a bare SEC("usdt") without a target is left out."""
    from corebpf.links import attach_programs

    app = built / "usdt_app"
    child = subprocess.Popen([str(app)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "ready 0 0\n"
        with _load() as coll:
            links, skipped = attach_programs(
                coll, {"handle": f"{app}:corebpf_test:sema"}, pid=child.pid)
            assert list(skipped) == ["handle_typed"] and len(links) == 1
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline() == "1 0\n"
            assert child.wait(timeout=10) == 0
            _vals, argc, hits, _cookie, text = _slots(coll)[0]
            for link in links:
                link.close()
        assert (text, argc, hits) == (b"sema", 2, 1)
    finally:
        child.kill()
        child.wait()
