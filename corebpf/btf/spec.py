"""Lazy BTF reader.

Opening BTF makes one pass over the type section that records where each type starts
(an ``array('I')`` of word offsets, 4 bytes per type): nothing is decoded. A type is
decoded on first access and cached. Name lookups search the string section for the name
and the type section for its offset, so a single lookup costs two ``bytes.find`` calls
instead of a dictionary of every name; a full name index is built only when asked for.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import accumulate, compress, count
from operator import itemgetter

from ..errors import BTFError, NotFoundError
from .types import (
    Array,
    Const,
    Datasec,
    DeclTag,
    Enum,
    Enum64,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Kind,
    Member,
    Param,
    Pointer,
    Restrict,
    Struct,
    Type,
    Typedef,
    TypeTag,
    Union,
    Var,
    VarSecinfo,
    Void,
    Volatile,
)

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, Final, TypeAlias

BTF_MAGIC: Final = 0xEB9F
HEADER_LEN: Final = 24
#: libbpf gives up following typedefs/modifiers/arrays after this many steps.
MAX_RESOLVE_DEPTH: Final = 32
#: a composite's member names: first index by name, anonymous indexes, all names
_Layout: TypeAlias = "tuple[dict[str, int], tuple[int, ...], tuple[str, ...]]"
_MOD_KINDS: Final = frozenset({Kind.TYPEDEF, Kind.CONST, Kind.VOLATILE, Kind.RESTRICT,
                               Kind.TYPE_TAG})
#: kinds whose record's third word is their size, and those whose is a type they refer to
_SIZED_KINDS: Final = frozenset({Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64,
                                 Kind.DATASEC, Kind.FLOAT})
_REF_KINDS: Final = _MOD_KINDS | {Kind.VAR, Kind.DECL_TAG}
#: Composite nesting deeper than this is treated as a reference cycle.
MAX_NESTING: Final = 256


#: bytes searched for a word by bytes.find rather than a compiled regular expression
_SMALL_SCAN: Final = 1 << 16


def _word_hits(data: bytes | memoryview, needle: bytes, start: int, end: int) -> list[int]:
    """Positions of a 4-byte word in ``data[start:end]`` at offsets ``start + 4k``.

    A regular expression, not bytes.find: a small offset or id ends in zero bytes, and
    bytes.find skips by the needle's last byte, which type data is full of (4x slower).
    Over a few KiB (an object's own BTF) bytes.find, which needs no import or compile."""
    out = []
    if end - start <= _SMALL_SCAN and isinstance(data, bytes):
        pos = data.find(needle, start, end)
        while pos >= 0:
            if (pos - start) % 4 == 0:
                out.append(pos)
                pos = data.find(needle, pos + 4, end)
            else:
                pos = data.find(needle, pos + 1, end)
        return out
    import re

    search = re.compile(re.escape(needle)).search
    m = search(data, start, end)
    while m is not None:
        pos = m.start()
        if (pos - start) % 4 == 0:
            out.append(pos)
            m = search(data, pos + 4, end)
        else:
            m = search(data, pos + 1, end)
    return out


def _trie_pattern(words: Iterable[bytes]) -> bytes:
    """A regular expression matching exactly ``words``, as a prefix tree: at each
    position the engine checks one byte per level instead of trying every word."""
    import re

    trie: dict[int | None, Any] = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[None] = {}

    def emit(node: dict[int | None, Any]) -> bytes:
        alts = [re.escape(bytes([ch])) + emit(node[ch])
                for ch in sorted(k for k in node if k is not None)]
        if not alts:
            return b""
        ends = None in node
        body = alts[0] if len(alts) == 1 and not ends else b"(?:" + b"|".join(alts) + b")"
        return body + b"?" if ends else body

    return emit(trie)


#: string lookups answered by scanning the section before it is split into a table
_STRING_SCANS = 48
#: names prefetched by one bytes.find pass each (0.6 ms over a kernel's 2 MB of strings);
#: more share one regular expression pass (3 ms for 3-5 names, 3.7 ms for 11)
_FIND_SCANS = 4
#: name offsets searched one by one before one pass over the name column pays
_ID_SCANS = 8

#: 32-bit words: an array, or a view of a mapped index (corebpf's cache)
_U32s: TypeAlias = "array[int] | memoryview"

_HEADER = {e: struct.Struct(e + "HBBIIIII") for e in "<>"}
_NATIVE: Final = "<" if sys.byteorder == "little" else ">"

# Words (4 bytes) per type record, by the top byte of ``info`` (kind | kind_flag << 7):
# a fixed part plus a part per vlen entry. Unknown kinds get a huge step so that the
# indexing loop overshoots and the slow path reports them.
_BAD: Final = 1 << 40
_FIXED_BY_KIND = (_BAD, 4, 3, 6, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3, 4, 3, 3)
_PER_VLEN_BY_KIND = (0, 0, 0, 0, 3, 3, 2, 0, 0, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 3)
_FIXED = tuple(
    _FIXED_BY_KIND[b & 0x1F] if (b & 0x1F) < len(_FIXED_BY_KIND) else _BAD for b in range(256)
)
_PER_VLEN = tuple(
    _PER_VLEN_BY_KIND[b & 0x1F] if (b & 0x1F) < len(_PER_VLEN_BY_KIND) else 0
    for b in range(256)
)

_LONG_NAMES = (
    "long",
    "long int",
    "int long",
    "unsigned long",
    "long unsigned",
    "unsigned long int",
    "unsigned int long",
    "long unsigned int",
    "long int unsigned",
    "int unsigned long",
    "int long unsigned",
)


def _s32(v: int) -> int:
    return v - 0x1_0000_0000 if v & 0x8000_0000 else v


class Spec:
    """Types of one BTF blob (optionally split on a ``base`` Spec).

    Type ids are global: a split spec's first id is its base's type count, and ids below
    it are answered by the base, as libbpf does for module BTF. ``index_names`` records
    every type's name offset in the indexing pass, for callers about to search many names
    (CO-RE relocation, minimizing); without it the first searches scan the type section.
    """

    def __init__(
        self,
        data: bytes | memoryview,
        *,
        base: Spec | None = None,
        source: str = "<bytes>",
        _offsets: _U32s | None = None,
        _by_name: tuple[_U32s, _U32s] | None = None,
        index_names: bool = False,
        find_names: Iterable[str] = (),
        prefix_sep: str = "",
    ):
        self.source = source
        self.base = base
        self._data = data
        if len(data) < HEADER_LEN:
            raise BTFError(f"too short for a BTF header ({len(data)} bytes)", source=source)
        if data[0] == 0x9F and data[1] == 0xEB:
            self.endian = "<"
        elif data[0] == 0xEB and data[1] == 0x9F:
            self.endian = ">"
        else:
            raise BTFError(f"bad magic {data[0]:02x}{data[1]:02x}", source=source, offset=0)
        _, version, flags, hdr_len, type_off, type_len, str_off, str_len = _HEADER[
            self.endian
        ].unpack_from(data, 0)
        if version != 1:
            raise BTFError(f"unsupported version {version}", source=source, offset=2)
        self.flags = flags
        if hdr_len < HEADER_LEN or hdr_len > len(data):
            raise BTFError(f"bad header length {hdr_len}", source=source, offset=4)
        self.header_len = hdr_len
        tstart, sstart = hdr_len + type_off, hdr_len + str_off
        if tstart + type_len > len(data) or tstart > len(data):
            raise BTFError(
                f"type section ({type_len} bytes at {tstart:#x}) runs past the end "
                f"({len(data)} bytes)",
                source=source,
                offset=12,
            )
        if sstart + str_len > len(data) or sstart > len(data):
            raise BTFError(
                f"string section ({str_len} bytes at {sstart:#x}) runs past the end "
                f"({len(data)} bytes)",
                source=source,
                offset=20,
            )
        if type_off % 4 or type_len % 4:
            raise BTFError(
                f"type section at {type_off:#x} of {type_len} bytes is not 4-byte aligned",
                source=source,
                offset=8,
            )
        if tstart < sstart + str_len and sstart < tstart + type_len:
            raise BTFError("type and string sections overlap", source=source, offset=8)
        self._tstart: int = int(tstart)
        self._tend: int = int(tstart + type_len)
        # bytes even when ``data`` is a mapped view: searches need bytes.find and split
        self._strings = bytes(data[sstart : sstart + str_len])
        if base is None:
            if not self._strings or self._strings[0] != 0:
                raise BTFError(
                    "string section must start with an empty string", source=source, offset=sstart
                )
        if self._strings and self._strings[-1] != 0:
            raise BTFError(
                "string section is not NUL-terminated",
                source=source,
                offset=sstart + str_len - 1,
            )
        self._str_base = base.strings_size if base is not None else 0
        self.first_id: int = base.type_count if base is not None else 1
        words: array[int] | memoryview
        if self.endian == _NATIVE:
            words = memoryview(data)[tstart : self._tend].cast("I")
        else:
            swapped = array("I")
            swapped.frombytes(data[tstart : self._tend])
            swapped.byteswap()
            words = swapped
        self._words = words
        self._str_cache: dict[int, str] = {}
        self._str_lookups = 0
        self._str_offsets: dict[bytes, int] | None = None
        self._str_dups: set[bytes] = set()
        self._str_found: dict[bytes, list[int]] = {}
        self._str_prefixed: dict[bytes, dict[bytes, list[int]]] = {}
        self._ids_found: dict[int, list[int]] = {}
        column: bytes | None = None
        if _offsets is None:
            wanted = None
            if base is None and not index_names:
                wanted = self._scan_strings(find_names, prefix_sep)
            _offsets, names, hits = self._index(words, index_names, wanted)
            column = names.tobytes() if names is not None else None
            if wanted is not None:
                found: dict[int, list[int]] = {off: [] for off in wanted}
                for i in hits:
                    found[words[i]].append(self.first_id + bisect_left(_offsets, i))
                self._ids_found = found
        else:
            self._check_index(words, _offsets)
        self._offsets: _U32s = _offsets
        self.type_count: int = self.first_id + len(self._offsets)
        self._types: dict[int, Type] = {}
        self._strings_loaded = False
        self._name_index: dict[str, list[int]] | None = None
        self._ptr_size: int | None = None
        if _by_name is not None and not (
            len(_by_name[0]) == len(_by_name[1]) == len(self._offsets)
        ):
            _by_name = None
        self._by_name: tuple[_U32s, _U32s] | None = _by_name
        #: every own type's name offset (native words), in id order: name searches
        self._name_column: bytes | None = column
        self._name_lookups = 0
        self._member_idx: dict[int, _Layout] = {}
        self._layouts: dict[bytes, _Layout] = {}

    # -- indexing ------------------------------------------------------------------

    def _index(self, words: array[int] | memoryview, with_names: bool,
               wanted: set[int] | None = None
               ) -> tuple[array[int], array[int] | None, list[int]]:
        """Each record's word offset (and with ``with_names`` its name offset), in one
        pass.

        A record's length depends only on its info word, and a kernel has a few hundred
        distinct info words: a dict of info -> length beats decoding kind and vlen. The
        name column costs a quarter of the pass and saves every later name search a scan
        of the whole type section: worth it for the many searches of CO-RE, not for one.
        With ``wanted`` (name offsets) the records named so are listed instead (their word
        offsets), for a caller that knows every name it will search."""
        offsets = array("I")
        hits: list[int] = []
        if wanted is not None:
            hit = hits.append
        append = offsets.append
        names = array("I") if with_names else None
        name_append = names.append if names is not None else None
        steps: dict[int, int] = {}
        n = len(words)
        i = 0
        while True:
            try:
                if name_append is not None:
                    while i < n:
                        append(i)
                        name_append(words[i])
                        i += steps[words[i + 1]]
                elif wanted is not None:
                    while i < n:
                        append(i)
                        if words[i] in wanted:
                            hit(i)
                        i += steps[words[i + 1]]
                else:
                    while i < n:
                        append(i)
                        i += steps[words[i + 1]]
                break
            except KeyError as miss:
                info = miss.args[0]
                top = info >> 24
                step = steps[info] = _FIXED[top] + _PER_VLEN[top] * (info & 0xFFFF)
                i += step
            except IndexError:
                break
        if i != n:
            self._index_error(words, offsets)
        return offsets, names, hits

    def _check_index(self, words: array[int] | memoryview, offsets: _U32s) -> None:
        """Cheap sanity check of a persisted index: it must end exactly at the last record."""
        n = len(words)
        last = offsets[-1] if offsets else 0
        if not offsets or offsets[0] != 0 or last + 3 > n:
            raise BTFError("stale type index", source=self.source)
        top = words[last + 1] >> 24
        if last + _FIXED[top] + _PER_VLEN[top] * (words[last + 1] & 0xFFFF) != n:
            raise BTFError("stale type index", source=self.source)

    def _index_error(self, words: array[int] | memoryview, offsets: array[int]) -> None:
        """Re-walk the records that broke the fast loop to say precisely what is wrong."""
        n = len(words)
        for pos, start in enumerate(offsets):
            tid = self.first_id + pos
            at = self._tstart + start * 4
            if start + 3 > n:
                raise BTFError(
                    f"type [{tid}]: header truncated ({(n - start) * 4} of 12 bytes)",
                    source=self.source,
                    offset=at,
                )
            info = words[start + 1]
            kind = (info >> 24) & 0x1F
            if kind == 0 or kind > Kind.ENUM64:
                raise BTFError(
                    f"type [{tid}]: unknown kind {kind}", source=self.source, offset=at + 4
                )
            size = _FIXED_BY_KIND[kind] + _PER_VLEN_BY_KIND[kind] * (info & 0xFFFF)
            if start + size > n:
                raise BTFError(
                    f"type [{tid}] {Kind(kind).name} with vlen {info & 0xFFFF} needs "
                    f"{size * 4} bytes, only {(n - start) * 4} left in the type section",
                    source=self.source,
                    offset=at,
                )
        raise BTFError("inconsistent type section", source=self.source, offset=self._tstart)

    # -- strings -------------------------------------------------------------------

    @property
    def strings_size(self) -> int:
        """Size of the string space this spec and its base cover (next split's base)."""
        return self._str_base + len(self._strings)

    def string(self, offset: int) -> str:
        """The NUL-terminated string at ``offset`` in the (base + own) string space."""
        cached = self._str_cache.get(offset)
        if cached is not None:
            return cached
        if offset < self._str_base:
            assert self.base is not None
            return self.base.string(offset)
        rel = offset - self._str_base
        if rel >= len(self._strings):
            raise BTFError(
                f"string offset {offset} is past the string section ({self.strings_size} bytes)",
                source=self.source,
            )
        end = self._strings.index(b"\0", rel)
        s = self._strings[rel:end].decode("utf-8", "surrogateescape")
        self._str_cache[offset] = s
        return s

    def string_offsets(self, s: str) -> list[int]:
        """Every offset at which ``s`` starts in the string space (base first)."""
        found = self.base.string_offsets(s) if self.base is not None else []
        if not s:
            return [0, *found] if self.base is None else found
        key = s.encode("utf-8", "surrogateescape")
        prefetched = self._str_found.get(key)
        if prefetched is not None:
            return found + prefetched
        self._str_lookups += 1
        if self._str_offsets is None and self._str_lookups > _STRING_SCANS:
            self._index_strings()
        table = self._str_offsets
        if table is not None and key not in self._str_dups:
            own = table.get(key)
            if own is not None:
                found.append(self._str_base + own)
            return found
        needle = b"\0" + key + b"\0"
        strs = self._strings
        if self.base is not None and strs.startswith(needle[1:]):
            found.append(self._str_base)
        pos = strs.find(needle)
        while pos >= 0:
            found.append(self._str_base + pos + 1)
            pos = strs.find(needle, pos + 1)
        return found

    def prefetch_string_offsets(self, names: Iterable[str], *, prefix_sep: str = "") -> None:
        """Find several strings in one pass over the string section (a CO-RE pass knows
        every type name it will look up before the first): each later
        :meth:`string_offsets` of one of them is a dict lookup. One regular expression
        scan costs about what three single searches do. With ``prefix_sep`` the same pass
        also finds the strings that start with a name and then ``prefix_sep`` (CO-RE's
        ``name___flavor``), for :meth:`prefixed_string_offsets`."""
        names = list(names)
        if self.base is not None:
            self.base.prefetch_string_offsets(names, prefix_sep=prefix_sep)
        wanted = self._scan_strings(names, prefix_sep)
        if wanted is not None:
            self._prefetch_ids(wanted)

    def _scan_strings(self, names: Iterable[str], prefix_sep: str) -> set[int] | None:
        """The pass of :meth:`prefetch_string_offsets`: the string offsets of ``names``
        (and their prefixed forms) that types may be named by; None when a pass does not
        pay. Up to :data:`_FIND_SCANS` names, one bytes.find pass per name (a loader's
        object has one to four root types); more, one regular expression pass for all."""
        keys = {n.encode("utf-8", "surrogateescape") for n in names if n}
        keys.difference_update(self._str_found)
        if not keys or self._str_offsets is not None:
            return None
        sep = prefix_sep.encode("utf-8", "surrogateescape")
        found: dict[bytes, list[int]] = {k: [] for k in keys}
        prefixed: dict[bytes, list[int]] = {k: [] for k in keys}
        if len(keys) <= _FIND_SCANS:
            self._find_strings(keys, sep, found, prefixed)
        else:
            self._match_strings(keys, sep, found, prefixed)
        self._str_found.update(found)
        if sep:
            self._str_prefixed.setdefault(sep, {}).update(prefixed)
        wanted = {off for offs in (*found.values(), *prefixed.values()) for off in offs}
        if self.base is not None:  # own types may be named by base strings
            wanted.update(off for k in keys for off in self.base._str_found.get(k, ()))
        return wanted

    def _find_strings(self, keys: set[bytes], sep: bytes, found: dict[bytes, list[int]],
                      prefixed: dict[bytes, list[int]]) -> None:
        """Each key's strings (exact, and key + sep + ...) by searching ``\\0key``."""
        strs = self._strings
        base = self._str_base
        for key in keys:
            # a split spec's own strings start with a real string, not the empty one
            starts = [0] if self.base is not None and strs.startswith(key) else []
            needle = b"\0" + key
            hit = strs.find(needle)
            while hit >= 0:
                starts.append(hit + 1)
                hit = strs.find(needle, hit + len(needle))
            for pos in starts:
                end = pos + len(key)
                if strs[end:end + 1] == b"\0":
                    found[key].append(base + pos)
                elif sep and strs.startswith(sep, end):
                    prefixed[key].append(base + pos)

    def _match_strings(self, keys: set[bytes], sep: bytes, found: dict[bytes, list[int]],
                       prefixed: dict[bytes, list[int]]) -> None:
        """Every key's strings in one regular expression pass (a prefix tree of keys)."""
        import re

        alternatives = _trie_pattern(keys)
        tail = b"(" + re.escape(sep) + b"[^\\x00]*)?" if sep else b"()"
        pattern = re.compile(b"\\x00(" + alternatives + b")" + tail + b"(?=\\x00)")
        strs = self._strings
        base = self._str_base
        if self.base is not None:  # a split spec's own strings start with a real string
            m = re.compile(b"(" + alternatives + b")" + tail + b"(?=\\x00)").match(strs)
            if m is not None:
                (prefixed if m.group(2) else found)[m.group(1)].append(base)
        for m in pattern.finditer(strs):
            (prefixed if m.group(2) else found)[m.group(1)].append(base + m.start(1))

    def _prefetch_ids(self, wanted: set[int]) -> None:
        """The own types named at any of these string offsets, in one C-level pass over
        the name column: cheaper than a search of the column per offset past a few."""
        wanted.difference_update(self._ids_found)
        if self._by_name is not None or len(wanted) < _ID_SCANS:
            return
        if self._name_column is None:
            self._build_name_column()
        col_bytes = self._name_column
        assert col_bytes is not None
        col = memoryview(col_bytes).cast("I")
        found: dict[int, list[int]] = {off: [] for off in wanted}
        first = self.first_id
        for tid in compress(count(first), map(wanted.__contains__, col)):
            found[col[tid - first]].append(tid)
        self._ids_found.update(found)

    def prefixed_string_offsets(self, name: str, sep: str) -> list[int] | None:
        """Own offsets of strings ``name + sep + ...`` found by a prefetch with
        ``prefix_sep=sep`` (None when ``name`` was not prefetched: search yourself)."""
        table = self._str_prefixed.get(sep.encode("utf-8", "surrogateescape"))
        if table is None:
            return None
        got = table.get(name.encode("utf-8", "surrogateescape"))
        return None if got is None else list(got)

    def _index_strings(self) -> None:
        """One split of the string section into a string -> offset table: after a few
        lookups (a CO-RE pass makes hundreds) this beats scanning the section each time."""
        parts = self._strings.split(b"\0")
        parts.pop()  # after the last NUL
        starts = accumulate(map((1).__add__, map(len, parts)), initial=0)
        table = dict(zip(parts, starts, strict=False))
        if len(table) != len(parts):  # a repeated string: those keep the scan
            from collections import Counter

            self._str_dups = {p for p, n in Counter(parts).items() if n > 1}
        self._str_offsets = table

    # -- types ---------------------------------------------------------------------

    def __len__(self) -> int:
        return self.type_count

    def __contains__(self, type_id: object) -> bool:
        return isinstance(type_id, int) and 0 <= type_id < self.type_count

    def __getitem__(self, type_id: int) -> Type:
        return self.type(type_id)

    def ids(self) -> range:
        """This spec's own type ids (a split spec's start after its base's)."""
        return range(self.first_id, self.type_count)

    def items(self) -> Iterator[tuple[int, Type]]:
        for tid in self.ids():
            yield tid, self.type(tid)

    def _record(self, type_id: int) -> int:
        if type_id < self.first_id or type_id >= self.type_count:
            raise NotFoundError(f"{self.source}: type id {type_id} out of range", source=None)
        return self._offsets[type_id - self.first_id]

    def kind(self, type_id: int) -> Kind:
        """Kind of a type without decoding it."""
        if type_id == 0:
            return Kind.UNKN
        if type_id < self.first_id and self.base is not None:
            return self.base.kind(type_id)
        return Kind((self._words[self._record(type_id) + 1] >> 24) & 0x1F)

    def name(self, type_id: int) -> str:
        """Name of a type without decoding it ('' for anonymous types)."""
        if type_id == 0:
            return ""
        if type_id < self.first_id and self.base is not None:
            return self.base.name(type_id)
        return self.string(self._words[self._record(type_id)])

    def type(self, type_id: int) -> Type:
        """The decoded type with this id (cached)."""
        t = self._types.get(type_id)
        if t is not None:
            return t
        if type_id == 0:
            return Void()
        if type_id < self.first_id and self.base is not None:
            return self.base.type(type_id)
        t = self._decode(type_id, self._record(type_id))
        self._types[type_id] = t
        return t

    def _decode(self, tid: int, i: int) -> Type:
        w = self._words
        name_off, info = w[i], w[i + 1]
        kind = (info >> 24) & 0x1F
        try:
            name = self._str_cache.get(name_off)
            if name is None:
                name = self.string(name_off)
            decoder = _DECODERS[kind]
            if decoder is None:
                raise IndexError(kind)
            return decoder(self, name, w, i, info)
        except BTFError as e:
            raise BTFError(
                f"type [{tid}] {Kind(kind).name}: {e}", source=self.source,
                offset=self._tstart + i * 4,
            ) from None
        except IndexError:  # pragma: no cover - the index rejects unknown kinds
            raise BTFError(
                f"type [{tid}]: unknown kind {kind}", source=self.source,
                offset=self._tstart + i * 4,
            ) from None

    def preload_strings(self) -> None:
        """Decode the whole string section at once: cheaper when most types will be read."""
        if self._strings_loaded:
            return
        self._strings_loaded = True
        text = self._strings.decode("utf-8", "surrogateescape")
        parts = text.split("\0")
        parts.pop()
        lengths: Iterable[int]
        if text.isascii():
            lengths = map((1).__add__, map(len, parts))
        else:  # offsets are in bytes: measure the encoded pieces
            lengths = (len(p.encode("utf-8", "surrogateescape")) + 1 for p in parts)
        starts = accumulate(lengths, initial=self._str_base)
        loaded = dict(zip(starts, parts, strict=False))
        loaded.update(self._str_cache)
        self._str_cache = loaded
        if self.base is not None:
            self.base.preload_strings()

    # -- lookups -------------------------------------------------------------------

    def name_offset_index(self) -> tuple[_U32s, _U32s]:
        """Own type ids sorted by name offset, with those offsets: a persistable name index."""
        if self._by_name is None:
            w = self._words
            names = array("I", [w[o] for o in self._offsets])
            order = sorted(range(len(names)), key=names.__getitem__)
            first = self.first_id
            self._by_name = (
                array("I", [names[k] for k in order]),
                array("I", [first + k for k in order]),
            )
        return self._by_name

    def _build_name_column(self) -> None:
        """Several lookups: one pass gathers every record's name offset into a packed
        column, 6x smaller than the type section and free of false hits."""
        offsets = self._offsets
        col = array("I", itemgetter(*offsets)(self._words) if len(offsets) > 1 else
                    [self._words[o] for o in offsets])
        self._name_column = col.tobytes()

    def _ids_with_name_offset(self, name_off: int) -> list[int]:
        """Own types whose name_off is ``name_off``: search the raw words, keep headers."""
        prefetched = self._ids_found.get(name_off)
        if prefetched is not None:
            return list(prefetched)
        if self._by_name is not None:
            keys, ids = self._by_name
            lo = bisect_left(keys, name_off)
            hi = lo
            while hi < len(keys) and keys[hi] == name_off:
                hi += 1
            return sorted(ids[lo:hi])
        self._name_lookups += 1
        if self._name_column is None and self._name_lookups > 1:
            self._build_name_column()
        col_bytes = self._name_column
        if col_bytes is not None:
            return [self.first_id + pos // 4 for pos in _word_hits(
                col_bytes, array("I", [name_off]).tobytes(), 0, len(col_bytes))]
        offsets = self._offsets
        out = []
        start = self._tstart
        for pos in _word_hits(self._data, struct.pack(self.endian + "I", name_off), start,
                              self._tend):
            word = (pos - start) // 4
            idx = bisect_left(offsets, word)
            if idx < len(offsets) and offsets[idx] == word:
                out.append(self.first_id + idx)
        return out

    def find_by_name(self, name: str, kind: Kind | None = None) -> list[int]:
        """Ids of every type called ``name`` (of ``kind`` if given), base types first."""
        if self._name_index is not None:
            ids = list(self.base.find_by_name(name)) if self.base is not None else []
            ids += self._name_index.get(name, [])
        else:
            ids = self.base.find_by_name(name) if self.base is not None else []
            for off in self.string_offsets(name):
                ids += self._ids_with_name_offset(off)
            ids.sort()
        if kind is not None:
            ids = [t for t in ids if self.kind(t) == kind]
        return ids

    def find(self, name: str, kind: Kind | None = None) -> int:
        """Id of the first type called ``name`` (libbpf's btf__find_by_name_kind)."""
        if name == "void" and kind in (None, Kind.UNKN):
            return 0
        ids = self.find_by_name(name, kind)
        if not ids:
            what = f"{kind.name} " if kind is not None else ""
            raise NotFoundError(f"{self.source}: no {what}type named {name!r}")
        return ids[0]

    def build_name_index(self) -> dict[str, list[int]]:
        """A dict of every own type name to its ids, for callers doing many lookups."""
        if self._name_index is None:
            index: dict[str, list[int]] = {}
            w, s = self._words, self.string
            tid = self.first_id
            for off in self._offsets:
                index.setdefault(s(w[off]), []).append(tid)
                tid += 1
            self._name_index = index
        return self._name_index

    # -- sizes and resolution ------------------------------------------------------

    @property
    def pointer_size(self) -> int:
        """Target pointer size, guessed from ``long`` as libbpf does (8 if absent)."""
        if self._ptr_size is None:
            root: Spec = self
            while root.base is not None:
                root = root.base
            # libbpf's determine_ptr_size: the first INT in id order with a long's name
            # (kernels define it among their first types: no name search needed)
            size = 8
            long_names = frozenset(_LONG_NAMES)
            w = root._words
            for tid, off in enumerate(root._offsets, root.first_id):
                if (w[off + 1] >> 24) & 0x1F == Kind.INT and w[off] and \
                        root.string(w[off]) in long_names:
                    t = root.type(tid)
                    assert isinstance(t, Int)
                    if t.size in (4, 8):
                        size = t.size
                        break
            self._ptr_size = size
        return self._ptr_size

    def skip_modifiers(self, type_id: int) -> int:
        """Follow const/volatile/restrict/type_tag."""
        for _ in range(MAX_RESOLVE_DEPTH):
            t = self.type(type_id)
            if not isinstance(t, Const | Volatile | Restrict | TypeTag):
                return type_id
            type_id = t.type
        raise BTFError(f"type [{type_id}]: modifier chain too long or cyclic", source=self.source)

    def resolve(self, type_id: int) -> int:
        """Follow typedefs and modifiers to the underlying type (skip_mods_and_typedefs)."""
        start = type_id
        for _ in range(MAX_RESOLVE_DEPTH):
            t = self.type(type_id)
            if not isinstance(t, Typedef | Const | Volatile | Restrict | TypeTag):
                return type_id
            type_id = t.type
        raise BTFError(f"type [{start}]: typedef/modifier chain too long or cyclic",
                       source=self.source)

    def size_of(self, type_id: int) -> int:
        """Size in bytes (libbpf's btf__resolve_size), read from the records without
        decoding them (sizing an embedded 250-member struct needs one word of it)."""
        start = type_id
        nelems = 1
        owner = self
        for _ in range(MAX_RESOLVE_DEPTH):
            while type_id < owner.first_id and owner.base is not None:
                owner = owner.base
            if type_id == 0:
                raise BTFError(f"type [{start}]: UNKN '' has no size", source=self.source)
            i = owner._record(type_id)
            w = owner._words
            kind = (w[i + 1] >> 24) & 0x1F
            if kind in _SIZED_KINDS:
                size = w[i + 2]
                break
            if kind == Kind.PTR:
                size = self.pointer_size
                break
            if kind in _REF_KINDS:
                type_id = w[i + 2]
                continue
            if kind == Kind.ARRAY:
                n = w[i + 5]
                if nelems and n > 0xFFFFFFFF // nelems:
                    raise BTFError(f"type [{start}]: array size overflows", source=self.source)
                nelems *= n
                type_id = w[i + 3]
                continue
            t = owner.type(type_id)
            raise BTFError(
                f"type [{start}]: {t.kind.name} {t.name!r} has no size", source=self.source
            )
        else:
            raise BTFError(f"type [{start}]: type chain too long or cyclic", source=self.source)
        if nelems and size > 0xFFFFFFFF // nelems:
            raise BTFError(f"type [{start}]: size overflows", source=self.source)
        return nelems * size

    # -- raw reads: a few words of a record instead of the decoded type ------------------
    # CO-RE matching walks every copy of task_struct & co. in old kernels' undeduplicated
    # BTF (476 in CentOS 8's); decoding a 250-member struct costs more than matching it.

    def resolve_kind(self, type_id: int, limit: int = MAX_RESOLVE_DEPTH
                     ) -> tuple[int, int] | None:
        """(id, kind) after typedefs and modifiers (skip_mods_and_typedefs), or None when
        the chain is longer than ``limit``."""
        owner = self
        for _ in range(limit):
            if type_id == 0:
                return 0, 0
            while type_id < owner.first_id and owner.base is not None:
                owner = owner.base
            try:  # ids >= 1 and not below a base: the offset cannot be negative
                i = owner._offsets[type_id - owner.first_id]
            except IndexError:
                i = owner._record(type_id)  # raises NotFoundError
            w = owner._words
            kind = (w[i + 1] >> 24) & 0x1F
            if kind not in _MOD_KINDS:
                return type_id, kind
            type_id = w[i + 2]
        return None

    def vlen(self, type_id: int) -> int:
        """A record's vlen: members, enum values, parameters or variables."""
        if type_id == 0:
            return 0
        owner = self
        while type_id < owner.first_id and owner.base is not None:
            owner = owner.base
        return owner._words[owner._record(type_id) + 1] & 0xFFFF

    def member(self, type_id: int, index: int) -> Member:
        """Member ``index`` of a struct or union, decoded alone."""
        t = self._types.get(type_id)
        if t is not None and isinstance(t, Struct | Union) and 0 <= index < len(t.members):
            return t.members[index]
        owner, j, kflag = self._member_record(type_id, index)
        w = owner._words
        name = _str_of(owner, w[j])
        if kflag:
            off = w[j + 2]
            return Member(name, w[j + 1], off & 0xFFFFFF, off >> 24)
        return Member(name, w[j + 1], w[j + 2])

    def member_at(self, type_id: int, index: int) -> tuple[int, int, int]:
        """(type id, bit offset, bitfield size) of member ``index``: :meth:`member`
        without its name."""
        owner, j, kflag = self._member_record(type_id, index)
        w = owner._words
        if kflag:
            off = w[j + 2]
            return w[j + 1], off & 0xFFFFFF, off >> 24
        return w[j + 1], w[j + 2], 0

    def _member_record(self, type_id: int, index: int) -> tuple[Spec, int, int]:
        """(owning spec, word offset of member ``index``'s record, kind_flag)."""
        owner = self
        while type_id < owner.first_id and owner.base is not None:
            owner = owner.base
        i = owner._record(type_id)
        info = owner._words[i + 1]
        if (info >> 24) & 0x1F not in (Kind.STRUCT, Kind.UNION) or not \
                0 <= index < info & 0xFFFF:
            raise BTFError(f"type [{type_id}] has no member #{index}", source=self.source)
        return owner, i + 3 + 3 * index, info >> 31

    def member_index(self, type_id: int) -> tuple[dict[str, int], tuple[int, ...]]:
        """A struct's or union's first member index by name, and its anonymous members'
        indexes."""
        layout = self._layout(type_id)
        return layout[0], layout[1]

    def member_names(self, type_id: int) -> tuple[str, ...]:
        """A struct's or union's member names, in order."""
        return self._layout(type_id)[2]

    def _layout(self, type_id: int) -> _Layout:
        """What a composite's member names say, shared by every composite with the same
        name offsets (the copies of one struct in undeduplicated BTF): each copy costs a
        slice of its record."""
        owner = self
        while type_id < owner.first_id and owner.base is not None:
            owner = owner.base
        got = owner._member_idx.get(type_id)
        if got is not None:
            return got
        i = owner._record(type_id)
        w = owner._words
        info = w[i + 1]
        if (info >> 24) & 0x1F not in (Kind.STRUCT, Kind.UNION):
            raise BTFError(f"type [{type_id}] is not a struct or union", source=self.source)
        name_offs = w[i + 3 : i + 3 + 3 * (info & 0xFFFF) : 3]
        key = name_offs.tobytes()
        got = owner._layouts.get(key)
        if got is None:
            names = tuple([_str_of(owner, off) for off in name_offs])
            by_name: dict[str, int] = {}
            anon = []
            for idx, name in enumerate(names):
                if name:
                    by_name.setdefault(name, idx)
                else:
                    anon.append(idx)
            got = owner._layouts[key] = (by_name, tuple(anon), names)
        owner._member_idx[type_id] = got
        return got

    def align_of(self, type_id: int) -> int:
        """Alignment in bytes (libbpf's btf__align_of); 1 for packed composites."""
        return self._align_of(type_id, 0)

    def _align_of(self, type_id: int, depth: int) -> int:
        if depth > MAX_NESTING:
            raise BTFError(f"type [{type_id}]: nesting too deep or cyclic", source=self.source)
        t = self.type(type_id)
        if isinstance(t, Int | Enum | Enum64 | Float):
            return min(self.pointer_size, t.size)
        if isinstance(t, Pointer):
            return self.pointer_size
        if isinstance(t, Typedef | Volatile | Const | Restrict | TypeTag):
            return self._align_of(t.type, depth + 1)
        if isinstance(t, Array):
            return self._align_of(t.type, depth + 1)
        if isinstance(t, Struct | Union):
            max_align = 1
            for m in t.members:
                align = self._align_of(m.type, depth + 1)
                if align <= 0:
                    raise BTFError(
                        f"type [{type_id}]: member {m.name!r} has alignment {align}",
                        source=self.source,
                    )
                max_align = max(max_align, align)
                if m.bitfield_size == 0 and m.offset % (8 * align):
                    return 1
            if t.size % max_align:
                return 1
            return max_align
        raise BTFError(
            f"type [{type_id}]: {t.kind.name} {t.name!r} has no alignment", source=self.source
        )

    def member_offset(self, type_id: int, path: str) -> tuple[int, int, int]:
        """(bit offset, bitfield size, member type id) of a dotted member path.

        Anonymous struct/union members are searched through, as C does, so
        ``member_offset(task_struct, "__state")`` works whatever wraps the field; an
        ``[N]`` suffix indexes an array member.
        """
        bit = 0
        cur = type_id
        bitfield = 0
        for part in path.split("."):
            index = None
            if part.endswith("]") and "[" in part:
                part, _, idx = part[:-1].partition("[")
                index = int(idx)
            comp = self.type(self.resolve(cur))
            if not isinstance(comp, Struct | Union):
                raise NotFoundError(
                    f"{self.source}: type [{cur}] {comp.kind.name} has no members "
                    f"(looking for {part!r})"
                )
            found = self._find_member(comp, part, 0)
            if found is None:
                raise NotFoundError(
                    f"{self.source}: {comp.kind.name.lower()} {comp.name or '(anon)'} "
                    f"[{cur}] has no member {part!r}"
                )
            off, m = found
            bit += off
            bitfield = m.bitfield_size
            cur = m.type
            if index is not None:
                arr = self.type(self.resolve(cur))
                if not isinstance(arr, Array):
                    raise NotFoundError(f"{self.source}: member {part!r} is not an array")
                bit += index * 8 * self.size_of(arr.type)
                cur = arr.type
                bitfield = 0
        return bit, bitfield, cur

    def _find_member(
        self, comp: Struct | Union, name: str, depth: int
    ) -> tuple[int, Member] | None:
        if depth > MAX_NESTING:
            raise BTFError(f"{comp.name!r}: anonymous members nest too deep", source=self.source)
        for m in comp.members:
            if m.name == name:
                return m.offset, m
        for m in comp.members:
            if not m.name:
                inner = self.type(self.resolve(m.type))
                if isinstance(inner, Struct | Union):
                    found = self._find_member(inner, name, depth + 1)
                    if found is not None:
                        return m.offset + found[0], found[1]
        return None

    # -- raw access ----------------------------------------------------------------

    @property
    def raw(self) -> bytes:
        """The BTF blob this spec was parsed from (a view of a mapped cache file is
        copied once, on first use: callers keep and hand on bytes)."""
        data = self._data
        if isinstance(data, memoryview):
            data = self._data = bytes(data)
        return data

    @property
    def type_section_offset(self) -> int:
        return self._tstart

    def record_offset(self, type_id: int) -> int:
        """Byte offset of a type's record in the blob (for error messages and tools)."""
        return self._tstart + 4 * self._record(type_id)

    @property
    def offsets(self) -> _U32s:
        """Word offset of each own type's record in the type section."""
        return self._offsets


