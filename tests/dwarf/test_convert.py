"""`corebpf btf from-dwarf` against pahole, bpftool and corebpf's own BTF reader."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.cli import main
from corebpf.dwarf import DWARFError, btf_from_dwarf
from corebpf.errors import BTFError
from tests.conftest import bpftool

from .conftest import SRC, VARIANTS

pytest.importorskip("elftools")

Build = Callable[..., Path]
NAMES = [v[0] for v in VARIANTS]


def pahole(binary: Path, out: Path) -> btf.Spec:
    if shutil.which("pahole") is None:
        pytest.skip("pahole is not installed (apt-get install dwarves)")
    r = subprocess.run(["pahole", f"--btf_encode_detached={out}", str(binary)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return btf.load(out)


def named(spec: btf.Spec) -> dict[tuple[str, str], set[object]]:
    """Every named struct, union, enum and typedef: its layout, as pahole and we must agree."""
    out: dict[tuple[str, str], set[object]] = {}
    for tid, t in spec.items():
        if not t.name:
            continue
        desc: object
        if isinstance(t, btf.Struct | btf.Union):
            desc = (t.size, tuple((m.name, m.offset, m.bitfield_size) for m in t.members))
            group = t.kind.name
        elif isinstance(t, btf.Enum | btf.Enum64):
            desc = (t.size, t.signed, tuple((v.name, v.value) for v in t.values))
            group = "ENUM"
        elif isinstance(t, btf.Typedef):
            try:
                desc = spec.size_of(tid)
            except BTFError:
                desc = None  # a typedef of void or of a function type
            group = "TYPEDEF"
        else:
            continue
        out.setdefault((group, t.name), set()).add(desc)
    return out


def counts(spec: btf.Spec) -> Counter[tuple[str, str]]:
    """How many times each named struct, union, enum, typedef and FWD is there (dedup)."""
    return Counter((t.kind.name, t.name) for _, t in spec.items() if t.name and isinstance(
        t, btf.Struct | btf.Union | btf.Enum | btf.Enum64 | btf.Typedef | btf.Fwd))


def assert_vars_at_symbols(binary: Path, spec: btf.Spec) -> None:
    """Every VAR sits in its DATASEC where the ELF symbol table puts it, with its size."""
    from elftools.elf.elffile import ELFFile

    with binary.open("rb") as f:
        elf = ELFFile(f)
        sections = list(elf.iter_sections())
        rel = elf["e_type"] == "ET_REL"
        symbols = {}
        for sym in elf.get_section_by_name(".symtab").iter_symbols():  # type: ignore[union-attr]
            if sym["st_info"]["type"] == "STT_OBJECT" and isinstance(sym["st_shndx"], int):
                sec = sections[sym["st_shndx"]]
                off = sym["st_value"] - (0 if rel else sec["sh_addr"])
                symbols[sym.name] = (sec.name, off, sym["st_size"])
    seen = 0
    for _, t in spec.items():
        if isinstance(t, btf.Datasec):
            for v in t.vars:
                assert symbols[spec.name(v.type)] == (t.name, v.offset, v.size)
                seen += 1
    assert seen >= 2  # lib.c has two


def convert(binary: Path) -> tuple[bytes, btf.Spec]:
    data = btf_from_dwarf(binary)
    spec = btf.from_bytes(data)
    for tid in spec.ids():  # parses back, every type
        spec.type(tid)
    return data, spec


@pytest.mark.parametrize("kind", ["exe", "so", "obj"])
@pytest.mark.parametrize("variant", NAMES)
def test_same_layouts_as_pahole(build: Build, tmp_path: Path, variant: str, kind: str) -> None:
    binary = build(variant, kind)
    their_spec = pahole(binary, tmp_path / "pahole.btf")
    theirs = named(their_spec)
    data, spec = convert(binary)
    ours = named(spec)
    assert theirs, "pahole found no named types"
    assert ours == theirs
    assert counts(spec) == counts(their_spec)  # deduplicated as far as pahole does
    assert_vars_at_symbols(binary, spec)
    out = tmp_path / "corebpf.btf"
    out.write_bytes(data)
    r = subprocess.run([bpftool(), "btf", "dump", "file", str(out)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert "STRUCT 'flags' size=8 vlen=6" in r.stdout


def test_shapes(build: Build) -> None:
    """What pahole does not say, or says otherwise (the deliberate differences)."""
    _, spec = convert(build("gcc-O0-dwarf5"))
    node = spec.type(spec.find("node", btf.Kind.STRUCT))
    assert isinstance(node, btf.Struct)
    m = {x.name: x for x in node.members}
    # int m[2][3]: an array of 2 arrays of 3 (pahole: one array of 6)
    outer = spec.type(m["m"].type)
    assert isinstance(outer, btf.Array) and outer.nelems == 2
    inner = spec.type(outer.type)
    assert isinstance(inner, btf.Array) and inner.nelems == 3
    assert spec.name(inner.type) == "int"
    assert isinstance(spec.type(m["d"].type), btf.Float)  # pahole: INT
    assert "" in m  # the anonymous union
    # a never-completed struct stays a FWD; struct node's forward declaration does not
    op = spec.type(m["op"].type)
    assert isinstance(op, btf.Pointer) and isinstance(spec.type(op.type), btf.Fwd)
    assert spec.find_by_name("node", btf.Kind.FWD) == []
    # deduplicated across the two compile units
    assert len(spec.find_by_name("flags", btf.Kind.STRUCT)) == 1
    assert len(spec.find_by_name("int", btf.Kind.INT)) == 1
    # functions with parameter names, variadic ones end in an unnamed void parameter
    walk = spec.type(spec.find("walk", btf.Kind.FUNC))
    assert isinstance(walk, btf.Func) and walk.linkage == btf.FuncLinkage.GLOBAL
    proto = spec.type(walk.type)
    assert isinstance(proto, btf.FuncProto)
    assert [(p.name, p.type) for p in proto.params][-1] == ("", 0)
    assert [p.name for p in proto.params][:2] == ["head", "label"]
    visit = spec.type(spec.find("visit", btf.Kind.FUNC))
    assert isinstance(visit, btf.Func) and visit.linkage == btf.FuncLinkage.STATIC
    # globals, each in the DATASEC of its section
    secs = {}
    for _, t in spec.items():
        if isinstance(t, btf.Datasec):
            secs[t.name] = {spec.name(v.type): v.size for v in t.vars}
    assert secs[".data"]["counter"] == 4 and secs[".data"]["pk"] == 6
    assert secs[".bss"]["root"] == node.size and secs[".bss"]["hidden"] == 8
    assert secs[".rodata"]["banner"] == 7 and secs[".rodata"]["lib_version"] == 4
    # enums: ENUM64 where 32 bits do not hold the values, with signedness
    big = spec.type(spec.find("big", btf.Kind.ENUM64))
    assert isinstance(big, btf.Enum64) and big.values[1].value == 0x123456789A
    color = spec.type(spec.find("color", btf.Kind.ENUM))
    assert isinstance(color, btf.Enum) and color.signed and color.values[2].value == -3


@pytest.mark.parametrize("cxx", ["g++", "clang++-19"])
def test_cplusplus(tmp_path: Path, cxx: str) -> None:
    """pahole refuses C++ (references); we write references as PTR and classes as STRUCT."""
    if shutil.which(cxx) is None:
        pytest.skip(f"{cxx} is not installed")
    binary = tmp_path / "cpp"
    subprocess.run([cxx, "-g", "-O0", "-o", str(binary), str(SRC / "cpp.cc")], check=True)
    if shutil.which("pahole"):
        r = subprocess.run(["pahole", f"--btf_encode_detached={tmp_path / 'p.btf'}",
                            str(binary)], capture_output=True, text=True)
        assert r.returncode != 0 or not (tmp_path / "p.btf").exists() or \
            (tmp_path / "p.btf").stat().st_size == 0
    data, spec = convert(binary)
    req = spec.type(spec.find("request", btf.Kind.STRUCT))
    assert isinstance(req, btf.Struct)
    m = {x.name: x for x in req.members}
    assert isinstance(spec.type(m["ref"].type), btf.Pointer)
    assert m["cref"].offset == 192 and m["m"].offset == 256
    assert isinstance(spec.type(spec.type(m["m"].type).type), btf.Array)  # type: ignore[union-attr]
    base = spec.type(m[""].type)  # the base class, as an anonymous member
    assert isinstance(base, btf.Struct) and base.name == "base"
    assert "instances" not in m  # static members are not in the layout
    assert spec.find("instances", btf.Kind.VAR)
    out = tmp_path / "cpp.btf"
    out.write_bytes(data)
    subprocess.run([bpftool(), "btf", "dump", "file", str(out)], check=True,
                   capture_output=True)


def test_cli(build: Build, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    binary = build("gcc-O0-dwarf5")
    out = tmp_path / "x.btf"
    assert main(["btf", "from-dwarf", str(binary), "-o", str(out)]) == 0
    assert out.read_bytes() == btf_from_dwarf(binary)
    assert main(["btf", "from-dwarf", str(binary), "-o", "-"]) == 0
    assert capsysbinary.readouterr().out == out.read_bytes()
    copy = tmp_path / "copy"
    shutil.copy(binary, copy)
    assert main(["btf", "from-dwarf", str(copy)]) == 0
    assert (tmp_path / "copy.btf").read_bytes() == out.read_bytes()
    assert btf_from_dwarf(binary.read_bytes()) == out.read_bytes()


def test_no_dwarf(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "nodebug"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(SRC / "lib.c"), "-shared"],
                   check=True)
    with pytest.raises(DWARFError, match=r"nodebug: no DWARF .*build it with -g"):
        btf_from_dwarf(binary)
    assert main(["btf", "from-dwarf", str(binary)]) == 1
    assert "build it with -g" in capsys.readouterr().err
    with pytest.raises(DWARFError, match="cannot read"):
        btf_from_dwarf(tmp_path / "missing")
    with pytest.raises(DWARFError, match="<bytes>: damaged"):
        btf_from_dwarf(b"not an ELF file at all")


def test_without_pyelftools() -> None:
    """The core imports without pyelftools; using it then names the extra to install."""
    code = (
        "import sys; sys.modules['elftools'] = None\n"
        "import corebpf, corebpf.btf, corebpf.dwarf, corebpf.cli\n"
        "try:\n"
        "    corebpf.dwarf.btf_from_dwarf(b'')\n"
        "except corebpf.Error as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    assert "pip install 'corebpf[dwarf]'" in r.stdout


def test_split_on_kernel_base(build: Build, tmp_path: Path) -> None:
    """--base: split BTF whose types equal to the kernel's are the kernel's (pahole --btf_base)."""
    from tests.conftest import KERNEL_BTF

    if not KERNEL_BTF.exists():
        pytest.skip(f"no kernel BTF at {KERNEL_BTF}")
    base = btf.load(KERNEL_BTF)
    out = tmp_path / "split.btf"
    binary = build("gcc-O2-dwarf5")
    assert main(["btf", "from-dwarf", str(binary), "--base", str(KERNEL_BTF),
                 "-o", str(out)]) == 0
    spec = btf.load(out, base=base)
    assert spec.first_id == base.type_count
    own = {spec.name(tid) for tid in spec.ids()}
    assert "int" not in own and "long long unsigned int" not in own  # the kernel's
    nodes = [spec.type(t) for t in spec.find_by_name("node", btf.Kind.STRUCT)
             if t >= spec.first_id]  # the kernel has a struct node of its own
    assert [n.size for n in nodes] == [160]  # type: ignore[union-attr]
    assert named(spec).items() >= {
        k: v for k, v in named(btf.from_bytes(btf_from_dwarf(binary))).items()
        if k[1] in ("node", "flags", "value", "point_t", "color", "big")}.items()
    r = subprocess.run([bpftool(), "btf", "dump", "file", str(out), "-B", str(KERNEL_BTF)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "STRUCT 'node' size=160" in r.stdout


@pytest.mark.parametrize("cc", ["gcc", "clang-19"])
@pytest.mark.parametrize("flags", [["-gdwarf-4", "-fdebug-types-section"],
                                   ["-gdwarf-5", "-fdebug-types-section"],
                                   ["-g", "-gz"], ["-gdwarf-2"], ["-gdwarf-3"]])
def test_other_dwarf_forms(tmp_path: Path, cc: str, flags: list[str]) -> None:
    """Type units (DWARF 4 .debug_types, DWARF 5 in .debug_info), compressed sections and
    older versions give the same types as plain -g (pahole 1.24 gets point_t wrong in type
    units)."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    srcs = [str(SRC / "shapes.c"), str(SRC / "lib.c")]
    plain, odd = tmp_path / "plain", tmp_path / "odd"
    subprocess.run([cc, "-g", "-O2", "-o", str(plain), *srcs], check=True)
    subprocess.run([cc, *flags, "-O2", "-o", str(odd), *srcs], check=True)
    assert named(convert(odd)[1]) == named(convert(plain)[1])


