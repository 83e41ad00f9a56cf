"""BTF as C: the vmlinux.h that ``bpftool btf dump file F format c`` prints.

The output must match bpftool 7.1 byte for byte, so every decision below (the order types
come out in, when a ``struct x;`` forward declaration is needed, ``name___2`` renaming,
explicit padding members, ``__attribute__((packed))``) follows the rules of the btf_dump
that bpftool 7.1 links in: libbpf 1.1's, as Debian builds it from Linux 6.1, i.e. without
the ``mode(byte)``/``mode(word)`` enum attributes (``enum_modes=True`` adds them, as
upstream libbpf 1.1 does) and with ``(void)`` for prototypes without parameters.

The printer reads the raw type words rather than decoded :mod:`.types` objects: a kernel
has over 100,000 types, and a vmlinux.h has to come out about as fast as bpftool's.
"""

from __future__ import annotations

import gc
import struct
import sys
from array import array
from collections.abc import Callable, Iterable
from itertools import chain, compress
from operator import itemgetter

from ..errors import BTFError
from .spec import Spec

PREAMBLE = (
    "#ifndef __VMLINUX_H__\n"
    "#define __VMLINUX_H__\n"
    "\n"
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute push (__attribute__((preserve_access_index)), "
    "apply_to = record)\n"
    "#endif\n"
    "\n"
)
EPILOGUE = (
    "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
    "#pragma clang attribute pop\n"
    "#endif\n"
    "\n"
    "#endif /* __VMLINUX_H__ */\n"
)

# BTF_KIND_* as plain ints: compared in the hot loops, where Kind attribute lookups cost.
(_INT, _PTR, _ARRAY, _STRUCT, _UNION, _ENUM, _FWD, _TYPEDEF, _VOLATILE, _CONST, _RESTRICT,
 _FUNC, _FUNC_PROTO, _VAR, _DATASEC, _FLOAT, _DECL_TAG, _TYPE_TAG, _ENUM64) = range(1, 20)

# Kinds whose third word is the id of one other type.
_ONE_REF = (_PTR, _TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _FUNC, _VAR, _DECL_TAG, _TYPE_TAG)
# Kinds that print nothing and order nothing when met as a root: never decoded.
_SILENT = (_FUNC, _VAR, _DATASEC, _DECL_TAG)


def _kind_mask(*kinds: int) -> bytes:
    """A bytes.translate table: 1 for these kinds, 0 for the others."""
    return bytes(int(k in kinds) for k in range(256))


_ONE_REF_MASK = _kind_mask(*_ONE_REF)
_COMPOSITE_MASK = _kind_mask(_STRUCT, _UNION)
_PROTO_MASK = _kind_mask(_FUNC_PROTO)
_ARRAY_MASK = _kind_mask(_ARRAY)
_ENUM_FWD_MASK = _kind_mask(_ENUM, _ENUM64, _FWD)
_DATASEC_MASK = _kind_mask(_DATASEC)
_ROOT_MASK = _kind_mask(*(k for k in range(256) if k not in _SILENT))
_QUALIFIER_WORD = {_VOLATILE: "volatile ", _CONST: "const ", _RESTRICT: "restrict "}
_QUALIFIER_AFTER = {_VOLATILE: " volatile", _CONST: " const", _RESTRICT: " restrict"}
_MODIFIERS = (_VOLATILE, _CONST, _RESTRICT, _TYPE_TAG)

# Base types GCC names in typedefs for Arm SIMD intrinsics, which clang does not know.
_ALIASES = {
    "__Poly8_t": "unsigned char",
    "__Poly16_t": "unsigned short",
    "__Poly64_t": "unsigned long long",
    "__Poly128_t": "unsigned __int128",
}
_LONG_NAMES = frozenset({
    "long", "long int", "int long", "unsigned long", "long unsigned", "unsigned long int",
    "unsigned int long", "long unsigned int", "long int unsigned", "int unsigned long",
    "int long unsigned",
})
# Indentation: one tab per level, at most 13 (deeper levels print like the 13th).
_MAX_INDENT = 13
#: Most padding one gap may need: real kernels' largest is 520,768 bits (a member
#: aligned to 64 KiB pages on arm64); a gap 32x that is taken for corruption.
_MAX_PADDING_BITS = 1 << 24
#: Padding a whole dump may print, beyond one such gap, per byte of BTF: real kernels
#: pad about 0.1 bit per byte, so 8 keeps the output linear in the input (a crafted file
#: of many structs with huge gaps would otherwise print gigabytes).
_PADDING_BITS_PER_BYTE = 8
_INDENT = tuple("\t" * min(i, _MAX_INDENT) for i in range(_MAX_INDENT + 2))
_NL_INDENT = tuple("\n" + s for s in _INDENT)
# A declarator chain longer than this is a reference cycle (libbpf would loop forever).
_MAX_CHAIN = 4096
_RESOLVE_DEPTH = 32  # libbpf's MAX_RESOLVE_DEPTH for sizes
_U32_MAX = 0xFFFF_FFFF

# Order states of a type (topological sort) and emission states.
_FRESH, _BUSY, _DONE = 0, 1, 2


def _gather(getter_src: array[int], at: list[int]) -> list[int]:
    """``[getter_src[i] for i in at]``, done in C."""
    if len(at) > 1:
        return list(itemgetter(*at)(getter_src))
    return [getter_src[i] for i in at]


def _sections(spec: Spec) -> tuple[bytes, bytes]:
    """(type section, string section) of one spec, from its header."""
    raw = spec.raw
    _, _, _, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        spec.endian + "HBBIIIII", raw, 0
    )
    t0, s0 = hdr_len + type_off, hdr_len + str_off
    return raw[t0 : t0 + type_len], raw[s0 : s0 + str_len]


