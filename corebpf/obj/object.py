"""A clang-built BPF object as pure data: programs, maps, global data, externs, relocations.

Nothing here calls the kernel. Decisions follow libbpf's bpf_object__open (program
discovery from STT_FUNC symbols, subprograms in .text, relocation classes, BTF-defined map
parsing), so that a later loader can act on the spec exactly as libbpf would.
"""

from __future__ import annotations

import enum
import os
import struct

from .._record import field, record
from ..btf import Spec
from ..btf import types as bt
from ..elf import (
    SHF_EXECINSTR,
    SHN_UNDEF,
    SHT_NOBITS,
    SHT_PROGBITS,
    SHT_REL,
    STB_WEAK,
    STT_FUNC,
    STT_SECTION,
    ElfError,
    ElfFile,
    Section,
    Symbol,
)
from ..errors import BTFError, ObjectError
from .btf_ext import BTFExt, CoreRelo, FuncInfo, LineInfo, parse_btf_ext
from .sections import AttachType, ProgramType, SectionDef, attach_target, section_def

INSN_SIZE = 8
BPF_LD_IMM64 = 0x18
BPF_CALL = 0x85
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_FUNC = 4

MAPS_SEC = ".maps"
LEGACY_MAPS_SEC = "maps"
KCONFIG_SEC = ".kconfig"
KSYMS_SEC = ".ksyms"
DATA_PREFIXES = (".data", ".rodata", ".bss")


class RelocType(enum.Enum):
    """libbpf's reloc_type: what an ELF relocation against an instruction means."""

    LD64 = "map"  # ld_imm64 of a map fd
    CALL = "call"  # bpf-to-bpf call
    DATA = "data"  # ld_imm64 of a global variable (map value)
    EXTERN_LD64 = "extern_var"  # .kconfig/.ksyms variable
    EXTERN_CALL = "extern_func"  # kfunc call
    SUBPROG_ADDR = "subprog_addr"  # callback: ld_imm64 of a function address


@record(frozen=True)
class Relocation:
    """An ELF relocation, resolved to what it refers to."""

    insn: int  # instruction slot within the program
    type: RelocType
    symbol: str
    #: map name (LD64/DATA), extern name, or "" for calls
    target: str = ""
    #: symbol value: byte offset into the map/section the symbol points at
    sym_off: int = 0


@record
class ProgramSpec:
    name: str
    #: section name as libbpf reports it (a leading "?" removed)
    section: str
    section_index: int
    #: byte offset of the program inside its ELF section
    offset: int
    insns: bytes
    section_def: SectionDef | None
    is_subprog: bool
    relocations: list[Relocation] = field(default_factory=list)
    func_info: list[FuncInfo] = field(default_factory=list)
    line_info: list[LineInfo] = field(default_factory=list)
    #: CO-RE records whose instruction lies in this program (insn_off made program-relative)
    core_relos: list[CoreRelo] = field(default_factory=list)
    global_func: bool = True
    #: SEC("?name") programs start with autoload off (libbpf's convention)
    autoload: bool = True
    #: the ELF section's own name (what .BTF.ext records refer to)
    elf_section: str = ""

    @property
    def prog_type(self) -> ProgramType:
        return self.section_def.prog_type if self.section_def else ProgramType.UNSPEC

    @property
    def attach_type(self) -> AttachType | None:
        return self.section_def.attach_type if self.section_def else None

    @property
    def attach_target(self) -> str:
        return attach_target(self.section, self.section_def) if self.section_def else ""

    @property
    def insn_count(self) -> int:
        return len(self.insns) // INSN_SIZE


@record
class VariableSpec:
    name: str
    offset: int
    size: int
    type_id: int
    linkage: int


@record
class MapSpec:
    """A map as the object declares it (BTF-defined, legacy, or a global data section)."""

    name: str
    type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    numa_node: int = 0
    pinning: int = 0
    map_extra: int = 0
    key_type_id: int = 0
    value_type_id: int = 0
    #: the ELF section and the symbol's offset inside it
    section: str = ""
    section_index: int = -1
    section_offset: int = 0
    #: global data: the section's initial bytes (empty for .bss: shorter than value_size
    #: means the rest is zeros) and its variables
    contents: bytes = b""
    variables: list[VariableSpec] = field(default_factory=list)
    is_data: bool = False
    read_only: bool = False
    #: map-in-map: the inner map's definition, and initial slots -> map/prog names
    inner: MapSpec | None = None
    initial_values: dict[int, str] = field(default_factory=dict)
    #: BTF id of the map definition struct (BTF-defined maps)
    def_type_id: int = 0
    #: bytes the definition occupies in its section (initial values included)
    def_size: int = 0