@pytest.mark.parametrize("flags, message", [
    (["-g", "-gsplit-dwarf"], r"split DWARF \(-gsplit-dwarf\): .*\.dwo"),
    (["-g1"], r"describes no types \(built with -g1\?\): build with -g"),
])
def test_unusable_dwarf(tmp_path: Path, flags: list[str], message: str) -> None:
    binary = tmp_path / "lib.so"
    subprocess.run(["gcc", *flags, "-shared", "-fPIC", "-o", str(binary), str(SRC / "lib.c")],
                   check=True, cwd=tmp_path)
    with pytest.raises(DWARFError, match=message):
        btf_from_dwarf(binary)


@pytest.mark.parametrize("target", ["i386-linux-gnu", "aarch64-linux-gnu", "s390x-linux-gnu"])
def test_other_architectures(tmp_path: Path, target: str) -> None:
    """32-bit pointers and big-endian DWARF (object files from clang's cross targets)."""
    if shutil.which("clang-19") is None:
        pytest.skip("clang-19 is not installed")
    src = tmp_path / "s.c"
    src.write_text("struct s { char *p; long l; int m[2][3]; unsigned x:3, y:9; };\n"
                   "enum e { A = -1, B = 7 }; typedef struct s s_t;\n"
                   "struct s g; enum e ge; s_t gt;\n"
                   "int f(struct s *a) { return a->x + a->y; }\n")
    obj = tmp_path / "s.o"
    subprocess.run(["clang-19", "-target", target, "-g", "-O2", "-c", "-o", str(obj),
                    str(src)], check=True)
    _, spec = convert(obj)
    assert named(spec) == named(pahole(obj, tmp_path / "p.btf"))
    assert spec.endian == (">" if target.startswith("s390x") else "<")
    s = spec.type(spec.find("s", btf.Kind.STRUCT))
    # 2 pointer-sized members, 6 ints, a bitfield unit; 64-bit: padded to 8
    assert isinstance(s, btf.Struct) and s.size == (36 if target.startswith("i386") else 48)
    sec = next(t for _, t in spec.items() if isinstance(t, btf.Datasec))
    assert {spec.name(v.type): v.size for v in sec.vars}["g"] == s.size


