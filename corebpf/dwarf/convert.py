"""DWARF to BTF, through pyelftools.

Every type DIE of every compile unit becomes BTF (lazily, so references and cycles come
out right), every defined function a FUNC + FUNC_PROTO, every global variable with a
static address a VAR in the DATASEC of its ELF section. The compile units' copies of the
same type are then merged by structural equality (see :func:`_dedup`).

Deliberate differences from pahole: 2-D arrays stay arrays of arrays (a CO-RE access
``p->m[1][2]`` needs both dimensions), floating point is FLOAT, C++ references are PTR
and classes STRUCT, global variables are emitted.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO

from elftools.common.exceptions import DWARFError as PyelftoolsDWARFError
from elftools.common.exceptions import ELFError, ELFParseError
from elftools.dwarf.compileunit import CompileUnit
from elftools.dwarf.die import DIE
from elftools.dwarf.typeunit import TypeUnit
from elftools.elf.elffile import ELFFile

from ..btf.spec import Spec
from ..btf.types import (
    Array,
    Const,
    Datasec,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncLinkage,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Member,
    Param,
    Pointer,
    Restrict,
    Struct,
    Type,
    Typedef,
    Union,
    Var,
    VarLinkage,
    VarSecinfo,
    Volatile,
    referenced_ids,
)
from ..btf.writer import Builder
from ..errors import BTFError, DWARFError, Error

# DW_ATE_* base type encodings
_ATE_BOOLEAN = 0x02
_ATE_COMPLEX_FLOAT = 0x03
_ATE_FLOAT = 0x04
_ATE_SIGNED = 0x05
_ATE_SIGNED_CHAR = 0x06
_ATE_SIGNED_FIXED = 0x0D

# DW_OP_* that a global variable's location may consist of
_OP_ADDR = 0x03
_OP_ADDRX = 0xA1
_OP_GNU_ADDR_INDEX = 0xFB
_OP_PLUS_UCONST = 0x23

_FLOAT_SIZES = frozenset({2, 4, 8, 12, 16})
_SCOPE_TAGS = frozenset({"DW_TAG_compile_unit", "DW_TAG_partial_unit", "DW_TAG_namespace",
                         "DW_TAG_module", "DW_TAG_type_unit"})
_COMPOSITE_TAGS = {"DW_TAG_structure_type": False, "DW_TAG_class_type": False,
                   "DW_TAG_interface_type": False, "DW_TAG_union_type": True}
_POINTER_TAGS = frozenset({"DW_TAG_pointer_type", "DW_TAG_reference_type",
                           "DW_TAG_rvalue_reference_type"})
# qualifiers BTF has no kind for: the qualified type itself
_TRANSPARENT_TAGS = frozenset({"DW_TAG_atomic_type", "DW_TAG_shared_type",
                               "DW_TAG_packed_type"})
_TYPE_TAGS = frozenset({
    "DW_TAG_base_type", "DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type",
    "DW_TAG_restrict_type", "DW_TAG_immutable_type", "DW_TAG_enumeration_type",
    "DW_TAG_array_type", "DW_TAG_subroutine_type", "DW_TAG_unspecified_type",
    "DW_TAG_ptr_to_member_type", *_COMPOSITE_TAGS, *_POINTER_TAGS, *_TRANSPARENT_TAGS,
})
_MAX_CHAIN = 16  # abstract_origin/specification hops, and size lookups through typedefs


def btf_from_dwarf(path_or_bytes: str | os.PathLike[str] | bytes, *,
                   base: Spec | None = None) -> bytes:
    stream: IO[bytes]
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        stream = io.BytesIO(path_or_bytes)
        source = "<bytes>"
    else:
        source = os.fspath(path_or_bytes)
        try:
            stream = open(source, "rb")  # closed by the with below
        except OSError as e:
            raise DWARFError(f"{source}: cannot read: {e.strerror or e}") from None
    try:
        with stream:  # pyelftools reads only the sections it needs
            conv = _Converter(stream, source)
            conv.run()
            return _emit(conv, base)
    except OSError as e:
        raise DWARFError(f"{source}: cannot read: {e.strerror or e}") from None
    except DWARFError as e:
        if str(e).startswith(source):
            raise
        raise DWARFError(f"{source}: {e}") from None
    except BTFError as e:  # a DWARF value BTF cannot hold (a 2^24-bit member offset, ...)
        raise DWARFError(f"{source}: {e}") from None
    except Error:
        raise
    except RecursionError:
        raise DWARFError(f"{source}: DWARF nests too deeply (damaged?)") from None
    except (ELFError, ELFParseError, PyelftoolsDWARFError) as e:
        if "compression type" in str(e):  # zstd (-gz=zstd): pyelftools reads only zlib
            raise DWARFError(f"{source}: debug sections compressed in a way pyelftools "
                             f"cannot read ({e}): decompress them first with "
                             "`objcopy --decompress-debug-sections`") from None
        if "relocation type" in str(e):
            raise DWARFError(f"{source}: pyelftools cannot apply this object file's "
                             f"relocations to its DWARF ({e}): give the linked executable "
                             "or shared library") from None
        raise DWARFError(f"{source}: damaged ELF or DWARF: {e}") from None
    except Exception as e:
        # pyelftools reports truncated or inconsistent sections as whatever its parsers
        # trip over (KeyError, struct errors, IndexError, ...): never a traceback.
        raise DWARFError(f"{source}: damaged DWARF ({type(e).__name__}: {e})") from None


class _Converter:
    """One ELF file's DWARF as a list of BTF types (local ids, before dedup)."""

    def __init__(self, stream: IO[bytes], source: str):
        self.source = source
        self.elf = ELFFile(stream)
        if not self.elf.has_dwarf_info(strict=True):
            raise DWARFError(f"{source}: no DWARF debug information (.debug_info); "
                             "build it with -g")
        self.dwarf = self.elf.get_dwarf_info(follow_links=False)
        self.little = self.elf.little_endian
        self.types: list[Type | None] = [None]  # local ids; 0 is void
        self.memo: dict[int, int] = {}
        self.sigs: dict[int, CompileUnit] = {}
        self.pending: list[tuple[int, DIE]] = []  # (PTR id, DIE of its target)
        self.vars: list[tuple[int, str, int]] = []  # (VAR id, section, offset)
        self._index_type = 0
        self.section_sizes = {s.name: int(s["sh_size"]) for s in self.elf.iter_sections()}
        self._sections = [
            (s.name, s["sh_addr"], s["sh_size"])
            for s in self.elf.iter_sections()
            if s["sh_flags"] & 0x2 and s["sh_type"] != "SHT_NULL"  # SHF_ALLOC
        ]
        self._section_names = [s.name for s in self.elf.iter_sections()]
        self._symbols: dict[str, tuple[str, int]] | None = None

    def err(self, die: DIE, msg: str) -> DWARFError:
        name = _attr_value(die, "DW_AT_name")
        what = f"{die.tag} {name.decode(errors='replace') if isinstance(name, bytes) else ''}"
        return DWARFError(f"{self.source}: DIE {die.offset:#x} ({what.strip()}): {msg}")

    # --- walking ---

    def run(self) -> None:
        seen_vars: set[tuple[str, int]] = set()
        cus = list(self.dwarf.iter_CUs())
        self.sigs = {int(u["type_signature"]): u for u in cus
                     if u.header.get("unit_type") in ("DW_UT_type", "DW_UT_split_type")}
        units: list[CompileUnit | TypeUnit] = [*cus]
        if self.dwarf.has_debug_types():
            units += self.dwarf.iter_TUs()
        for cu in units:
            top = cu.get_top_DIE()
            if top.tag == "DW_TAG_skeleton_unit" or "DW_AT_GNU_dwo_name" in top.attributes \
                    or "DW_AT_dwo_name" in top.attributes:
                raise DWARFError(f"{self.source}: split DWARF (-gsplit-dwarf): the types are "
                                 "in .dwo files, which from-dwarf does not read; build "
                                 "without -gsplit-dwarf")
            stack: list[Iterator[DIE]] = [_children(top)]
            scope: list[bool] = [True]  # whether the DIEs of this level are global scope
            while stack:
                die = next(stack[-1], None)
                if die is None:
                    stack.pop()
                    scope.pop()
                    continue
                tag = die.tag
                if tag in _TYPE_TAGS:
                    self.type_id(die)
                elif tag == "DW_TAG_subprogram":
                    self.func(die)
                elif tag == "DW_TAG_variable" and scope[-1]:
                    self.var(die, seen_vars)
                self.resolve_pointers()
                # not into function bodies: with DW_AT_sibling (gcc) pyelftools then
                # never parses them (their local types come in when referenced)
                if die.has_children and (tag in _SCOPE_TAGS or tag in _COMPOSITE_TAGS):
                    stack.append(_children(die))
                    scope.append(tag in _SCOPE_TAGS)

    def add(self, t: Type | None) -> int:
        self.types.append(t)
        return len(self.types) - 1

    def ref(self, die: DIE, attr: str = "DW_AT_type") -> int:
        """The BTF id of the type ``die`` refers to (0, void, when none)."""
        if attr not in die.attributes:
            return 0
        return self.type_id(self.deref(die, attr))

    # --- types ---

    def type_id(self, die: DIE) -> int:
        # DWARF 4 type units are in .debug_types: their offsets overlap .debug_info's
        key = ~die.offset if isinstance(die.cu, TypeUnit) else die.offset
        tid = self.memo.get(key)
        if tid is not None:
            return tid
        tag = die.tag
        if tag in _TRANSPARENT_TAGS:
            # no id of its own; a self-referencing chain ends in void
            self.memo[key] = 0
            tid = self.ref(die)
            self.memo[key] = tid
            return tid
        if tag not in _TYPE_TAGS or tag == "DW_TAG_unspecified_type":
            self.memo[key] = 0  # void, nullptr_t, and kinds BTF cannot say
            return 0
        # reserve the id first: members and pointers may lead back here
        tid = self.add(None)
        self.memo[key] = tid
        self.types[tid] = self.build(die, tag)
        return tid

    def build(self, die: DIE, tag: str) -> Type:
        name = _name(die)
        if tag == "DW_TAG_base_type":
            return self.base_type(die, name)
        if tag in _POINTER_TAGS:
            # resolved later (resolve_pointers): following pointers depth-first would
            # recurse once per struct of a long linked chain
            if "DW_AT_type" in die.attributes:
                self.pending.append((len(self.types) - 1, self.deref(die, "DW_AT_type")))
            return Pointer(0)
        if tag == "DW_TAG_ptr_to_member_type":
            return Pointer(0)
        if tag == "DW_TAG_typedef":
            return Typedef(name, self.ref(die))
        if tag in ("DW_TAG_const_type", "DW_TAG_immutable_type"):
            return Const(self.ref(die))
        if tag == "DW_TAG_volatile_type":
            return Volatile(self.ref(die))
        if tag == "DW_TAG_restrict_type":
            return Restrict(self.ref(die))
        if tag in _COMPOSITE_TAGS:
            return self.composite(die, name, _COMPOSITE_TAGS[tag])
        if tag == "DW_TAG_enumeration_type":
            return self.enum(die, name)
        if tag == "DW_TAG_array_type":
            return self.array(die)
        if tag == "DW_TAG_subroutine_type":
            return self.proto(die, die)
        raise self.err(die, "unexpected type tag")  # pragma: no cover - _TYPE_TAGS

    def base_type(self, die: DIE, name: str) -> Type:
        size = _int_attr(die, "DW_AT_byte_size", 0)
        enc = _int_attr(die, "DW_AT_encoding", 0)
        bits = _int_attr(die, "DW_AT_bit_size", size * 8)
        if enc == _ATE_FLOAT and size in _FLOAT_SIZES:
            return Float(name, size)
        if enc == _ATE_COMPLEX_FLOAT and size // 2 in _FLOAT_SIZES:
            part = self.add(Float(name, size // 2))
            return Array(part, self.index_type(), 2)
        if not 0 < size <= 16 or not 0 < bits <= size * 8:
            # BTF's INT stops at 128 bits: bytes, so that sizes and offsets still hold
            byte = self.add(Int("unsigned char", 1, 0, 0, 8))
            return Array(byte, self.index_type(), max(size, 0))
        # no BTF_INT_CHAR: neither pahole nor the kernel's own BTF sets it, and a char
        # must equal the base's to be deduplicated against it
        if enc in (_ATE_SIGNED, _ATE_SIGNED_CHAR, _ATE_SIGNED_FIXED):
            encoding = IntEncoding.SIGNED
        elif enc == _ATE_BOOLEAN:
            encoding = IntEncoding.BOOL
        else:
            encoding = IntEncoding.NONE
        return Int(name, size, int(encoding), 0, bits)

    def resolve_pointers(self) -> None:
        while self.pending:
            tid, target = self.pending.pop()
            self.types[tid] = Pointer(self.type_id(target))

    def index_type(self) -> int:
        if not self._index_type:
            self._index_type = self.add(Int("int", 4, int(IntEncoding.SIGNED), 0, 32))
        return self._index_type

    def composite(self, die: DIE, name: str, is_union: bool) -> Type:
        if "DW_AT_declaration" in die.attributes or "DW_AT_byte_size" not in die.attributes:
            if "DW_AT_declaration" in die.attributes or not die.has_children:
                return Fwd(name, is_union)
        size = _int_attr(die, "DW_AT_byte_size", 0)
        members: list[Member] = []
        for child in _children(die):
            if child.tag not in ("DW_TAG_member", "DW_TAG_inheritance"):
                continue  # methods, static members (DWARF 5), template parameters
            if "DW_AT_declaration" in child.attributes:
                continue  # a static member (DWARF 4)
            members.append(self.member(child))
        kflag = any(m.bitfield_size for m in members)
        cls = Union if is_union else Struct
        return cls(name, size, members, kflag)

    def member(self, die: DIE) -> Member:
        mtype = self.ref(die)
        byte_off = 0
        loc = die.attributes.get("DW_AT_data_member_location")
        if loc is not None:
            byte_off = self.location_offset(die, loc.value)
        bit_size = _int_attr(die, "DW_AT_bit_size", 0)
        if "DW_AT_data_bit_offset" in die.attributes:
            offset = _int_attr(die, "DW_AT_data_bit_offset", 0)
        elif bit_size and "DW_AT_bit_offset" in die.attributes:
            # DWARF 2/3 form: bits from the most significant end of a storage unit
            bit_offset = _int_attr(die, "DW_AT_bit_offset", 0)
            storage = _int_attr(die, "DW_AT_byte_size", 0) or self.size_of(mtype)
            if self.little:
                offset = byte_off * 8 + storage * 8 - bit_offset - bit_size
            else:
                offset = byte_off * 8 + bit_offset
        else:
            offset = byte_off * 8
        if not 0 <= offset < 1 << 32 or not 0 <= bit_size < 256:
            raise self.err(die, f"member bit offset {offset} / bit size {bit_size} "
                           "out of range")
        return Member(_name(die), mtype, offset, bit_size)

    def location_offset(self, die: DIE, value: object) -> int:
        if isinstance(value, int):
            return value
        if isinstance(value, list) and value and value[0] == _OP_PLUS_UCONST:
            off, _ = _uleb(value, 1)
            return off
        raise self.err(die, "member location is not a constant offset")

    def enum(self, die: DIE, name: str) -> Type:
        size = _int_attr(die, "DW_AT_byte_size", 4) or 4
        signed: bool | None = None
        if "DW_AT_type" in die.attributes:
            under = self.strip_to_base(self.deref(die, "DW_AT_type"))
            if under is not None:
                signed = _int_attr(under, "DW_AT_encoding", 0) in (
                    _ATE_SIGNED, _ATE_SIGNED_CHAR, _ATE_SIGNED_FIXED)
        raw: list[tuple[str, int, str]] = []
        for child in _children(die):
            if child.tag != "DW_TAG_enumerator":
                continue
            attr = child.attributes.get("DW_AT_const_value")
            if attr is None or not isinstance(attr.value, int):
                raise self.err(child, "enumerator without a constant value")
            raw.append((_name(child), attr.value, attr.form))
        if signed is None:
            signed = any(v < 0 for _, v, _ in raw)
        values = []
        for vname, v, form in raw:
            width = {"DW_FORM_data1": 8, "DW_FORM_data2": 16, "DW_FORM_data4": 32,
                     "DW_FORM_data8": 64}.get(form)
            if signed and width and v >= 1 << (width - 1):
                v -= 1 << width  # the fixed-size forms carry the bits, not the sign
            values.append(EnumValue(vname, v))
        if size > 4:
            return Enum64(name, size, values, signed)
        return Enum(name, size, values, signed)

    def array(self, die: DIE) -> Type:
        dims: list[int] = []
        for child in _children(die):
            if child.tag == "DW_TAG_subrange_type":
                dims.append(self.subrange_count(child))
            elif child.tag == "DW_TAG_enumeration_type":
                dims.append(sum(1 for c in _children(child)
                                if c.tag == "DW_TAG_enumerator"))
        if not dims:
            dims = [0]
        elem = self.ref(die)
        index = self.index_type()
        # one BTF array per dimension, innermost first: int m[2][3] is 2 x (3 x int)
        for n in reversed(dims[1:]):
            elem = self.add(Array(elem, index, n))
        return Array(elem, index, dims[0])

    def subrange_count(self, die: DIE) -> int:
        count = die.attributes.get("DW_AT_count")
        if count is not None:
            ok = isinstance(count.value, int) and not count.form.startswith("DW_FORM_ref")
            return count.value if ok and 0 <= count.value < 1 << 32 else 0  # 0: a VLA
        upper = die.attributes.get("DW_AT_upper_bound")
        if upper is None or not isinstance(upper.value, int) or upper.form.startswith(
                "DW_FORM_ref"):
            return 0  # flexible or variable-length
        lower = _int_attr(die, "DW_AT_lower_bound", 0)
        n = upper.value - lower + 1
        return n if 0 <= n < 1 << 32 else 0  # upper bound -1: flexible array

    def proto(self, die: DIE, params_die: DIE) -> FuncProto:
        params: list[Param] = []
        for child in _params(params_die):
            if child.tag == "DW_TAG_formal_parameter":
                pdecl = self.follow(child, "DW_AT_type")
                params.append(Param(_name(self.follow(child, "DW_AT_name")), self.ref(pdecl)))
            elif child.tag == "DW_TAG_unspecified_parameters":
                params.append(Param("", 0))
        return FuncProto(self.ref(self.follow(die, "DW_AT_type")), params)

    def size_of(self, tid: int) -> int:
        for _ in range(_MAX_CHAIN):
            t = self.types[tid] if 0 < tid < len(self.types) else None
            if t is None:
                return 0
            if isinstance(t, Int | Float | Struct | Union | Enum | Enum64):
                return t.size
            if isinstance(t, Pointer):
                return int(self.dwarf.config.default_address_size)
            if isinstance(t, Array):
                return t.nelems * self.size_of(t.type)
            if isinstance(t, Typedef | Const | Volatile | Restrict):
                tid = t.type
                continue
            return 0
        return 0

    def deref(self, die: DIE, attr: str) -> DIE:
        """The DIE an attribute refers to, also in DWARF 5 type units (-fdebug-types-section),
        which pyelftools finds only in DWARF 4's .debug_types."""
        a = die.attributes[attr]
        if a.form == "DW_FORM_ref_sig8":
            unit = self.sigs.get(a.value)
            if unit is not None:
                return unit.get_DIE_from_refaddr(unit.cu_offset + unit["type_offset"])
        return die.get_DIE_from_attribute(attr)

    def follow(self, die: DIE, attr: str, origin_only: bool = False) -> DIE:
        """The DIE that holds ``attr``: ``die`` or one it is an instance or definition of."""
        links = ("DW_AT_abstract_origin",) if origin_only else (
            "DW_AT_abstract_origin", "DW_AT_specification")
        for _ in range(_MAX_CHAIN):
            if attr in die.attributes and not origin_only:
                return die
            for link in links:
                if link in die.attributes:
                    die = self.deref(die, link)
                    break
            else:
                return die
            if origin_only:
                return die
        return die

    def strip_to_base(self, die: DIE) -> DIE | None:
        for _ in range(_MAX_CHAIN):
            if die.tag == "DW_TAG_base_type":
                return die
            if "DW_AT_type" not in die.attributes:
                return None
            die = self.deref(die, "DW_AT_type")
        return None

    # --- functions and variables ---

    def func(self, die: DIE) -> None:
        attrs = die.attributes
        if "DW_AT_declaration" in attrs:
            return
        if not ("DW_AT_low_pc" in attrs or "DW_AT_ranges" in attrs
                or "DW_AT_entry_pc" in attrs):
            return  # an inline-only abstract instance, or a declaration
        decl = self.follow(die, "DW_AT_name")
        name = _name(decl)
        if not name:
            return
        params_die = die
        if not any(c.tag in ("DW_TAG_formal_parameter", "DW_TAG_unspecified_parameters")
                   for c in _params(die)):
            params_die = self.follow(die, "DW_AT_abstract_origin", origin_only=True)
        proto = self.add(self.proto(die, params_die))
        external = "DW_AT_external" in self.follow(die, "DW_AT_external").attributes
        self.add(Func(name, proto, FuncLinkage.GLOBAL if external else FuncLinkage.STATIC))

    def var(self, die: DIE, seen: set[tuple[str, int]]) -> None:
        attrs = die.attributes
        if "DW_AT_declaration" in attrs or "DW_AT_location" not in attrs:
            return
        loc = attrs["DW_AT_location"]
        if not isinstance(loc.value, list):
            return  # a location list: not a static address
        addr = self.static_address(die, loc.value)
        if addr is None:
            return
        name = _name(self.follow(die, "DW_AT_name"))
        if not name:
            return
        place = self.section_of(name, addr)
        if place is None or place in seen:
            return
        seen.add(place)
        vtype = self.ref(self.follow(die, "DW_AT_type"))
        external = "DW_AT_external" in self.follow(die, "DW_AT_external").attributes
        vid = self.add(Var(name, vtype, VarLinkage.GLOBAL if external else VarLinkage.STATIC))
        self.vars.append((vid, place[0], place[1]))

    def static_address(self, die: DIE, expr: list[int]) -> int | None:
        """The address of a location that is exactly DW_OP_addr / DW_OP_addrx."""
        if not expr:
            return None
        op = expr[0]
        if op == _OP_ADDR:
            size = len(expr) - 1
            if size not in (4, 8):
                return None
            return int.from_bytes(bytes(expr[1:]), "little" if self.little else "big")
        if op in (_OP_ADDRX, _OP_GNU_ADDR_INDEX):
            index, end = _uleb(expr, 1)
            if end != len(expr):
                return None
            return int(self.dwarf.get_addr(die.cu, index))
        return None  # TLS, computed, or register locations

    def section_of(self, name: str, addr: int) -> tuple[str, int] | None:
        if self.elf["e_type"] == "ET_REL":
            # object files: addresses are offsets into a section the symbol names
            if self._symbols is None:
                self._symbols = self.object_symbols()
            return self._symbols.get(name)
        for sname, start, size in self._sections:
            if start <= addr < start + size:
                return sname, addr - start
        return None

    def object_symbols(self) -> dict[str, tuple[str, int]]:
        out: dict[str, tuple[str, int]] = {}
        symtab = self.elf.get_section_by_name(".symtab")
        if symtab is None or not hasattr(symtab, "iter_symbols"):
            return out
        for sym in symtab.iter_symbols():
            if sym["st_info"]["type"] != "STT_OBJECT":
                continue
            shndx = sym["st_shndx"]
            if isinstance(shndx, int) and 0 < shndx < len(self._section_names):
                out.setdefault(sym.name, (self._section_names[shndx], int(sym["st_value"])))
        return out


# --- DIE helpers ---


def _attr_value(die: DIE, name: str) -> object:
    attr = die.attributes.get(name)
    return None if attr is None else attr.value


def _int_attr(die: DIE, name: str, default: int) -> int:
    v = _attr_value(die, name)
    return v if isinstance(v, int) else default


def _name(die: DIE) -> str:
    v = _attr_value(die, "DW_AT_name")
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return v if isinstance(v, str) else ""


def _children(die: DIE) -> Iterator[DIE]:
    """A DIE's children; a damaged DW_AT_sibling that points back would loop forever."""
    last = die.offset
    for child in die.iter_children():
        if child.offset <= last:
            raise DWARFError(f"DIE {die.offset:#x}: its children loop back to "
                             f"{child.offset:#x} (damaged DW_AT_sibling)")
        last = child.offset
        yield child


_PARAM_TAGS = frozenset({
    "DW_TAG_formal_parameter", "DW_TAG_unspecified_parameters", "DW_TAG_template_type_param",
    "DW_TAG_template_value_param", "DW_TAG_GNU_template_parameter_pack",
    "DW_TAG_GNU_formal_parameter_pack",
})


def _params(die: DIE) -> Iterator[DIE]:
    """A function's leading parameter DIEs, not the body after them (not parsed)."""
    for child in _children(die):
        if child.tag not in _PARAM_TAGS:
            return
        yield child


def _uleb(data: list[int], pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise DWARFError("truncated or overlong LEB128 in a DWARF expression")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


# --- dedup and emission ---


def _shape(t: Type | None) -> tuple[object, ...]:
    """Everything about a type except the ids it refers to."""
    if t is None:
        return ("?",)
    if isinstance(t, Struct | Union):
        return (t.kind, t.name, t.size, t.bitfield_encoding,
                tuple((m.name, m.offset, m.bitfield_size) for m in t.members))
    if isinstance(t, Enum | Enum64):
        return (t.kind, t.name, t.size, t.signed, tuple((v.name, v.value) for v in t.values))
    if isinstance(t, Int):
        return (t.kind, t.name, t.size, t.encoding, t.bit_offset, t.bits)
    if isinstance(t, Array):
        return (t.kind, t.nelems)
    if isinstance(t, FuncProto):
        return (t.kind, tuple(p.name for p in t.params))
    if isinstance(t, Fwd):
        return (t.kind, t.name, t.is_union)
    if isinstance(t, Float):
        return (t.kind, t.name, t.size)
    if isinstance(t, Func | Var):
        return (t.kind, t.name, int(t.linkage))
    return (t.kind, t.name)


def _redirect(m: dict[int, int]) -> Callable[[int], int]:
    return lambda r: m.get(r, r)


def _remap(t: Type, f: Callable[[int], int]) -> Type:
    if isinstance(t, Struct | Union):
        return type(t)(t.name, t.size, [Member(m.name, f(m.type), m.offset, m.bitfield_size)
                                        for m in t.members], t.bitfield_encoding)
    if isinstance(t, Array):
        return Array(f(t.type), f(t.index_type), t.nelems)
    if isinstance(t, FuncProto):
        return FuncProto(f(t.return_type), [Param(p.name, f(p.type)) for p in t.params])
    if isinstance(t, Pointer | Const | Volatile | Restrict):
        return type(t)(f(t.type))
    if isinstance(t, Typedef):
        return Typedef(t.name, f(t.type))
    if isinstance(t, Func):
        return Func(t.name, f(t.type), t.linkage)
    if isinstance(t, Var):
        return Var(t.name, f(t.type), t.linkage)
    return t


def _classes(types: list[Type | None]) -> list[int]:
    """Coarsest partition of the types into structurally equal classes.

    Partition refinement: start from the shapes, split classes whose members refer to
    different classes, until stable. This merges cyclic types (a struct and the pointer
    to itself) that a bottom-up hash cannot.
    """
    n = len(types)
    refs = [referenced_ids(t) if t is not None else [] for t in types]
    keys: dict[object, int] = {}
    cls = [keys.setdefault(_shape(t), len(keys)) for t in types]
    cls[0] = -1  # void
    next_cls = len(keys)
    live = list(range(1, n))  # types whose class has others: the only ones that can split
    while True:
        sizes = Counter(cls[i] for i in live)
        live = [i for i in live if sizes[cls[i]] > 1]
        if not live:
            return cls
        new_keys: dict[tuple[int, tuple[int, ...]], int] = {}
        new = cls[:]
        for i in live:
            sig = (cls[i], tuple([cls[r] if 0 <= r < n else -2 for r in refs[i]]))
            found = new_keys.get(sig)
            if found is None:
                found = new_keys[sig] = next_cls
                next_cls += 1
            new[i] = found
        if len(new_keys) == len({cls[i] for i in live}):
            return cls
        cls = new


def _dedup(types: list[Type | None]) -> tuple[list[Type | None], list[int]]:
    """Merge equal types; returns the kept types and old id -> new id.

    A FWD becomes the complete struct/union of its name when there is exactly one (after
    merging); that can make two complete types equal and resolve more FWDs, so repeat.
    """
    n = len(types)
    fwd_to: dict[int, int] = {}
    while True:
        cls = _classes(types)
        first: dict[int, int] = {}
        complete: dict[tuple[str, bool], set[int]] = {}
        for i, t in enumerate(types):
            first.setdefault(cls[i], i)
            if isinstance(t, Struct | Union) and t.name:
                complete.setdefault((t.name, isinstance(t, Union)), set()).add(cls[i])
        new: dict[int, int] = {}
        for i, t in enumerate(types):
            if isinstance(t, Fwd) and t.name and i not in fwd_to:
                found = complete.get((t.name, t.is_union))
                if found is not None and len(found) == 1:
                    new[i] = first[next(iter(found))]
        if not new:
            break
        fwd_to.update(new)
        redirect = _redirect(new)
        types = [None if t is None else _remap(t, redirect) for t in types]
    new_id: list[int] = [0] * len(types)
    kept: list[Type | None] = [None]
    for i in range(1, len(types)):
        rep = first[cls[i]]
        if i in fwd_to:
            rep = first[cls[fwd_to[i]]]
        if rep == i:
            new_id[i] = len(kept)
            kept.append(types[i])
        else:
            new_id[i] = new_id[rep] if rep < i else -1
    # reps always come first in id order, but a FWD may point forward
    for i in range(1, len(types)):
        if new_id[i] == -1:
            new_id[i] = new_id[first[cls[fwd_to.get(i, i)]]]
    n = len(types)
    out: list[Type | None] = [None]
    for t in kept[1:]:
        assert t is not None
        out.append(_remap(t, lambda r: new_id[r] if 0 <= r < n else 0))
    return out, new_id


def _in_base(types: list[Type | None], base: Spec) -> dict[int, int]:
    """Which of ``types`` (deduplicated, local ids) equal a type of ``base``: local -> base id.

    Only base types that could match (same shape), and what they refer to, take part in
    the partition, so a kernel-sized base costs what the program's types reach.
    """
    shapes = {_shape(t) for t in types[1:]}
    base_ids = range(1, base.type_count)
    picked: dict[int, int] = {}  # base id -> index in the joint list
    joint: list[Type | None] = [None]
    todo = [tid for tid in base_ids if _shape(base.type(tid)) in shapes]
    while todo:
        tid = todo.pop()
        if tid in picked or not 0 < tid < base.type_count:
            continue
        picked[tid] = len(joint)
        t = base.type(tid)
        joint.append(t)
        todo.extend(referenced_ids(t))
    nb = len(joint)
    # base refs outside the picked set cannot match anything of ours: class -2
    joint[1:] = [_remap(t, lambda r: picked.get(r, -1) if r else 0)
                 for t in joint[1:] if t is not None]
    joint += [_remap(t, lambda r: r + nb - 1 if r else 0) for t in types[1:] if t is not None]
    cls = _classes(joint)
    owner: dict[int, int] = {}
    back = {i: tid for tid, i in picked.items()}
    for i in range(1, nb):
        owner.setdefault(cls[i], back[i])
    return {j: owner[cls[j + nb - 1]] for j in range(1, len(types))
            if cls[j + nb - 1] in owner}


def _emit(conv: _Converter, base: Spec | None) -> bytes:
    if not any(isinstance(t, Struct | Union | Enum | Enum64 | Typedef | Int | Float)
               for t in conv.types):
        raise DWARFError(f"{conv.source}: the DWARF describes no types (built with -g1?): "
                         "build with -g")
    types, new_id = _dedup(conv.types)
    b = Builder(base)
    # final id of each deduplicated type: a base type it equals, or the next own id
    final = [0] * len(types)
    in_base = _in_base(types, base) if base is not None else {}
    next_id = b.first_id
    for i in range(1, len(types)):
        if i in in_base:
            final[i] = in_base[i]
        else:
            final[i] = next_id
            next_id += 1
    for i in range(1, len(types)):
        if i not in in_base:
            t = types[i]
            assert t is not None
            b.add(_remap(t, lambda r: final[r] if r else 0))
    secs: dict[str, list[VarSecinfo]] = {}
    for vid, sec, off in conv.vars:
        vsize = conv.size_of(conv.types[vid].type)  # type: ignore[union-attr]
        secs.setdefault(sec, []).append(VarSecinfo(final[new_id[vid]], off, vsize))
    for sec in sorted(secs):
        infos = sorted(secs[sec], key=lambda v: (v.offset, v.type))
        b.add(Datasec(sec, conv.section_sizes.get(sec, 0), infos))
    return b.encode("<" if conv.little else ">")