class _Printer:
    """One dump: the type columns of a spec (and its bases) plus the ordering state."""

    def __init__(self, spec: Spec, enum_modes: bool = False) -> None:
        self.enum_modes = enum_modes
        self.source = spec.source
        # Split BTF: the base's records and strings come first, ids and offsets go on.
        specs: list[Spec] = []
        s: Spec | None = spec
        while s is not None:
            specs.append(s)
            s = s.base
        specs.reverse()
        words = array("I")
        strings = []
        pos = [0]  # id 0 (void): set below
        for part in specs:
            types, strs = _sections(part)
            base = len(words)
            chunk = array("I")
            chunk.frombytes(types)
            if part.endian != ("<" if sys.byteorder == "little" else ">"):
                chunk.byteswap()
            words.extend(chunk)
            offs = part.offsets
            pos.extend(offs if base == 0 else [o + base for o in offs])
            strings.append(strs)
        # id 0 (void) reads as an all-zero record: no name, kind 0, no reference
        pos[0] = len(words)
        words.extend((0, 0, 0))
        self.words = words
        self.strings = b"".join(strings)
        # Offsets are in bytes: slicing a str is only right when every byte is a char.
        self.text = self.strings.decode("ascii") if self.strings.isascii() else ""
        n = self.count = len(pos)
        self.pos = pos
        self.name_off = _gather(words, pos)
        self.info = info = _gather(words[1:], pos)
        self.ref = ref = _gather(words[2:], pos)
        tops = array("I", info).tobytes()[3::4] if sys.byteorder == "little" else \
            array("I", info).tobytes()[0::4]
        # Columns are lists: CPython indexes lists much faster than bytes or arrays.
        self.kind_bytes = kind_bytes = tops.translate(bytes(b & 0x1F for b in range(256)))
        self.kinds = list(kind_bytes)
        # An array's element type goes where other kinds keep their one reference.
        for tid in compress(range(n), kind_bytes.translate(_ARRAY_MASK)):
            ref[tid] = words[pos[tid] + 3]
        self._names: dict[int, str] = {}
        # 1 where emitting the type only passes on to its ref (pointer, qualifier, array)
        self.through = list(kind_bytes.translate(
            _kind_mask(_PTR, _CONST, _VOLATILE, _RESTRICT, _TYPE_TAG, _ARRAY)))

        # Member / parameter type lists, read once: ordering, emission and the
        # "referenced" marks all walk them.
        self.mtypes: list[list[int] | None] = [None] * n
        self.moffsets: list[list[int] | None] = [None] * n  # member offset words
        self._aligns = [-1] * n
        self._packed: dict[int, bool] = {}
        self._sizes = [-2] * n  # -2: not computed yet
        self.ptr_size = self._pointer_size()

        self.order_state = [_FRESH] * n
        self.emit_state = [_FRESH] * n
        self.fwd_done = [False] * n
        self.order_state[0] = _DONE
        self.emit_state[0] = _DONE
        self.resolved: list[str | None] = [None] * n
        self.type_dups: dict[str, int] = {}
        self.ident_dups: dict[str, int] = {}
        self.queue: list[int] = []
        self.out: list[str] = []
        self._decls: dict[int, tuple[str, str, bool]] = {}
        self._member_lines: dict[int, tuple[str, str, int]] = {}
        self._anon_enum_prints = 0
        # In a full dump every id below the current root was a root already: for the
        # silent kinds that is all their ordering ever does, so it is not replayed.
        self.silent_done_below = 0
        self._referenced: set[int] | None = None
        self._padding_left = _MAX_PADDING_BITS + _PADDING_BITS_PER_BYTE * 4 * len(words)

    # -- raw access ------------------------------------------------------------------

    def name(self, off: int) -> str:
        """The string at ``off``; the hot loops look in ``_names`` themselves first."""
        s = self._names.get(off)
        if s is None:
            text = self.text
            if off < len(text):
                s = self._names[off] = text[off : text.find("\0", off)]
                return s
            strs = self.strings
            end = strs.find(b"\0", off)
            if end < 0 or off >= len(strs):
                raise BTFError(f"string offset {off} is past the string section",
                               source=self.source)
            s = self._names[off] = strs[off:end].decode("utf-8", "surrogateescape")
        return s

    def member_types(self, tid: int) -> list[int]:
        """Member types of a struct/union, parameter types of a prototype."""
        mt = self.mtypes[tid]
        if mt is None:
            p = self.pos[tid]
            k = self.kinds[tid]
            vlen = self.info[tid] & 0xFFFF
            if k == _FUNC_PROTO:
                mt = self.words[p + 4 : p + 3 + 2 * vlen : 2].tolist()
            else:
                mt = self.words[p + 4 : p + 3 + 3 * vlen : 3].tolist()
            self.mtypes[tid] = mt
        return mt

    def member_offsets(self, tid: int) -> list[int]:
        """The offset words of a struct/union's members (bitfield size in the top byte
        when the struct's kind_flag is set)."""
        offsets = self.moffsets[tid]
        if offsets is None:
            p = self.pos[tid]
            end = p + 3 + 3 * (self.info[tid] & 0xFFFF)
            offsets = self.moffsets[tid] = self.words[p + 5 : end : 3].tolist()
        return offsets

    def referenced(self) -> set[int]:
        """The anonymous enums (and forward declarations) some type points at.

        An anonymous enum nothing points at is a top-level one (a set of constants) and
        gets printed on its own; as in libbpf, a prototype's return type does not count.
        Reading every member list here also fills the cache that ordering uses.
        """
        if self._referenced is None:
            kind_bytes, name_off = self.kind_bytes, self.name_off
            ref, words, pos, info = self.ref, self.words, self.pos, self.info
            mtypes = self.mtypes
            ids = range(self.count)
            anon = {t for t in compress(ids, kind_bytes.translate(_ENUM_FWD_MASK))
                    if not name_off[t]}
            hit = anon.intersection(compress(ref, kind_bytes.translate(_ONE_REF_MASK)))
            lists = []
            for tid in compress(ids, kind_bytes.translate(_COMPOSITE_MASK)):
                mt = mtypes[tid]
                if mt is None:
                    p = pos[tid]
                    mt = mtypes[tid] = words[p + 4 : p + 3 + 3 * (info[tid] & 0xFFFF) : 3].tolist()
                lists.append(mt)
            for tid in compress(ids, kind_bytes.translate(_PROTO_MASK)):
                mt = mtypes[tid]
                if mt is None:
                    p = pos[tid]
                    mt = mtypes[tid] = words[p + 4 : p + 3 + 2 * (info[tid] & 0xFFFF) : 2].tolist()
                lists.append(mt)
            for tid in compress(ids, kind_bytes.translate(_ARRAY_MASK)):
                lists.append([ref[tid], words[pos[tid] + 4]])  # element and index types
            for tid in compress(ids, kind_bytes.translate(_DATASEC_MASK)):
                p = pos[tid]
                lists.append(words[p + 3 : p + 3 + 3 * (info[tid] & 0xFFFF) : 3].tolist())
            hit.update(anon.intersection(chain.from_iterable(lists)))
            self._referenced = hit
        return self._referenced

    def _pointer_size(self) -> int:
        """Size of the first 4- or 8-byte ``long`` INT, else 8 (libbpf's guess)."""
        i = self.kind_bytes.find(_INT)
        while i >= 0:
            if self.ref[i] in (4, 8) and self.name(self.name_off[i]) in _LONG_NAMES:
                return self.ref[i]
            i = self.kind_bytes.find(_INT, i + 1)
        return 8

    # -- sizes and alignment (btf__resolve_size, btf__align_of) ----------------------

    def size_of(self, tid: int) -> int:
        """Byte size, or -1 where libbpf reports an error (void, functions, overflow)."""
        got = self._sizes[tid]
        if got != -2:
            return got
        kinds, ref = self.kinds, self.ref
        nelems = 1
        size = -1
        cur = tid
        for _ in range(_RESOLVE_DEPTH):
            if cur == 0:
                break
            k = kinds[cur]
            if k in (_INT, _STRUCT, _UNION, _ENUM, _ENUM64, _DATASEC, _FLOAT):
                size = ref[cur]
                break
            if k == _PTR:
                size = self.ptr_size
                break
            if k == _ARRAY:
                p = self.pos[cur]
                count = self.words[p + 5]
                if nelems and count > _U32_MAX // nelems:
                    break
                nelems *= count
                cur = ref[cur]
            elif k in _ONE_REF and k != _FUNC:
                cur = ref[cur]
            else:
                break
        if size < 0 or (nelems and size > _U32_MAX // nelems):
            size = -1
        else:
            size *= nelems
        self._sizes[tid] = size
        return size

    def align_of(self, tid: int) -> int:
        """Alignment in bytes; 0 where libbpf has none (void, functions)."""
        got = self._aligns[tid]
        if got >= 0:
            return got
        k = self.kinds[tid]
        if tid == 0:
            a = 0
        elif k in (_INT, _ENUM, _ENUM64, _FLOAT):
            a = min(self.ptr_size, self.ref[tid])
        elif k == _PTR:
            a = self.ptr_size
        elif k in (_TYPEDEF, _VOLATILE, _CONST, _RESTRICT, _TYPE_TAG):
            a = self.align_of(self.ref[tid])
        elif k == _ARRAY:
            a = self.align_of(self.ref[tid])
        elif k in (_STRUCT, _UNION):
            a = self._composite_align(tid)
        else:
            a = 0
        self._aligns[tid] = a
        return a

    def _composite_align(self, tid: int) -> int:
        """btf__align_of of a struct/union; notes on the way whether it is packed."""
        best = 1
        bitfields = self.info[tid] >> 31
        offsets = self.moffsets[tid] or self.member_offsets(tid)
        aligns = self._aligns
        for mt, off in zip(self.mtypes[tid] or self.member_types(tid), offsets, strict=True):
            a = aligns[mt]
            if a < 0:
                a = self.align_of(mt)
            if a <= 0:
                return 0  # packedness is then decided by the slow check
            if a > best:
                best = a
            if (off % (8 * a)) and not (bitfields and off >> 24):
                self._packed[tid] = True  # a misaligned plain member
                return 1
        if self.ref[tid] % best:
            self._packed[tid] = True
            return 1
        self._packed[tid] = False
        return best

    # -- names -----------------------------------------------------------------------

    def _unique(self, tid: int, dups: dict[str, int]) -> str:
        """A type's printed name: the n-th type (n > 1) to claim a name gets ``name___n``."""
        got = self.resolved[tid]
        if got is not None:
            return got
        off = self.name_off[tid]
        if not off:
            return ""
        name = self.name(off)
        k = self.kinds[tid]
        if k != _FWD and not (k == _ENUM and not self.info[tid] & 0xFFFF):
            seen = dups.get(name, 0) + 1
            dups[name] = seen
            if seen > 1:
                name = f"{name}___{seen}"[:255]
        self.resolved[tid] = name
        return name

    def type_name(self, tid: int) -> str:
        return self._unique(tid, self.type_dups)

    def ident_name(self, tid: int) -> str:
        return self._unique(tid, self.ident_dups)

    # -- ordering --------------------------------------------------------------------

    def order(self, tid: int, through_ptr: bool) -> int:
        """Queue what ``tid`` needs defined first; 1 if the link to it is strong.

        A link is weak (a forward declaration will do) when it goes through a pointer
        and reaches a named type; otherwise the definition must come first.
        """
        state = self.order_state
        s = state[tid]
        if s == _DONE:
            return 1
        k = self.kinds[tid]
        if s == _BUSY:
            if (k == _STRUCT or k == _UNION) and through_ptr and self.name_off[tid]:
                return 0
            raise BTFError(f"unsatisfiable type cycle, id:[{tid}]", source=self.source)
        if k == _PTR:
            strong = self.order(self.ref[tid], True)
            state[tid] = _DONE
            return strong
        if k == _STRUCT or k == _UNION:
            named = self.name_off[tid]
            if through_ptr and named:
                return 0
            state[tid] = _BUSY
            kinds, ref, name_off = self.kinds, self.ref, self.name_off
            for m in self.mtypes[tid] or self.member_types(tid):
                if state[m] == _DONE:
                    continue
                km = kinds[m]
                if km == _PTR:
                    # a pointer to a named struct/union (or to what is ordered already)
                    # asks for nothing: order() would only mark the pointer done
                    t = ref[m]
                    if state[t] == _DONE or (
                            (kinds[t] == _STRUCT or kinds[t] == _UNION) and name_off[t]):
                        state[m] = _DONE
                        continue
                elif km == _INT or km == _FLOAT:
                    state[m] = _DONE
                    continue
                self.order(m, False)
            if named:
                self.queue.append(tid)
            state[tid] = _DONE
            return 1
        if k == _TYPEDEF:
            if not self.order(self.ref[tid], through_ptr) and through_ptr:
                return 0
            self.queue.append(tid)
            state[tid] = _DONE
            return 1
        if k == _VOLATILE or k == _CONST or k == _RESTRICT or k == _TYPE_TAG:
            return self.order(self.ref[tid], through_ptr)
        if k == _ARRAY:
            return self.order(self.ref[tid], False)
        if k == _FUNC_PROTO:
            strong = self.order(self.ref[tid], through_ptr)
            for p in self.member_types(tid):
                if self.order(p, through_ptr):
                    strong = 1
            return strong
        if k == _ENUM or k == _ENUM64 or k == _FWD:
            if self.name_off[tid] or tid not in self.referenced():
                self.queue.append(tid)
            state[tid] = _DONE
            return 1
        if k == _INT or k == _FLOAT:
            state[tid] = _DONE
            return 0
        if k in _SILENT:
            if tid < self.silent_done_below:
                return 1
            state[tid] = _DONE
            return 0
        raise BTFError(f"type [{tid}]: unexpected kind {k}", source=self.source)

    # -- emission --------------------------------------------------------------------

    def emit(self, tid: int, container: int) -> None:
        """Print ``tid``'s definition (top level: container 0) after what it needs."""
        state = self.emit_state
        s = state[tid]
        if s == _DONE:
            return
        k = self.kinds[tid]
        out = self.out
        if s == _BUSY:
            # Met again while being printed: only a forward declaration can help.
            if self.fwd_done[tid]:
                return
            if k == _STRUCT or k == _UNION:
                if tid == container or not self.name_off[tid]:
                    return
                out.append(self.composite_ref(tid))
                out.append(";\n\n")
                self.fwd_done[tid] = True
            elif k == _TYPEDEF:
                if not self.builtin(tid):
                    out.append(self.typedef_def(tid))
                    out.append(";\n\n")
                self.fwd_done[tid] = True
            return
        if k == _STRUCT or k == _UNION:
            state[tid] = _BUSY
            named = self.name_off[tid]
            if not container or not named:
                inner = tid if named else container
                through, ref, kinds = self.through, self.ref, self.kinds
                name_off, fwd_done = self.name_off, self.fwd_done
                for m in self.mtypes[tid] or self.member_types(tid):
                    # pointers, qualifiers and arrays only pass the call on: skip them
                    while through[m]:
                        m = ref[m]
                    if state[m] == _DONE:
                        continue
                    km = kinds[m]
                    if (km == _STRUCT or km == _UNION) and name_off[m]:
                        # what emit() does for a named struct inside another one
                        if not fwd_done[m] and m != inner:
                            out.append(self.composite_ref(m))
                            out.append(";\n\n")
                            fwd_done[m] = True
                        continue
                    self.emit(m, inner)
            elif not self.fwd_done[tid] and tid != container:
                out.append(self.composite_ref(tid))
                out.append(";\n\n")
                self.fwd_done[tid] = True
            if container:
                state[tid] = _FRESH
            else:
                out.append(self.composite_def(tid, 0))
                out.append(";\n\n")
                state[tid] = _DONE
        elif k == _PTR or k == _CONST or k == _VOLATILE or k == _RESTRICT or k == _TYPE_TAG:
            self.emit(self.ref[tid], container)
        elif k == _TYPEDEF:
            state[tid] = _BUSY
            self.emit(self.ref[tid], tid)
            if not self.fwd_done[tid] and not self.builtin(tid):
                out.append(self.typedef_def(tid))
                out.append(";\n\n")
            state[tid] = _DONE
        elif k == _ARRAY:
            self.emit(self.ref[tid], container)
        elif k == _FUNC_PROTO:
            self.emit(self.ref[tid], container)
            for p in self.member_types(tid):
                self.emit(p, container)
        elif k == _ENUM or k == _ENUM64:
            if not container:
                out.append(self.enum_def(tid, 0))
                out.append(";\n\n")
            state[tid] = _DONE
        elif k == _FWD:
            out.append(self.fwd_def(tid))
            out.append(";\n\n")
            state[tid] = _DONE
        elif k == _INT:
            name = self.type_name(tid)
            alias = _ALIASES.get(name)
            if alias is not None:
                out.append(f"typedef {alias} {name};\n\n")
            state[tid] = _DONE

    def builtin(self, tid: int) -> bool:
        """``__builtin_va_list`` is the compiler's own: redefining it breaks the header."""
        off = self.name_off[tid]
        return bool(off) and self.name(off) == "__builtin_va_list"

    # -- definitions -----------------------------------------------------------------

    def composite_ref(self, tid: int) -> str:
        kw = "struct" if self.kinds[tid] == _STRUCT else "union"
        if not self.name_off[tid]:
            return kw
        name = self.resolved[tid]
        if name is None:
            name = self._unique(tid, self.type_dups)
        return kw + " " + name

    def fwd_def(self, tid: int) -> str:
        kw = "union " if self.info[tid] >> 31 else "struct "
        return kw + self.type_name(tid)

    def typedef_def(self, tid: int) -> str:
        name = self.ident_name(tid)
        target = self.ref[tid]
        if target == 0 and name == "__gnuc_va_list":
            # old GCC points it at void; the builtin is what it means
            return "typedef __builtin_va_list __gnuc_va_list"
        return "typedef " + self.decl(target, name, 0)

    def is_packed(self, tid: int) -> bool:
        """Packed unless every plain member sits at its natural alignment and the size
        is a multiple of the largest member alignment."""
        if self._aligns[tid] < 0:
            self.align_of(tid)
        known = self._packed.get(tid)
        if known is not None:
            return known
        best = 1
        bitfields = self.info[tid] >> 31
        offsets = self.moffsets[tid] or self.member_offsets(tid)
        align_of = self.align_of
        aligns = self._aligns
        for mt, off in zip(self.member_types(tid), offsets, strict=True):
            a = aligns[mt]
            if a < 0:
                a = align_of(mt)
            if a and off % (8 * a) and not (bitfields and off >> 24):
                return True
            if a > best:
                best = a
        return self.ref[tid] % best != 0

    def composite_def(self, tid: int, lvl: int) -> str:
        """``struct name { members }`` with the padding that reproduces the layout."""
        is_struct = self.kinds[tid] == _STRUCT
        # btf__align_of already answers 1 for every packed layout: look closer only then
        packed = is_struct and self.is_packed(tid)
        parts = [self.composite_ref(tid), " {"]
        append = parts.append
        offsets = self.moffsets[tid] or self.member_offsets(tid)
        p = self.pos[tid]
        name_offs = self.words[p + 3 : p + 3 + 3 * len(offsets) : 3].tolist()
        types = self.mtypes[tid] or self.member_types(tid)
        inner = lvl + 1
        key_lvl = inner if inner < _MAX_INDENT else _MAX_INDENT
        nl = _NL_INDENT[key_lvl]
        names_get = self._names.get
        lines_get = self._member_lines.get
        aligns = self._aligns
        end = 0  # bit offset where the previous member ended
        if not self.info[tid] >> 31:
            # no bitfield sizes in the offsets: the common case, kept lean
            for mt, noff, off in zip(types, name_offs, offsets, strict=True):
                if end < off:
                    if packed:
                        malign = 1
                    else:
                        malign = aligns[mt]
                        if malign < 0:
                            malign = self.align_of(mt)
                    self.padding(parts, end, off, malign, False, inner)
                mname = names_get(noff)
                if mname is None:
                    mname = self.name(noff)
                line = lines_get(mt << 4 | key_lvl)
                if line is None or not mname:
                    line = self._member_line(mt, key_lvl, inner, mname)
                    append(f"{nl}{line[0]};")
                else:
                    append(f"{nl}{line[0]}{mname}{line[1]};")
                end = off + line[2]
        else:
            after_bitfield = False
            for mt, noff, off in zip(types, name_offs, offsets, strict=True):
                bits = off >> 24
                off &= 0xFFFFFF
                if end < off:
                    if packed:
                        malign = 1
                    else:
                        malign = aligns[mt]
                        if malign < 0:
                            malign = self.align_of(mt)
                    self.padding(parts, end, off, malign, after_bitfield and bits != 0, inner)
                mname = names_get(noff)
                if mname is None:
                    mname = self.name(noff)
                line = lines_get(mt << 4 | key_lvl)
                if line is None or not mname:
                    line = self._member_line(mt, key_lvl, inner, mname)
                    member = line[0]
                else:
                    member = line[0] + mname + line[1]
                if bits:
                    append(f"{nl}{member}: {bits};")
                    end = off + bits
                    after_bitfield = True
                else:
                    append(f"{nl}{member};")
                    end = off + line[2]
                    after_bitfield = False
        size = self.ref[tid]
        if is_struct and end < 8 * size:
            self.padding(parts, end, 8 * size, self.align_of(tid), False, inner)
        if types or size:
            append(_NL_INDENT[lvl if lvl <= _MAX_INDENT else _MAX_INDENT])
        append("}")
        if packed:
            append(" __attribute__((packed))")
        return "".join(parts)

    def _member_line(self, mt: int, key_lvl: int, lvl: int,
                     mname: str) -> tuple[str, str, int]:
        """(declaration before the name, after it, size in bits) of a member's type.

        Cached per type and level when reusable; for an unnamed member (or a type that
        cannot be cached) the first item is the whole declaration.
        """
        size = self._sizes[mt]
        if size == -2:
            size = self.size_of(mt)
        bits = 8 * size if size > 0 else 0
        if mname:
            before = self._anon_enum_prints
            left, right, with_name = self._declarator(mt, True, lvl)
            if with_name:
                line = (left, right, bits)
                if self._anon_enum_prints == before:
                    self._member_lines[mt << 4 | key_lvl] = line
                return (left + mname + right, "", bits)
            return (left, "", bits)
        return (self._declarator(mt, False, lvl)[0], "", bits)

    def padding(self, parts: list[str], cur: int, nxt: int, next_align: int,
                in_bitfield: bool, lvl: int) -> None:
        """Unnamed bitfields that move the next member from bit ``cur`` to bit ``nxt``.

        The widest of long/int/short/char whose next boundary after ``cur`` is not past
        ``nxt`` is used; a ``type: 0`` marker (or the exact count, between bitfields)
        forces that boundary where the compiler would not align to it by itself.
        """
        if cur >= nxt:
            return
        if nxt - cur > _MAX_PADDING_BITS:
            # one "long: 64;" line per 64 bits: a corrupt offset or size of 2**31 bits
            # would be 33 million lines held in memory
            raise BTFError(f"{nxt - cur} bits of padding before bit {nxt} of a struct or "
                           f"union (more than {_MAX_PADDING_BITS}): corrupt member offset "
                           "or size", source=self.source)
        self._padding_left -= nxt - cur
        if self._padding_left < 0:
            raise BTFError(f"padding before bit {nxt} of a struct or union takes the dump "
                           f"past {_PADDING_BITS_PER_BYTE} bits of padding per byte of BTF: "
                           "corrupt member offsets or sizes", source=self.source)
        ind = _NL_INDENT[lvl if lvl <= _MAX_INDENT else _MAX_INDENT]
        units = (("long", 8 * self.ptr_size), ("int", 32), ("short", 16), ("char", 8))
        unit_name, unit = units[-1]
        boundary = cur
        for unit_name, unit in units:  # noqa: B007 - the chosen unit is used below
            boundary = -(-cur // unit) * unit
            if boundary <= nxt:
                break
        if cur < boundary <= nxt:
            if in_bitfield:
                marker = True
            elif boundary == nxt:
                step = 8 * next_align
                if step == 0:
                    raise BTFError(f"member at bit {nxt} has no alignment",
                                   source=self.source)
                marker = -(-cur // step) * step != boundary
            else:
                marker = nxt - boundary <= boundary - cur
            if marker:
                parts.append(f"{ind}{unit_name}: {boundary - cur if in_bitfield else 0};")
            cur = boundary
        while cur < nxt:
            gap = nxt - cur
            if gap >= unit:
                parts.append(f"{ind}{unit_name}: {unit};")
                cur += unit
                continue
            for small_name, small in reversed(units):
                if small >= gap:
                    parts.append(f"{ind}{small_name}: {gap};")
                    break
            cur = nxt

    def enum_def(self, tid: int, lvl: int) -> str:
        named = self.name_off[tid]
        head = f"enum {self.type_name(tid)}" if named else "enum"
        info = self.info[tid]
        vlen = info & 0xFFFF
        if not vlen:
            return head
        if not named:
            self._anon_enum_prints += 1
        p = self.pos[tid]
        words = self.words
        signed = info >> 31
        inner = lvl + 1
        nl = _NL_INDENT[inner if inner <= _MAX_INDENT else _MAX_INDENT]
        parts = [head, " {"]
        dups = self.ident_dups
        values: list[int]
        if self.kinds[tid] == _ENUM:
            seg = words[p + 3 : p + 3 + 2 * vlen]
            values = seg[1::2].tolist()
            if signed:
                values = [v - 0x1_0000_0000 if v >> 31 else v for v in values]
            suffix = ","
            offsets = seg[0::2]
        else:
            seg = words[p + 3 : p + 3 + 3 * vlen]
            values = [lo | hi << 32 for lo, hi in zip(seg[1::3], seg[2::3], strict=True)]
            if signed:
                values = [v - (1 << 64) if v >> 63 else v for v in values]
                suffix = "LL,"
            else:
                suffix = "ULL,"
            offsets = seg[0::3]
        names_get = self._names.get
        for off, value in zip(offsets, values, strict=True):
            vname = names_get(off)
            if vname is None:
                vname = self.name(off)
            # enumerators share the identifier namespace with typedefs
            seen = dups.get(vname, 0) + 1
            dups[vname] = seen
            if seen > 1:
                parts.append(f"{nl}{vname}___{seen} = {value}{suffix}")
            else:
                parts.append(f"{nl}{vname} = {value}{suffix}")
        parts.append(_NL_INDENT[lvl if lvl <= _MAX_INDENT else _MAX_INDENT])
        parts.append("}")
        if self.enum_modes:
            # libbpf 1.1: odd-sized enums keep their size only with a mode attribute
            size = words[p + 2]
            if size == 1:
                parts.append(" __attribute__((mode(byte)))")
            elif size == 8 and self.ptr_size == 8:
                if self.kinds[tid] == _ENUM or not any(v >> 32 for v in values):
                    parts.append(" __attribute__((mode(word)))")
        return "".join(parts)

    # -- declarations ----------------------------------------------------------------

    def decl(self, tid: int, fname: str, lvl: int) -> str:
        """The C declaration of ``fname`` with type ``tid`` (``int (*fname)[4]`` etc.)."""
        if not fname:
            return self._declarator(tid, False, lvl)[0]
        key = tid << 4 | (lvl if lvl < _MAX_INDENT else _MAX_INDENT)
        got = self._decls.get(key)
        if got is None:
            before = self._anon_enum_prints
            got = self._declarator(tid, True, lvl)
            if self._anon_enum_prints == before:  # no renaming side effects: reusable
                self._decls[key] = got
        left, right, with_name = got
        return left + fname + right if with_name else left

    def _declarator(self, tid: int, named: bool, lvl: int) -> tuple[str, str, bool]:
        """(text before the name, text after it, whether the name appears at all)."""
        kinds = self.kinds
        # Fast path: a named type behind zero or more plain pointers, ``type **``.
        base = tid
        stars = 0
        while kinds[base] == _PTR and stars < _MAX_CHAIN:
            base = self.ref[base]
            stars += 1
        k = kinds[base]
        simple = None
        if base == 0:
            simple = "void"
        elif k == _TYPEDEF:
            simple = self.ident_name(base)
        elif k == _INT or k == _FLOAT:
            simple = self.name(self.name_off[base])
        elif self.name_off[base]:
            if k == _STRUCT or k == _UNION:
                simple = self.composite_ref(base)
            elif k == _ENUM or k == _ENUM64:
                simple = "enum " + self.type_name(base)
            elif k == _FWD:
                simple = self.fwd_def(base)
        if simple is not None:
            if named:
                return simple + " " + "*" * stars, "", True
            return (simple + " " + "*" * stars if stars else simple), "", False
        stack = []
        for _ in range(_MAX_CHAIN):
            stack.append(tid)
            if tid == 0:
                break
            k = kinds[tid]
            if k == _PTR or k == _CONST or k == _VOLATILE or k == _RESTRICT or \
                    k == _FUNC_PROTO or k == _TYPE_TAG:
                tid = self.ref[tid]
            elif k == _ARRAY:
                tid = self.ref[tid]
            else:
                break
        else:
            raise BTFError(f"type [{stack[0]}]: declaration chain too long or cyclic",
                           source=self.source)
        parts: list[str | None] = []
        self._chain(stack, named, lvl, parts)
        if None in parts:
            cut = parts.index(None)
            return ("".join(parts[:cut]),  # type: ignore[arg-type]
                    "".join(parts[cut + 1 :]), True)  # type: ignore[arg-type]
        return "".join(parts), "", False  # type: ignore[arg-type]

    def _qualifiers(self, stack: list[int], parts: list[str | None]) -> None:
        """const/volatile/restrict written before a base type (``const int``)."""
        kinds = self.kinds
        while stack:
            word = _QUALIFIER_WORD.get(kinds[stack[-1]])
            if word is None:
                return
            parts.append(word)
            stack.pop()

    def _chain(self, stack: list[int], named: bool, lvl: int,
               parts: list[str | None]) -> None:
        """Write the chain popped from ``stack`` inside out; None marks the name."""
        kinds = self.kinds
        after_ptr = True  # no space before '*' or the name right after a pointer
        while stack:
            tid = stack.pop()
            if tid == 0:
                self._qualifiers(stack, parts)
                parts.append("void")
                after_ptr = False
                continue
            k = kinds[tid]
            if k == _PTR:
                parts.append("*" if after_ptr else " *")
                after_ptr = True
                continue
            if k == _TYPEDEF:
                self._qualifiers(stack, parts)
                parts.append(self.ident_name(tid))
            elif k == _STRUCT or k == _UNION:
                self._qualifiers(stack, parts)
                parts.append(self.composite_def(tid, lvl) if not self.name_off[tid]
                             else self.composite_ref(tid))
            elif k == _INT or k == _FLOAT:
                self._qualifiers(stack, parts)
                parts.append(self.name(self.name_off[tid]))
            elif k == _ENUM or k == _ENUM64:
                self._qualifiers(stack, parts)
                parts.append(self.enum_def(tid, lvl) if not self.name_off[tid]
                             else f"enum {self.type_name(tid)}")
            elif k in _QUALIFIER_AFTER:
                parts.append(_QUALIFIER_AFTER[k])
            elif k == _FWD:
                self._qualifiers(stack, parts)
                parts.append(self.fwd_def(tid))
            elif k == _TYPE_TAG:
                self._qualifiers(stack, parts)
                parts.append(f' __attribute__((btf_type_tag("{self.name(self.name_off[tid])}")))')
            elif k == _ARRAY:
                # qualifiers of an array itself mean nothing (GCC emits them): dropped
                while stack and kinds[stack[-1]] in _MODIFIERS:
                    stack.pop()
                count = self.words[self.pos[tid] + 5]
                if not stack:
                    self._name(parts, named, after_ptr)
                    parts.append(f"[{count}]")
                    return
                nested = kinds[stack[-1]] == _ARRAY
                if named and not after_ptr:
                    parts.append(" ")
                if not nested:
                    parts.append("(")
                self._chain(stack, named, lvl, parts)
                if not nested:
                    parts.append(")")
                parts.append(f"[{count}]")
                return
            elif k == _FUNC_PROTO:
                while stack and kinds[stack[-1]] in _MODIFIERS:
                    stack.pop()  # GCC's volatile on noreturn function pointers
                if stack:
                    parts.append(" (")
                    self._chain(stack, named, lvl, parts)
                    parts.append(")")
                else:
                    self._name(parts, named, after_ptr)
                self._params(tid, lvl, parts)
                return
            else:
                return  # not a type a declaration can name: libbpf prints no more
            after_ptr = False
        self._name(parts, named, after_ptr)

    @staticmethod
    def _name(parts: list[str | None], named: bool, after_ptr: bool) -> None:
        if named:
            if not after_ptr:
                parts.append(" ")
            parts.append(None)

    def _params(self, tid: int, lvl: int, parts: list[str | None]) -> None:
        types = self.member_types(tid)
        if not types or (len(types) == 1 and types[0] == 0):
            parts.append("(void)")
            return
        p = self.pos[tid]
        names = self.words[p + 3 : p + 3 + 2 * len(types) : 2].tolist()
        text = []
        last = len(types) - 1
        for i, pt in enumerate(types):
            if i == last and pt == 0:
                text.append("...")  # a trailing void parameter means varargs
                break
            text.append(self.decl(pt, self.name(names[i]), lvl))
        parts.append("(" + ", ".join(text) + ")")

    # -- driver ----------------------------------------------------------------------

    def dump_type(self, tid: int) -> None:
        """Print ``tid`` and, before it, every type it needs that is not printed yet."""
        queue: list[int] = []
        self.queue = queue
        self.order(tid, False)
        for q in queue:
            self.emit(q, 0)

    def dump_all(self) -> None:
        kinds, ref, name_off = self.kinds, self.ref, self.name_off
        wanted = self.kind_bytes.translate(_ROOT_MASK)
        state = self.order_state
        member_types = self.member_types
        mtypes = self.mtypes
        for tid in compress(range(1, self.count), wanted[1:]):
            if state[tid] == _DONE:
                continue
            # Most roots left are prototypes, qualifiers and arrays over types that are
            # ordered already: ordering them again would change nothing.
            k = kinds[tid]
            if k == _FUNC_PROTO:
                if state[ref[tid]] == _DONE and min(
                        map(state.__getitem__, mtypes[tid] or member_types(tid)),
                        default=_DONE) == _DONE:
                    continue
            elif k == _CONST or k == _VOLATILE or k == _ARRAY or k == _RESTRICT:
                if state[ref[tid]] == _DONE:
                    continue
            elif k == _PTR:
                t = ref[tid]
                if state[t] == _DONE or (
                        (kinds[t] == _STRUCT or kinds[t] == _UNION) and name_off[t]):
                    state[tid] = _DONE  # all order() would do
                    continue
            self.silent_done_below = tid
            queue: list[int] = []
            self.queue = queue
            self.order(tid, False)
            for q in queue:
                self.emit(q, 0)


def _run(spec: Spec, root_ids: Iterable[int] | None,
         enum_modes: bool = False) -> tuple[list[str], BTFError | None]:
    printer = _Printer(spec, enum_modes)
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 20_000))
    gc_was_on = gc.isenabled()
    gc.disable()  # ~10^5 small lists and strings, no cycles: collections are pure cost
    error = None
    try:
        if root_ids is None:
            printer.dump_all()
        else:
            for tid in root_ids:
                if not 0 <= tid < printer.count:
                    raise BTFError(f"type id {tid} out of range", source=spec.source)
                printer.dump_type(tid)
    except BTFError as e:
        error = e
    except IndexError:
        error = BTFError("a type refers to an id out of range", source=spec.source)
    except RecursionError:
        error = BTFError("type graph nests too deeply", source=spec.source)
    finally:
        sys.setrecursionlimit(old_limit)
        if gc_was_on:
            gc.enable()
    return printer.out, error


def dump_c(spec: Spec, write: Callable[[str], object],
           root_ids: Iterable[int] | None = None, *, enum_modes: bool = False) -> None:
    """Write ``spec`` as a C header: every type, or ``root_ids`` and what they need.

    On an unsatisfiable type cycle bpftool stops where it is, without the closing lines:
    so does this, writing what came before and then raising :class:`BTFError`.

    ``enum_modes`` adds what upstream libbpf 1.1 prints and bpftool 7.1 here does not:
    ``__attribute__((mode(byte)))``/``mode(word)`` on enums of 1 or 8 bytes, without
    which clang gives them 4 bytes and the structs holding them another layout.
    """
    body, error = _run(spec, root_ids, enum_modes)
    if error is not None:
        write(PREAMBLE + "".join(body))
        raise error
    write(PREAMBLE + "".join(body) + EPILOGUE)


def to_c(spec: Spec, root_ids: Iterable[int] | None = None, *,
         enum_modes: bool = False) -> str:
    """:func:`dump_c` into a string."""
    out: list[str] = []
    dump_c(spec, out.append, root_ids, enum_modes=enum_modes)
    return "".join(out)


__all__ = ["EPILOGUE", "PREAMBLE", "dump_c", "to_c"]