@pytest.mark.parametrize("cxx", ["g++", "clang++-19"])
def test_cplusplus_stl(tmp_path: Path, cxx: str) -> None:
    """A struct of standard library members: the layout the program itself prints."""
    if shutil.which(cxx) is None:
        pytest.skip(f"{cxx} is not installed")
    binary = tmp_path / "stl"
    subprocess.run([cxx, "-g", "-O1", "-Wno-invalid-offsetof", "-o", str(binary),
                    str(SRC / "stl.cc")], check=True)
    size, *offsets = map(int, subprocess.run([str(binary)], capture_output=True, text=True,
                                             check=True).stdout.split())
    data, spec = convert(binary)
    item = spec.type(spec.find("item", btf.Kind.STRUCT))
    assert isinstance(item, btf.Struct)
    assert item.size == size
    assert [m.offset // 8 for m in item.members] == offsets
    assert [m.name for m in item.members] == ["name", "v", "m", "next", "fn", "grid"]
    assert any(t.name in ("box<long int>", "box<long>") and isinstance(t, btf.Struct)
               for _, t in spec.items())  # gcc's and clang's spelling
    out = tmp_path / "stl.btf"
    out.write_bytes(data)
    subprocess.run([bpftool(), "btf", "dump", "file", str(out)], check=True,
                   capture_output=True)


@pytest.mark.parametrize("cc", ["gcc", "clang-19"])
def test_forward_declaration_merged(tmp_path: Path, cc: str) -> None:
    """A struct only declared in one compile unit is the one defined in another."""
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} is not installed")
    lib = tmp_path / "lib.so"
    subprocess.run([cc, "-g", "-shared", "-fPIC", "-o", str(lib), str(SRC / "fwd.c"),
                    str(SRC / "lib.c")], check=True)
    _, spec = convert(lib)
    assert spec.find_by_name("lib_state", btf.Kind.FWD) == []
    (state,) = spec.find_by_name("lib_state", btf.Kind.STRUCT)
    holder = spec.type(spec.find("holder", btf.Kind.STRUCT))
    assert isinstance(holder, btf.Struct)
    ptr = spec.type(holder.members[0].type)
    assert isinstance(ptr, btf.Pointer) and ptr.type == state
    assert len(spec.find_by_name("int", btf.Kind.INT)) == 1