# -- per-kind decoders: (spec, name, words, record word offset, info) -> Type ------------

_Words: TypeAlias = "array[int] | memoryview"


def _str_of(spec: Spec, off: int) -> str:
    s = spec._str_cache.get(off)
    return s if s is not None else spec.string(off)


def _dec_int(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    v = w[i + 3]
    return Int(name, w[i + 2], (v >> 24) & 0xF, (v >> 16) & 0xFF, v & 0xFF)


def _dec_ptr(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Pointer(w[i + 2], name)


def _dec_array(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Array(w[i + 3], w[i + 4], w[i + 5], name)


def _dec_members(spec: Spec, w: _Words, i: int, info: int) -> list[Member]:
    end = i + 3 + 3 * (info & 0xFFFF)
    cache = spec._str_cache
    string = spec.string
    out = []
    if info >> 31:
        for j in range(i + 3, end, 3):
            n = cache.get(w[j])
            off = w[j + 2]
            out.append(
                Member(n if n is not None else string(w[j]), w[j + 1], off & 0xFFFFFF, off >> 24)
            )
    else:
        for j in range(i + 3, end, 3):
            n = cache.get(w[j])
            out.append(Member(n if n is not None else string(w[j]), w[j + 1], w[j + 2]))
    return out


def _dec_struct(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Struct(name, w[i + 2], _dec_members(spec, w, i, info), bool(info >> 31))


def _dec_union(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Union(name, w[i + 2], _dec_members(spec, w, i, info), bool(info >> 31))


def _dec_enum(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    signed = bool(info >> 31)
    conv = _s32 if signed else int
    end = i + 3 + 2 * (info & 0xFFFF)
    values = [EnumValue(_str_of(spec, w[j]), conv(w[j + 1])) for j in range(i + 3, end, 2)]
    return Enum(name, w[i + 2], values, signed)


def _dec_enum64(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    signed = bool(info >> 31)
    values = []
    for j in range(i + 3, i + 3 + 3 * (info & 0xFFFF), 3):
        v = w[j + 1] | (w[j + 2] << 32)
        if signed and v >> 63:
            v -= 1 << 64
        values.append(EnumValue(_str_of(spec, w[j]), v))
    return Enum64(name, w[i + 2], values, signed)


def _dec_fwd(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Fwd(name, bool(info >> 31))


def _dec_typedef(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Typedef(name, w[i + 2])


def _dec_volatile(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Volatile(w[i + 2], name)


def _dec_const(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Const(w[i + 2], name)


def _dec_restrict(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Restrict(w[i + 2], name)


def _dec_func(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Func(name, w[i + 2], info & 0xFFFF)


def _dec_func_proto(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    end = i + 3 + 2 * (info & 0xFFFF)
    params = [Param(_str_of(spec, w[j]), w[j + 1]) for j in range(i + 3, end, 2)]
    return FuncProto(w[i + 2], params, name)


def _dec_var(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Var(name, w[i + 2], w[i + 3])


def _dec_datasec(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    end = i + 3 + 3 * (info & 0xFFFF)
    secinfo = [VarSecinfo(w[j], w[j + 1], w[j + 2]) for j in range(i + 3, end, 3)]
    return Datasec(name, w[i + 2], secinfo)


def _dec_float(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return Float(name, w[i + 2])


def _dec_decl_tag(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return DeclTag(name, w[i + 2], _s32(w[i + 3]), bool(info >> 31))


def _dec_type_tag(spec: Spec, name: str, w: _Words, i: int, info: int) -> Type:
    return TypeTag(name, w[i + 2], bool(info >> 31))


_DECODERS = (
    None,
    _dec_int,
    _dec_ptr,
    _dec_array,
    _dec_struct,
    _dec_union,
    _dec_enum,
    _dec_fwd,
    _dec_typedef,
    _dec_volatile,
    _dec_const,
    _dec_restrict,
    _dec_func,
    _dec_func_proto,
    _dec_var,
    _dec_datasec,
    _dec_float,
    _dec_decl_tag,
    _dec_type_tag,
    _dec_enum64,
)
