"""vmlinux.h output against bpftool's, byte for byte, and against clang.

The differential tests run bpftool on the same raw BTF and compare; the compile tests feed
our header to clang, and the round trip checks that clang lays every struct and union of
the header out as the original BTF says.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.btf import format_c
from corebpf.btf.format_c import to_c
from corebpf.btf.writer import Builder
from corebpf.errors import BTFError
from tests.conftest import KERNEL_BTF, PROGS, corpus_files, debian_files, module_files, raw_copy

CLANG = shutil.which("clang-19")
#: Every kernel of ../shared/btf-corpus is compared when set; otherwise a sample of each
#: kind (the full set takes a few minutes on two cores).
FULL = bool(os.environ.get("COREBPF_FULL_CORPUS"))


def _bpftool() -> str:
    path = shutil.which("bpftool") or (
        "/usr/sbin/bpftool" if os.path.exists("/usr/sbin/bpftool") else None)
    if path is None:
        pytest.skip("bpftool is not installed (apt-get install bpftool)")
    return path


def _start_bpftool(*args: str) -> subprocess.Popen[str]:
    """bpftool runs on the other core while we print our own version."""
    return subprocess.Popen([_bpftool(), *args, "format", "c"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _bpftool_c(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    return out


def _corpus_sample() -> list[Path]:
    """One kernel per directory of the corpus (each distribution and release), and the
    small ones: different compilers, pahole versions and architectures."""
    files = corpus_files()
    if FULL:
        return files
    picked: dict[Path, Path] = {}
    for f in files:
        best = picked.get(f.parent)
        if best is None or f.stat().st_size < best.stat().st_size:
            picked[f.parent] = f
    return sorted(picked.values())


def _real() -> list[Path]:
    files = [KERNEL_BTF] if KERNEL_BTF.exists() else []
    return files + debian_files() + _corpus_sample()


# -- differential: real kernels ----------------------------------------------------------


@pytest.mark.parametrize("path", _real(), ids=lambda p: p.name)
def test_kernel_header_matches_bpftool(path: Path, tmp_path: Path) -> None:
    spec = btf.load(path, index_cache=False)
    raw = path
    if path != KERNEL_BTF:  # bpftool reads raw BTF only
        raw = tmp_path / "kernel.btf"
        raw.write_bytes(spec.raw)
    proc = _start_bpftool("btf", "dump", "file", str(raw))
    assert to_c(spec) == _bpftool_c(proc)


@pytest.mark.skipif(not module_files(), reason="no module BTF in tests/data/btf/modules")
@pytest.mark.parametrize(("mod", "base"), module_files(), ids=lambda p: p.name)
def test_split_btf_header_matches_bpftool(mod: Path, base: Path, tmp_path: Path) -> None:
    base_spec = btf.load(base, index_cache=False)
    spec = btf.load(mod, base=base_spec, index_cache=False)
    raw_mod = tmp_path / "mod.btf"
    raw_mod.write_bytes(spec.raw)
    proc = _start_bpftool("-B", str(raw_copy(base, tmp_path)), "btf", "dump", "file",
                          str(raw_mod))
    assert to_c(spec) == _bpftool_c(proc)


@pytest.mark.parametrize("obj", sorted(PROGS.glob("*.o")), ids=lambda p: p.name)
def test_object_header_matches_bpftool(obj: Path) -> None:
    """BPF objects: FUNC, VAR, DATASEC and tags, little- and big-endian."""
    proc = _start_bpftool("btf", "dump", "file", str(obj))
    assert to_c(btf.load(obj)) == _bpftool_c(proc)


def test_root_ids_dump_only_what_they_need(tmp_path: Path) -> None:
    if not KERNEL_BTF.exists():
        pytest.skip("no kernel BTF here")
    spec = btf.load(KERNEL_BTF)
    roots = [spec.find("task_struct", btf.Kind.STRUCT), spec.find("u64", btf.Kind.TYPEDEF)]
    text = to_c(spec, roots)
    assert text.startswith(format_c.PREAMBLE) and text.endswith(format_c.EPILOGUE)
    assert "struct task_struct {" in text and "typedef __u64 u64;" in text
    assert len(text) < len(to_c(spec)) // 2
    with pytest.raises(BTFError, match="out of range"):
        to_c(spec, [spec.type_count])


# -- handcrafted shapes --------------------------------------------------------------------


class _Shapes:
    """A Builder with shorthands for the base types the cases share."""

    def __init__(self) -> None:
        self.b = Builder()
        add = self.b.add
        self.int = add(btf.Int("int", 4, btf.IntEncoding.SIGNED))
        self.uint = add(btf.Int("unsigned int", 4))
        self.char = add(btf.Int("char", 1, btf.IntEncoding.SIGNED | btf.IntEncoding.CHAR))
        self.long = add(btf.Int("long", 8, btf.IntEncoding.SIGNED))
        self.ulong = add(btf.Int("long unsigned int", 8))
        self.short = add(btf.Int("short", 2, btf.IntEncoding.SIGNED))
        self.void_p = add(btf.Pointer(0))

    def add(self, t: btf.Type) -> int:
        return self.b.add(t)

    def struct(self, name: str, size: int, *members: tuple[str, int, int] | tuple[
            str, int, int, int], union: bool = False) -> int:
        ms = [btf.Member(*m) for m in members]
        kflag = any(m.bitfield_size for m in ms)
        cls = btf.Union if union else btf.Struct
        return self.b.add(cls(name, size, ms, kflag))

    def ptr(self, t: int) -> int:
        return self.b.add(btf.Pointer(t))

    def arr(self, t: int, n: int) -> int:
        return self.b.add(btf.Array(t, self.int, n))

    def proto(self, ret: int, *params: tuple[str, int]) -> int:
        return self.b.add(btf.FuncProto(ret, [btf.Param(n, t) for n, t in params]))


def _bitfields(s: _Shapes) -> None:
    s.struct("bits", 24, ("a", s.uint, 0, 3), ("b", s.uint, 3, 5), ("c", s.uint, 16, 4),
             ("d", s.char, 32), ("e", s.ulong, 64, 40), ("f", s.int, 128))
    # a bitfield right after a gap inside the same storage unit, then one in the next unit
    s.struct("gappy", 8, ("x", s.uint, 0, 2), ("y", s.uint, 13, 1), ("z", s.uint, 32, 31))
    # bitfields in a union, and a bitfield wider than its unit would hold
    s.struct("ubits", 8, ("p", s.ulong, 0, 33), ("q", s.uint, 0, 1), union=True)
    s.struct("lonely", 4, ("only", s.uint, 7, 1))


def _packing(s: _Shapes) -> None:
    inner = s.struct("inner_packed", 5, ("c", s.char, 0), ("x", s.int, 8))
    s.struct("outer", 6, ("c", s.char, 0), ("in", inner, 8))
    s.struct("tail_packed", 9, ("a", s.long, 0), ("b", s.char, 64))
    s.struct("aligned_more", 16, ("a", s.char, 0), ("b", s.long, 64))
    s.struct("explicit_gap", 16, ("a", s.char, 0), ("b", s.int, 64))
    s.struct("end_gap", 32, ("a", s.int, 0))
    s.struct("gap_then_char", 12, ("a", s.short, 0), ("b", s.char, 72))
    s.struct("empty", 0)
    s.struct("only_padding", 8)
    s.struct("mid_long_gap", 24, ("a", s.char, 0), ("b", s.int, 160))
    s.struct("u_pad", 8, ("a", s.int, 0), union=True)


def _anonymous(s: _Shapes) -> None:
    anon_enum = s.add(btf.Enum("", 4, [btf.EnumValue("RED", 0), btf.EnumValue("BLUE", 1)]))
    anon_s = s.struct("", 8, ("x", s.int, 0), ("color", anon_enum, 32))
    anon_u = s.struct("", 8, ("", anon_s, 0), ("raw", s.long, 0), union=True)
    s.struct("has_anon", 16, ("", anon_u, 0), ("ptr_to_anon", s.ptr(anon_s), 64))
    # nesting past the 13 tab levels libbpf indents
    inner = s.int
    for depth in range(16):
        inner = s.struct("", 4, (f"l{depth}", inner, 0))
    s.struct("deep", 4, ("top", inner, 0))
    # a top-level anonymous enum (referenced by nothing) and one only a prototype returns
    s.add(btf.Enum("", 4, [btf.EnumValue("CONST_A", 7), btf.EnumValue("CONST_B", 8)]))
    ret_enum = s.add(btf.Enum("", 4, [btf.EnumValue("RET_OK", 0)]))
    s.add(btf.Typedef("ret_fn", s.proto(ret_enum, ("x", s.int))))


def _functions(s: _Shapes) -> None:
    fwd = s.add(btf.Fwd("file"))
    cb = s.proto(s.int, ("f", s.ptr(fwd)), ("mode", s.int))
    no_args = s.proto(0)
    void_arg = s.proto(0, ("", 0))
    varargs = s.proto(s.int, ("fmt", s.ptr(s.add(btf.Const(s.char)))), ("", 0))
    inner = s.proto(0, ("v", s.long))
    returns_fp = s.proto(s.ptr(inner), ("n", s.int))
    handler = s.proto(0, ("", s.int))
    s.struct("ops", 48, ("open", s.ptr(cb), 0), ("none", s.ptr(no_args), 64),
             ("voided", s.ptr(void_arg), 128), ("log", s.ptr(varargs), 192),
             ("getter", s.ptr(returns_fp), 256), ("handlers", s.arr(s.ptr(handler), 1), 320))
    s.add(btf.Typedef("fn_t", cb))
    s.add(btf.Typedef("fnp_t", s.ptr(cb)))
    s.add(btf.Typedef("ptr_to_ptr_fn", s.ptr(s.ptr(returns_fp))))
    s.add(btf.Func("some_function", cb, btf.FuncLinkage.GLOBAL))


def _arrays(s: _Shapes) -> None:
    two_d = s.arr(s.arr(s.int, 3), 2)
    const_arr = s.add(btf.Const(s.arr(s.int, 3)))  # GCC puts const on the array itself
    s.struct("arrays", 168, ("grid", two_d, 0), ("names", s.arr(s.ptr(s.char), 4), 192),
             ("pgrid", s.ptr(s.arr(s.int, 8)), 448), ("cube", s.arr(two_d, 2), 512),
             ("ca", const_arr, 896), ("ppa", s.ptr(s.ptr(two_d)), 1024),
             ("pfa", s.ptr(s.arr(s.ptr(s.proto(s.int)), 2)), 1088),
             ("fam", s.arr(s.char, 0), 1152))
    s.add(btf.Typedef("matrix_t", two_d))


def _names(s: _Shapes) -> None:
    first = s.struct("foo", 4, ("a", s.int, 0))
    second = s.struct("foo", 8, ("b", s.long, 0))
    s.struct("uses_both", 16, ("one", first, 0), ("two", second, 64))
    s.add(btf.Enum("e1", 4, [btf.EnumValue("SAME", 1), btf.EnumValue("OTHER", 2)]))
    s.add(btf.Enum("e2", 4, [btf.EnumValue("SAME", 3)]))
    s.add(btf.Typedef("OTHER", s.int))  # typedefs share the enumerators' namespace
    s.add(btf.Typedef("dup_t", s.int))
    s.add(btf.Typedef("dup_t", s.long))
    s.struct("bar", 4, ("a", s.int, 0), union=True)
    s.struct("bar", 8, ("a", s.long, 0))
    s.add(btf.Fwd("foo"))  # forward declarations are never renamed


def _qualifiers(s: _Shapes) -> None:
    cchar = s.add(btf.Const(s.char))
    cv_int = s.add(btf.Volatile(s.add(btf.Const(s.int))))
    const_ptr = s.add(btf.Const(s.ptr(cchar)))
    restrict_p = s.add(btf.Restrict(s.ptr(s.int)))
    tagged = s.ptr(s.add(btf.TypeTag("user", s.int)))
    tagged2 = s.ptr(s.add(btf.TypeTag("rcu", s.add(btf.TypeTag("percpu", s.long)))))
    vstruct = s.add(btf.Volatile(s.struct("vs", 4, ("v", s.int, 0))))
    s.struct("quals", 56, ("cv", cv_int, 0), ("cp", const_ptr, 64),
             ("pcp", s.ptr(const_ptr), 128), ("r", restrict_p, 192), ("u", tagged, 256),
             ("rp", tagged2, 320), ("vs", vstruct, 384))


def _enums(s: _Shapes) -> None:
    s.add(btf.Enum("sgn", 4, [btf.EnumValue("NEG", -5), btf.EnumValue("POS", 5)], True))
    s.add(btf.Enum("uns", 4, [btf.EnumValue("BIG", 0xFFFFFFFF), btf.EnumValue("ZERO", 0)]))
    s.add(btf.Enum64("e64", 8, [btf.EnumValue("HUGE", 1 << 40),
                                btf.EnumValue("MAXU", (1 << 64) - 1)]))
    s.add(btf.Enum64("s64", 8, [btf.EnumValue("MIN", -(1 << 63)), btf.EnumValue("ONE", 1)], True))
    s.add(btf.Enum64("small64", 8, [btf.EnumValue("TINY", 3)]))
    s.add(btf.Enum("byte_sized", 1, [btf.EnumValue("B0", 0), btf.EnumValue("B1", 1)]))
    s.add(btf.Enum("empty_enum", 4))


def _graph(s: _Shapes) -> None:
    """Cycles through pointers, typedefs of forward-declared structs, fwd unions."""
    b = s.add(btf.Fwd("later"))
    a = s.struct("a", 16, ("b", s.ptr(b), 0), ("self", s.ptr(0), 64))
    s.b.types[a - 1].members[1].type = s.ptr(a)
    node_t = s.add(btf.Typedef("node_t", 0))
    node = s.struct("node", 16, ("next", s.ptr(node_t), 0), ("val", s.long, 64))
    s.b.types[node_t - 1].type = node
    s.struct("later", 8, ("a", s.ptr(a), 0))
    uf = s.add(btf.Fwd("maybe", is_union=True))
    s.struct("holder", 8, ("u", s.ptr(uf), 0))
    # mutual recursion through pointers: the second needs a forward declaration
    x_fwd_ptr = s.ptr(0)
    y = s.struct("y", 8, ("x", x_fwd_ptr, 0))
    x = s.struct("x", 16, ("y", y, 0), ("n", s.int, 64))
    s.b.types[x_fwd_ptr - 1].type = x
    # a typedef met through a pointer before its definition is due
    fwd_td = s.add(btf.Typedef("late_t", 0))
    s.struct("early", 8, ("p", s.ptr(fwd_td), 0))
    s.b.types[fwd_td - 1].type = s.struct("late", 4, ("v", s.int, 0))


def _specials(s: _Shapes) -> None:
    s.add(btf.Typedef("__builtin_va_list", s.ptr(s.char)))
    s.add(btf.Typedef("__gnuc_va_list", 0))
    s.add(btf.Int("__Poly8_t", 1))
    s.add(btf.Int("_Bool", 1, btf.IntEncoding.BOOL))
    s.add(btf.Int("__int128", 16, btf.IntEncoding.SIGNED))
    dbl = s.add(btf.Float("double", 8))
    s.struct("floaty", 16, ("d", dbl, 0), ("f", s.add(btf.Float("float", 4)), 64))
    var = s.add(btf.Var("global_counter", s.int, btf.VarLinkage.GLOBAL))
    s.add(btf.Datasec(".data", 4, [btf.VarSecinfo(var, 0, 4)]))
    s.add(btf.DeclTag("tagged", var, -1))


_CASES: dict[str, Callable[[_Shapes], None]] = {
    "bitfields": _bitfields,
    "packing": _packing,
    "anonymous": _anonymous,
    "functions": _functions,
    "arrays": _arrays,
    "names": _names,
    "qualifiers": _qualifiers,
    "enums": _enums,
    "graph": _graph,
    "specials": _specials,
}


def _case_btf(name: str, tmp_path: Path) -> tuple[btf.Spec, Path]:
    shapes = _Shapes()
    _CASES[name](shapes)
    raw = shapes.b.encode()
    path = tmp_path / f"{name}.btf"
    path.write_bytes(raw)
    return btf.from_bytes(raw), path


def _compile(header: str, tmp_path: Path, body: str = "", *extra: str) -> Path:
    if CLANG is None:
        pytest.skip("clang-19 is not installed")
    (tmp_path / "vmlinux.h").write_text(header)
    src = tmp_path / "use.c"
    src.write_text(f'#include "vmlinux.h"\n{body}\nint __dummy;\n')
    obj = tmp_path / "use.o"
    res = subprocess.run([CLANG, "-target", "bpf", "-c", *extra, str(src),
                          "-o", str(obj)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    return obj


@pytest.mark.parametrize("case", sorted(_CASES))
def test_shapes_match_bpftool_and_compile(case: str, tmp_path: Path) -> None:
    spec, path = _case_btf(case, tmp_path)
    proc = _start_bpftool("btf", "dump", "file", str(path))
    ours = to_c(spec)
    assert ours == _bpftool_c(proc)
    _compile(ours, tmp_path)


def test_shapes_print_as_expected(tmp_path: Path) -> None:
    """A few outputs spelled out, so that a regression reads as C rather than a diff."""
    text = to_c(_case_btf("functions", tmp_path)[0])
    assert "\tint (*open)(struct file *f, int mode);" in text
    assert "\tvoid (*none)(void);" in text and "\tvoid (*voided)(void);" in text
    assert "\tint (*log)(const char *fmt, ...);" in text
    assert "\tvoid (* (*getter)(int n))(long v);" in text
    assert "\tvoid (*handlers[1])(int);" in text
    assert "typedef void (* (**ptr_to_ptr_fn)(int n))(long v);" in text
    text = to_c(_case_btf("arrays", tmp_path)[0])
    assert "\tint grid[2][3];" in text and "\tint (*pgrid)[8];" in text
    assert "\tint (**ppa)[2][3];" in text and "\tchar fam[0];" in text
    text = to_c(_case_btf("names", tmp_path)[0])
    assert "struct foo___2 {" in text and "\tSAME___2 = 3," in text
    assert "typedef int OTHER___2;" in text and "typedef long dup_t___2;" in text
    text = to_c(_case_btf("packing", tmp_path)[0])
    assert "} __attribute__((packed));" in text and "struct empty {};" in text
    text = to_c(_case_btf("bitfields", tmp_path)[0])
    assert "\tshort: 8;\n\tunsigned int c: 4;\n\tint: 0;\n\tchar d;" in text
    text = to_c(_case_btf("anonymous", tmp_path)[0])
    assert "\t\t\tRED___2 = 0," in text  # an inline anonymous enum printed twice
    text = to_c(_case_btf("enums", tmp_path)[0])
    assert "\tMIN = -9223372036854775808LL," in text and "\tBIG = 4294967295," in text
    assert "mode(" not in text
    modes = to_c(_case_btf("enums", tmp_path)[0], enum_modes=True)
    assert "} __attribute__((mode(byte)));" in modes  # byte_sized
    assert modes.count("} __attribute__((mode(word)));") == 1  # small64 only


def test_unsatisfiable_cycle_stops_like_bpftool(tmp_path: Path) -> None:
    """A struct containing itself by value: bpftool stops with an error, as do we."""
    s = _Shapes()
    s.struct("before", 4, ("x", s.int, 0))
    p = s.struct("p", 8, ("q", 0, 0))
    q = s.struct("q", 8, ("p", p, 0))
    s.b.types[p - 1].members[0].type = q
    raw = tmp_path / "loop.btf"
    raw.write_bytes(s.b.encode())
    proc = _start_bpftool("btf", "dump", "file", str(raw))
    out, _ = proc.communicate()
    assert proc.returncode != 0
    written: list[str] = []
    with pytest.raises(BTFError, match="unsatisfiable type cycle"):
        format_c.dump_c(btf.load(raw), written.append)
    assert "".join(written) == out


# -- compiling and round-tripping the kernel's header ------------------------------------


def _layout_breakers(spec: btf.Spec, enum_sizes: tuple[int, ...]) -> set[int]:
    """Composites whose layout clang cannot get from the header: they hold, by value, an
    enum of a size the header cannot force (other than 4 bytes in bpftool 7.1's text,
    other than 1, 4 or 8 with ``enum_modes``) or a ``__builtin_va_list`` (its size is
    the target's)."""
    memo: dict[int, bool] = {}

    def breaks(tid: int) -> bool:
        tid = spec.skip_modifiers(tid)
        t = spec.type(tid)
        while isinstance(t, btf.Typedef | btf.Array):
            if isinstance(t, btf.Typedef) and t.name == "__builtin_va_list":
                return True
            tid = spec.skip_modifiers(t.type)
            t = spec.type(tid)
        if isinstance(t, btf.Enum | btf.Enum64):
            return t.size not in enum_sizes
        if isinstance(t, btf.Struct | btf.Union):
            if tid not in memo:
                memo[tid] = False
                memo[tid] = any(breaks(m.type) for m in t.members)
            return memo[tid]
        return False

    return {tid for tid in spec.ids() if spec.kind(tid) in (btf.Kind.STRUCT, btf.Kind.UNION)
            and breaks(tid)}


def _round_trip(path: Path, tmp_path: Path, enum_modes: bool) -> None:
    if CLANG is None:
        pytest.skip("clang-19 is not installed")
    spec = btf.load(path)
    printer = format_c._Printer(spec, enum_modes)  # the printer, to know the names it gave
    printer.dump_all()
    header = format_c.PREAMBLE + "".join(printer.out) + format_c.EPILOGUE
    (tmp_path / "vmlinux.h").write_text(header)
    named = [(tid, printer.resolved[tid]) for tid in spec.ids()
             if spec.kind(tid) in (btf.Kind.STRUCT, btf.Kind.UNION) and spec.name(tid)]
    # One by-value union member per struct makes clang emit its full BTF; clang's BTF
    # writer slows down badly with thousands of types in one file, so split the work.
    chunks = [named[i : i + 1200] for i in range(0, len(named), 1200)]

    def build(i: int) -> Path:
        src = tmp_path / f"rt{i}.c"
        lines = ['#include "vmlinux.h"', f"union __rt{i} {{"]
        for tid, name in chunks[i]:
            kw = "struct" if spec.kind(tid) == btf.Kind.STRUCT else "union"
            lines.append(f"\t{kw} {name} m{tid};")
        lines.append(f"}} __rt{i};")
        src.write_text("\n".join(lines) + "\n")
        obj = tmp_path / f"rt{i}.o"
        assert CLANG is not None
        res = subprocess.run([CLANG, "-g", "-target", "bpf", "-w", "-c", str(src), "-o",
                              str(obj)], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-3000:]
        return obj

    with ThreadPoolExecutor(max_workers=2) as pool:
        objs = list(pool.map(build, range(len(chunks))))
    built: dict[tuple[btf.Kind, str], btf.Struct | btf.Union] = {}
    for obj in objs:
        ospec = btf.load(obj)
        for tid in ospec.ids():
            t = ospec.type(tid)
            if isinstance(t, btf.Struct | btf.Union) and t.name:
                built.setdefault((t.kind, t.name), t)
    breakers = _layout_breakers(spec, (1, 4, 8) if enum_modes else (4,))
    checked = 0
    wrong = []
    for tid, name in named:
        t = spec.type(tid)
        assert isinstance(t, btf.Struct | btf.Union) and name is not None
        got = built.get((t.kind, name))
        assert got is not None, f"clang emitted no BTF for {t.kind.name} {name}"
        if tid in breakers:
            continue
        want = [(m.name, m.offset, m.bitfield_size) for m in t.members]
        have = [(m.name, m.offset, m.bitfield_size) for m in got.members]
        if (t.size, want) != (got.size, have):
            wrong.append(f"{t.kind.name} {name}: size {t.size}/{got.size}, first difference "
                         f"{next((w, h) for w, h in zip(want, have, strict=False) if w != h)}"
                         if want != have else f"{t.kind.name} {name}: size {t.size}/{got.size}")
        checked += 1
    assert not wrong, "\n".join(wrong[:20])
    assert checked > len(named) * 0.95


def test_kernel_header_compiles_and_round_trips(tmp_path: Path) -> None:
    """With the enum mode attributes (the CLI's default), as the header is meant to be
    used; bpftool's exact text differs only in them and is compiled on the corpus."""
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel exposes no /sys/kernel/btf/vmlinux")
    _round_trip(KERNEL_BTF, tmp_path, enum_modes=True)


@pytest.mark.skipif(not corpus_files(), reason="no ../shared/btf-corpus")
def test_corpus_kernel_header_round_trips(tmp_path: Path) -> None:
    # the smallest: an older (4.19) arm64 kernel, built by another compiler than ours
    _round_trip(min(corpus_files(), key=lambda f: f.stat().st_size), tmp_path,
                enum_modes=False)