@record
class ExternSpec:
    name: str
    kind: str  # "kconfig" | "ksym"
    type_id: int  # BTF VAR or FUNC id
    is_weak: bool
    is_func: bool = False
    #: typed ksym: the variable's type (0 for typeless `extern const void x __ksym`)
    target_type_id: int = 0
    offset: int = 0  # position in the .kconfig / .ksyms data section


# Map types (enum bpf_map_type) used for naming and defaults.
MAP_TYPE_ARRAY = 2
MAP_TYPE_ARRAY_OF_MAPS = 12
MAP_TYPE_HASH_OF_MAPS = 13
MAP_TYPE_PROG_ARRAY = 3
MAP_F_RDONLY_PROG = 1 << 7
MAP_F_MMAPABLE = 1 << 10


class ObjectSpec:
    """Everything in a BPF ELF object, parsed once, without the kernel."""

    def __init__(self, data: bytes, *, source: str = "<object>"):
        self.source = source
        try:
            self.elf = ElfFile(data, source=source)
        except ElfError:
            raise
        if self.elf.machine not in (247, 0):
            raise ObjectError(f"{source}: not a BPF object (e_machine {self.elf.machine})")
        self.endian = self.elf.endian
        self.name = os.path.basename(source).split(".")[0] if source != "<object>" else "obj"
        self.btf: Spec | None = None
        self.btf_ext: BTFExt | None = None
        self.license = ""
        self.kern_version = 0
        self.programs: dict[str, ProgramSpec] = {}
        self.maps: dict[str, MapSpec] = {}
        self.externs: dict[str, ExternSpec] = {}
        try:
            self._parse()
        except (BTFError, ElfError):
            raise
        except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
            raise ObjectError(f"{source}: malformed object: {e}") from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ObjectSpec:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ObjectError(f"{path}: cannot read: {e.strerror}") from None
        return cls(data, source=str(path))

    # -- parsing ---------------------------------------------------------------------

    def _parse(self) -> None:
        elf = self.elf
        secs = elf.sections
        by_name = {s.name: s for s in secs}
        if ".BTF" in by_name:
            self.btf = Spec(bytes(elf.section_data(by_name[".BTF"])), source=f"{self.source}:.BTF")
        if ".BTF.ext" in by_name and self.btf is not None:
            btf = self.btf
            self.btf_ext = parse_btf_ext(bytes(elf.section_data(by_name[".BTF.ext"])),
                                         self.endian, btf.string, source=self.source)
        if "license" in by_name:
            self.license = bytes(elf.section_data(by_name["license"])).split(b"\0")[0].decode(
                "utf-8", "replace")
        if "version" in by_name:
            v = bytes(elf.section_data(by_name["version"]))
            if len(v) != 4:
                raise ObjectError(f"{self.source}: section 'version' has {len(v)} bytes, not 4")
            self.kern_version = struct.unpack(self.endian + "I", v)[0]
        self._symbols = elf.symbols
        self._parse_programs(secs)
        self._parse_data_sections(secs)
        self._parse_btf_maps(by_name.get(MAPS_SEC))
        self._parse_legacy_maps(by_name.get(LEGACY_MAPS_SEC))
        self._parse_externs()
        self._parse_relocations(secs)
        self._attach_btf_ext()

    def _parse_programs(self, secs: list[Section]) -> None:
        for sec in secs:
            if not (sec.type == SHT_PROGBITS and sec.flags & SHF_EXECINSTR) or not sec.size:
                continue
            if sec.size % INSN_SIZE:
                raise ObjectError(f"{self.source}: section {sec.name!r} size {sec.size} is not "
                                  f"a multiple of {INSN_SIZE}")
            data = bytes(self.elf.section_data(sec))
            is_text = sec.name == ".text"
            sec_name = sec.name[1:] if sec.name.startswith("?") else sec.name
            sdef = None if is_text else section_def(sec_name)
            funcs = sorted(
                (s for s in self._symbols if s.shndx == sec.index and s.type == STT_FUNC),
                key=lambda s: s.value,
            )
            for sym in funcs:
                if sym.value % INSN_SIZE or sym.size % INSN_SIZE or sym.size == 0:
                    raise ObjectError(f"{self.source}: program {sym.name!r} in {sec.name!r} at "
                                      f"offset {sym.value:#x} size {sym.size} is misaligned")
                if sym.value + sym.size > len(data):
                    raise ObjectError(f"{self.source}: program {sym.name!r} runs past the end of "
                                      f"section {sec.name!r}")
                if sym.name in self.programs:
                    raise ObjectError(f"{self.source}: duplicate program name {sym.name!r}")
                self.programs[sym.name] = ProgramSpec(
                    name=sym.name,
                    section=sec_name,
                    section_index=sec.index,
                    offset=sym.value,
                    insns=data[sym.value:sym.value + sym.size],
                    section_def=sdef,
                    is_subprog=is_text,
                    global_func=sym.bind != 0,
                    autoload=not sec.name.startswith("?"),
                    elf_section=sec.name,
                )

    def _parse_data_sections(self, secs: list[Section]) -> None:
        btf = self.btf
        for sec in secs:
            if not sec.name.startswith(DATA_PREFIXES) or sec.flags & SHF_EXECINSTR:
                continue
            if sec.type not in (SHT_PROGBITS, SHT_NOBITS):
                continue
            name = sec.name
            if not any(name == p or name.startswith(p + ".") for p in DATA_PREFIXES):
                continue
            # .bss holds no bytes in the file: its contents stay empty (zeros), so a size
            # field claiming gigabytes costs nothing here; the kernel refuses the map
            if sec.size > 0xFFFF_FFFF:  # a map value's size is a u32
                raise ObjectError(f"{self.source}: section {name!r}: {sec.size} bytes do "
                                  "not fit a map value (at most 4294967295)")
            contents = b"" if sec.type == SHT_NOBITS else bytes(self.elf.section_data(sec))
            read_only = name.startswith(".rodata")
            m = MapSpec(
                name=self._internal_map_name(name),
                type=MAP_TYPE_ARRAY,
                key_size=4,
                value_size=sec.size,
                max_entries=1,
                flags=(MAP_F_RDONLY_PROG if read_only else 0) | MAP_F_MMAPABLE,
                section=name,
                section_index=sec.index,
                contents=contents,
                is_data=True,
                read_only=read_only,
            )
            syms = {s.name: s for s in self._symbols if s.shndx == sec.index
                    and s.type != STT_SECTION and s.name}
            if btf is not None:
                ids = btf.find_by_name(name, bt.Kind.DATASEC)
                if ids:
                    m.value_type_id = ids[0]
                    ds = btf.type(ids[0])
                    assert isinstance(ds, bt.Datasec)
                    for vsi in ds.vars:
                        var = btf.type(vsi.type)
                        if not isinstance(var, bt.Var):
                            continue
                        sym = syms.get(var.name)
                        # clang leaves offsets to the loader: the symbol value is the truth
                        off = sym.value if sym is not None else vsi.offset
                        if off + vsi.size > sec.size:
                            raise ObjectError(f"{self.source}: variable {var.name!r} at "
                                              f"offset {off} ({vsi.size} bytes) lies outside "
                                              f"section {name!r} ({sec.size} bytes)")
                        m.variables.append(VariableSpec(var.name, off, vsi.size, var.type,
                                                        var.linkage))
            self.maps[m.name] = m

    def _internal_map_name(self, section: str) -> str:
        """libbpf's name for a data section map: "execsnoo.rodata", ".rodata.custom"."""
        name_len = 16  # BPF_OBJ_NAME_LEN, NUL included
        sfx_len = min(max(7, len(section)), name_len - 1)
        pfx_len = 0 if "." in section[1:] else min(name_len - sfx_len - 1, len(self.name))
        raw = (self.name[:pfx_len] + section[:sfx_len])[: name_len - 1]
        return "".join(c if c.isalnum() or c in "_." else "_" for c in raw)

    def _map_def_field(self, member_type: int) -> int:
        """``__uint(name, N)`` is ``int (*name)[N]``: the value is the array's length."""
        assert self.btf is not None
        btf = self.btf
        ptr = btf.type(btf.skip_modifiers(member_type))
        if not isinstance(ptr, bt.Pointer):
            raise ObjectError(f"{self.source}: map attribute is not a pointer to an array")
        arr = btf.type(btf.resolve(ptr.type))
        if not isinstance(arr, bt.Array):
            raise ObjectError(f"{self.source}: map attribute is not a pointer to an array")
        return arr.nelems

    def _parse_btf_map_def(self, name: str, def_id: int, *, inner_of: str = "") -> MapSpec:
        assert self.btf is not None
        btf = self.btf
        t = btf.type(btf.resolve(def_id))
        if not isinstance(t, bt.Struct):
            raise ObjectError(f"{self.source}: map {name!r}: definition is a {t.kind.name}, "
                              "not a struct")
        m = MapSpec(name=name, section=MAPS_SEC, def_type_id=def_id)
        for mem in t.members:
            n = mem.name
            if n == "type":
                m.type = self._map_def_field(mem.type)
            elif n == "max_entries":
                m.max_entries = self._map_def_field(mem.type)
            elif n == "map_flags":
                m.flags = self._map_def_field(mem.type)
            elif n == "numa_node":
                m.numa_node = self._map_def_field(mem.type)
            elif n == "key_size":
                m.key_size = self._map_def_field(mem.type)
            elif n == "value_size":
                m.value_size = self._map_def_field(mem.type)
            elif n == "pinning":
                m.pinning = self._map_def_field(mem.type)
            elif n == "map_extra":
                m.map_extra = self._map_def_field(mem.type)
            elif n in ("key", "value"):
                ptr = btf.type(btf.skip_modifiers(mem.type))
                if not isinstance(ptr, bt.Pointer):
                    raise ObjectError(f"{self.source}: map {name!r}: {n} is not a pointer")
                size = btf.size_of(ptr.type)
                if n == "key":
                    m.key_type_id, m.key_size = ptr.type, size
                else:
                    m.value_type_id, m.value_size = ptr.type, size
            elif n == "values":
                arr = btf.type(btf.resolve(mem.type))
                if not isinstance(arr, bt.Array):
                    raise ObjectError(f"{self.source}: map {name!r}: values is not an array")
                if m.type == MAP_TYPE_PROG_ARRAY:
                    m.value_size = 4
                    continue
                ptr = btf.type(btf.skip_modifiers(arr.type))
                if not isinstance(ptr, bt.Pointer):
                    raise ObjectError(f"{self.source}: map {name!r}: values must be pointers")
                if inner_of:
                    raise ObjectError(f"{self.source}: map {inner_of!r}: nested map-in-map")
                m.inner = self._parse_btf_map_def(f"{name}.inner", ptr.type, inner_of=name)
                m.value_size = 4
            else:
                raise ObjectError(f"{self.source}: map {name!r}: unknown attribute {n!r}")
        return m

    def _parse_btf_maps(self, sec: Section | None) -> None:
        if sec is None:
            return
        if self.btf is None:
            raise ObjectError(f"{self.source}: BTF-defined maps ('.maps') need a .BTF section")
        btf = self.btf
        ids = btf.find_by_name(MAPS_SEC, bt.Kind.DATASEC)
        if not ids:
            raise ObjectError(f"{self.source}: no DATASEC '.maps' in BTF")
        ds = btf.type(ids[0])
        assert isinstance(ds, bt.Datasec)
        syms = {s.name: s for s in self._symbols if s.shndx == sec.index and s.name}
        for vsi in ds.vars:
            var = btf.type(vsi.type)
            if not isinstance(var, bt.Var):
                raise ObjectError(f"{self.source}: '.maps' entry [{vsi.type}] is not a VAR")
            m = self._parse_btf_map_def(var.name, var.type)
            sym = syms.get(var.name)
            m.section_index = sec.index
            m.section_offset = sym.value if sym is not None else vsi.offset
            m.def_size = sym.size if sym is not None and sym.size else vsi.size
            self.maps[m.name] = m

    def _parse_legacy_maps(self, sec: Section | None) -> None:
        if sec is None:
            return
        data = bytes(self.elf.section_data(sec))
        syms = [s for s in self._symbols if s.shndx == sec.index and s.name
                and s.type != STT_SECTION]
        if not syms:
            return
        size = len(data) // len(syms)
        if size < 20 or len(data) % len(syms):
            raise ObjectError(f"{self.source}: legacy 'maps' section: {len(syms)} maps in "
                              f"{len(data)} bytes")
        for s in syms:
            if s.value + 20 > len(data):
                raise ObjectError(f"{self.source}: legacy map {s.name!r} past the section end")
            mt, ks, vs, me, fl = struct.unpack_from(self.endian + "IIIII", data, s.value)
            self.maps[s.name] = MapSpec(name=s.name, type=mt, key_size=ks, value_size=vs,
                                        max_entries=me, flags=fl, section=LEGACY_MAPS_SEC,
                                        section_index=sec.index, section_offset=s.value)

    def _parse_externs(self) -> None:
        btf = self.btf
        undefined = [s for s in self._symbols if s.shndx == SHN_UNDEF and s.name and s.index]
        if not undefined:
            return
        if btf is None:
            raise ObjectError(f"{self.source}: extern {undefined[0].name!r} needs BTF")
        for sec_name, kind in ((KCONFIG_SEC, "kconfig"), (KSYMS_SEC, "ksym")):
            for ds_id in btf.find_by_name(sec_name, bt.Kind.DATASEC):
                ds = btf.type(ds_id)
                assert isinstance(ds, bt.Datasec)
                for vsi in ds.vars:
                    t = btf.type(vsi.type)
                    sym = next((s for s in undefined if s.name == t.name), None)
                    weak = sym is not None and sym.bind == STB_WEAK
                    if t.name not in {u.name for u in undefined}:
                        continue
                    if isinstance(t, bt.Func):
                        self.externs[t.name] = ExternSpec(t.name, kind, vsi.type, weak, True,
                                                          t.type, vsi.offset)
                    elif isinstance(t, bt.Var):
                        target = btf.skip_modifiers(t.type)
                        self.externs[t.name] = ExternSpec(t.name, kind, vsi.type, weak, False,
                                                          target, vsi.offset)
        for s in undefined:
            if s.name in self.externs:
                continue
            # an extern function declared without a .ksyms datasec entry (e.g. __weak kfunc)
            fids = btf.find_by_name(s.name, bt.Kind.FUNC)
            if fids:
                f = btf.type(fids[0])
                assert isinstance(f, bt.Func)
                self.externs[s.name] = ExternSpec(s.name, "ksym", fids[0], s.bind == STB_WEAK,
                                                  True, f.type)
                continue
            raise ObjectError(f"{self.source}: extern symbol {s.name!r} has no BTF "
                              "(.kconfig/.ksyms) declaration")

    def _parse_relocations(self, secs: list[Section]) -> None:
        progs_by_sec: dict[int, list[ProgramSpec]] = {}
        for p in self.programs.values():
            progs_by_sec.setdefault(p.section_index, []).append(p)
        maps_by_loc = {(m.section_index, m.section_offset): m for m in self.maps.values()
                       if not m.is_data}
        data_by_sec = {m.section_index: m for m in self.maps.values() if m.is_data}
        text = next((s.index for s in secs if s.name == ".text"), -1)
        for rs in secs:
            if rs.type != SHT_REL:
                continue
            if not 0 <= rs.info < len(secs):
                raise ObjectError(f"{self.source}: relocation section {rs.name!r} targets bad "
                                  f"section {rs.info}")
            target = secs[rs.info]
            if target.name == MAPS_SEC:
                self._parse_map_init_relocations(rs, target)
                continue
            if target.index not in progs_by_sec:
                continue  # .BTF, .BTF.ext, debug info
            data = self.elf.section_data(target)
            for r in self.elf.relocations(rs):
                if r.symbol >= len(self._symbols):
                    raise ObjectError(f"{self.source}: relocation in {rs.name!r} at "
                                      f"{r.offset:#x} names missing symbol #{r.symbol}")
                sym = self._symbols[r.symbol]
                if r.offset % INSN_SIZE or r.offset + INSN_SIZE > len(data):
                    raise ObjectError(f"{self.source}: relocation in {rs.name!r} at offset "
                                      f"{r.offset:#x} is not on an instruction")
                prog = next((p for p in progs_by_sec[target.index]
                             if p.offset <= r.offset < p.offset + len(p.insns)), None)
                if prog is None:
                    raise ObjectError(f"{self.source}: relocation in {rs.name!r} at offset "
                                      f"{r.offset:#x} is outside every program")
                code, regs = data[r.offset], data[r.offset + 1]
                src = (regs >> 4) if self.endian == "<" else (regs & 0xF)
                prog.relocations.append(self._classify(prog, r.offset, code, src, sym,
                                                       maps_by_loc, data_by_sec, text))

    def _parse_map_init_relocations(self, rs: Section, maps_sec: Section) -> None:
        """Relocations in '.maps' fill map-in-map and prog_array ``values`` slots."""
        assert self.btf is not None
        btf = self.btf
        btf_maps = [m for m in self.maps.values() if m.section == MAPS_SEC]
        for n, r in enumerate(self.elf.relocations(rs)):
            where = f"{self.source}: .maps relo #{n}"
            if r.symbol >= len(self._symbols):
                raise ObjectError(f"{where}: symbol #{r.symbol} not found")
            sym = self._symbols[r.symbol]
            outer = next((m for m in btf_maps if m.section_offset <= r.offset
                          and r.offset + 8 <= m.section_offset + m.def_size),
                         None)
            if outer is None:
                raise ObjectError(f"{where}: cannot find map '{sym.name}' at offset "
                                  f"{r.offset}")
            if outer.type in (MAP_TYPE_ARRAY_OF_MAPS, MAP_TYPE_HASH_OF_MAPS):
                if sym.shndx != maps_sec.index or sym.name not in self.maps:
                    raise ObjectError(f"{where}: '{sym.name}' isn't a BTF-defined map")
            elif outer.type == MAP_TYPE_PROG_ARRAY:
                prog = self.programs.get(sym.name)
                if prog is None or prog.is_subprog or prog.offset != sym.value:
                    raise ObjectError(f"{where}: '{sym.name}' isn't an entry-point program")
            else:
                raise ObjectError(f"{where}: map '{outer.name}' cannot hold initial values")
            d = btf.type(btf.resolve(outer.def_type_id))
            if not isinstance(d, bt.Struct) or not d.members or d.members[-1].name != "values":
                raise ObjectError(f"{where}: map '{outer.name}' has no trailing 'values'")
            moff = r.offset - outer.section_offset - d.members[-1].offset // 8
            if moff < 0 or moff % 8:
                raise ObjectError(f"{where}: misaligned slot in map '{outer.name}'")
            outer.initial_values[moff // 8] = sym.name

    def _classify(self, prog: ProgramSpec, off: int, code: int, src: int, sym: Symbol,
                  maps_by_loc: dict[tuple[int, int], MapSpec],
                  data_by_sec: dict[int, MapSpec], text: int) -> Relocation:
        insn = (off - prog.offset) // INSN_SIZE
        where = f"{self.source}: program {prog.name!r} insn {insn}"
        if code not in (BPF_LD_IMM64, BPF_CALL):
            raise ObjectError(f"{where}: relocation against {sym.name!r} on a non-ld_imm64/"
                              f"call instruction (opcode {code:#04x})")
        if sym.shndx == SHN_UNDEF:
            if sym.name not in self.externs:
                raise ObjectError(f"{where}: relocation against unknown extern {sym.name!r}")
            kind = RelocType.EXTERN_CALL if code == BPF_CALL else RelocType.EXTERN_LD64
            return Relocation(insn, kind, sym.name, sym.name)
        if code == BPF_CALL:
            if src != BPF_PSEUDO_CALL:
                raise ObjectError(f"{where}: relocation on a helper call")
            if sym.shndx != text:
                raise ObjectError(f"{where}: call to {sym.name!r} outside .text")
            return Relocation(insn, RelocType.CALL, sym.name, "", sym.value)
        if sym.type == STT_FUNC or (src == BPF_PSEUDO_FUNC):
            return Relocation(insn, RelocType.SUBPROG_ADDR, sym.name, "", sym.value)
        m = maps_by_loc.get((sym.shndx, sym.value))
        if m is not None:
            return Relocation(insn, RelocType.LD64, sym.name, m.name, sym.value)
        dm = data_by_sec.get(sym.shndx)
        if dm is not None:
            return Relocation(insn, RelocType.DATA, sym.name, dm.name, sym.value)
        raise ObjectError(f"{where}: relocation against {sym.name!r} in section "
                          f"#{sym.shndx}, which is neither a map nor global data")

    def _attach_btf_ext(self) -> None:
        ext = self.btf_ext
        if ext is None:
            return
        by_sec: dict[str, list[ProgramSpec]] = {}
        for p in self.programs.values():
            by_sec.setdefault(p.elf_section, []).append(p)

        def owner(sec: str, off: int, what: str) -> ProgramSpec:
            for p in by_sec.get(sec, []):
                if p.offset <= off < p.offset + len(p.insns):
                    return p
            raise ObjectError(f"{self.source}: .BTF.ext {what} record for section {sec!r} at "
                              f"instruction offset {off:#x} lies outside every program")

        for sec, fis in ext.func_info.items():
            for fi in fis:
                p = owner(sec, fi.insn_off, "func_info")
                p.func_info.append(FuncInfo(fi.insn_off - p.offset, fi.type_id))
        for sec, lis in ext.line_info.items():
            for li in lis:
                p = owner(sec, li.insn_off, "line_info")
                p.line_info.append(LineInfo(li.insn_off - p.offset, li.file_name_off,
                                            li.line_off, li.line_col))
        for sec, crs in ext.core_relos.items():
            for cr in crs:
                if cr.insn_off % INSN_SIZE:
                    raise ObjectError(f"{self.source}: CO-RE relo #{cr.index} in {sec!r}: "
                                      f"instruction offset {cr.insn_off} is not aligned")
                p = owner(sec, cr.insn_off, f"CO-RE relo #{cr.index}")
                p.core_relos.append(CoreRelo(cr.insn_off - p.offset, cr.type_id,
                                             cr.access_str_off, cr.kind, cr.index))

    # -- queries ---------------------------------------------------------------------

    def entry_programs(self) -> list[ProgramSpec]:
        return [p for p in self.programs.values() if not p.is_subprog]


def _kconfig_type_ok(btf: Spec, type_id: int, *, in_array: bool = False) -> bool:
    """libbpf's find_kcfg_type: a 1-byte bool, a 1-byte integer (a char), an integer of
    2, 4 or 8 bytes, the enum ``libbpf_tristate``, or a non-empty array of chars."""
    t = btf.type(btf.resolve(type_id))
    if isinstance(t, bt.Int):
        if t.encoding & bt.IntEncoding.BOOL:
            return not in_array and t.size == 1
        return t.size == 1 or (not in_array and t.size in (2, 4, 8))
    if isinstance(t, bt.Enum | bt.Enum64):
        return not in_array and t.name == "libbpf_tristate" and \
            (t.size == 4 or isinstance(t, bt.Enum64))
    if isinstance(t, bt.Array):
        return not in_array and t.nelems > 0 and \
            _kconfig_type_ok(btf, t.type, in_array=True)
    return False


def kconfig_layout(obj: ObjectSpec) -> tuple[dict[str, tuple[int, int]], int]:
    """Where the loader puts each .kconfig extern in the .kconfig map, and its size:
    (name -> (offset, size), total), natural alignment in declaration order as libbpf."""
    btf = obj.btf
    layout: dict[str, tuple[int, int]] = {}
    off = 0
    if btf is None:
        return layout, 0
    for ext in obj.externs.values():
        if ext.kind != "kconfig":
            continue
        if not _kconfig_type_ok(btf, ext.target_type_id):
            raise ObjectError(f"{obj.source}: .kconfig extern {ext.name!r}: type "
                              f"[{ext.target_type_id}] is unsupported (a bool, char, "
                              "integer of 2, 4 or 8 bytes, libbpf_tristate or array of "
                              "char)")
        size = btf.size_of(ext.target_type_id)
        align = min(btf.align_of(ext.target_type_id), 8)
        off = (off + align - 1) // align * align
        layout[ext.name] = (off, size)
        off += size
    return layout, off