def test_long_pointer_chain(tmp_path: Path) -> None:
    """3000 structs each pointing at the next: no recursion per link."""
    n = 3000
    src = tmp_path / "deep.c"
    src.write_text("".join(f"struct s{i} {{ struct s{i + 1} *next; int v; }};\n"
                           for i in range(n)) + f"struct s{n} {{ int v; }};\nstruct s0 root;\n")
    obj = tmp_path / "deep.o"
    subprocess.run(["gcc", "-g", "-c", "-o", str(obj), str(src)], check=True)
    _, spec = convert(obj)
    tid = spec.find("s0", btf.Kind.STRUCT)
    for _ in range(n):
        s = spec.type(tid)
        assert isinstance(s, btf.Struct)
        ptr = spec.type(s.members[0].type)
        assert isinstance(ptr, btf.Pointer)
        tid = ptr.type
    assert spec.name(tid) == f"s{n}"


@pytest.mark.parametrize("variant", NAMES)
def test_kernel_accepts(build: Build, variant: str) -> None:
    """The kernel's own BTF verifier takes the C output as it is (BPF_BTF_LOAD)."""
    import errno

    from corebpf.errors import LoadError
    from corebpf.sys.calls import btf_load

    try:
        fd = btf_load(btf_from_dwarf(build(variant)))
    except LoadError as e:
        if e.errno == errno.EPERM:
            pytest.skip("BPF_BTF_LOAD needs CAP_BPF")
        raise AssertionError(e.log) from None
    fd.close()


def test_complex_and_wide_base_types(tmp_path: Path) -> None:
    """_Complex (2 FLOATs), __int128, _Float16: pahole 1.24 gives up on complex long double."""
    src = tmp_path / "cz.c"
    src.write_text("struct cz { double _Complex z; float _Complex f; long double _Complex l;\n"
                   "  __int128 big; unsigned __int128 ubig; _Float16 h; char tail; };\n"
                   "struct cz gcz;\n")
    obj = tmp_path / "cz.o"
    subprocess.run(["gcc", "-g", "-c", "-o", str(obj), str(src)], check=True)
    data, spec = convert(obj)
    cz = spec.type(spec.find("cz", btf.Kind.STRUCT))
    assert isinstance(cz, btf.Struct) and cz.size == 112
    assert [m.offset // 8 for m in cz.members] == [0, 16, 32, 64, 80, 96, 98]
    z = spec.type(cz.members[0].type)
    assert isinstance(z, btf.Array) and z.nelems == 2
    assert isinstance(spec.type(z.type), btf.Float) and spec.size_of(z.type) == 8
    big = spec.type(cz.members[3].type)
    assert isinstance(big, btf.Int) and big.bits == 128 and big.signed
    assert isinstance(spec.type(cz.members[5].type), btf.Float)
    out = tmp_path / "cz.btf"
    out.write_bytes(data)
    subprocess.run([bpftool(), "btf", "dump", "file", str(out)], check=True,
                   capture_output=True)
