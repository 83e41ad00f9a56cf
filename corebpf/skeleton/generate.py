"""``corebpf gen skeleton``: a Python module for a BPF object, as bpftool writes a C header
and bpf2go a Go file.

The module holds data and names only: the object (embedded, or the paths of its variants
beside the module), one ctypes class per struct, union and data section laid out from the
object's BTF by the same builder the run-time uses, IntEnums for its enums, and the
skeleton class with typed attributes for its globals, maps and programs. Types come
from every named struct, union and enum of the object's BTF, not just those a map names
(users' types behind ``bpf_ringbuf_reserve`` casts are what they want), except the kernel's
own: the types CO-RE relocates (``preserve_access_index``, vmlinux.h) and program context
types, whose local layout means nothing in user space.
"""

from __future__ import annotations

import ctypes
import keyword
import os
import re
import sys

from .. import __version__
from ..btf import types as bt
from ..errors import Error
from ..obj.object import KCONFIG_SEC, MapSpec, ObjectSpec
from .runtime import (
    _EVENT_MAP_TYPES,
    MAP_TYPE_RINGBUF,
    Embedded,
    _section_attr,
    _TypeBinder,
    section_fields,
)
from .types import Bitfield, _is_char_array

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from ..btf import Spec

__all__ = ["GenerateError", "class_name_for", "generate"]

_PERCPU_TYPES = {5, 6, 10, 21}  # percpu hash, percpu array, lru percpu hash, cgroup storage

_SIMPLE = {
    ctypes.c_int8: "ctypes.c_int8", ctypes.c_uint8: "ctypes.c_uint8",
    ctypes.c_int16: "ctypes.c_int16", ctypes.c_uint16: "ctypes.c_uint16",
    ctypes.c_int32: "ctypes.c_int32", ctypes.c_uint32: "ctypes.c_uint32",
    ctypes.c_int64: "ctypes.c_int64", ctypes.c_uint64: "ctypes.c_uint64",
    ctypes.c_char: "ctypes.c_char", ctypes.c_bool: "ctypes.c_bool",
    ctypes.c_float: "ctypes.c_float", ctypes.c_double: "ctypes.c_double",
}
_PY_SIMPLE = {ctypes.c_char: "bytes", ctypes.c_bool: "bool", ctypes.c_float: "float",
              ctypes.c_double: "float"}


class GenerateError(Error):
    """An object a skeleton cannot be generated for (no BTF, a --type it lacks)."""


def camel(name: str) -> str:
    """``hist_key`` -> ``HistKey``; a leading digit or empty name gets a prefix."""
    out = "".join(p[:1].upper() + p[1:] for p in re.split(r"[^0-9A-Za-z]+", name) if p)
    if not out or out[0].isdigit():
        out = "T" + out
    return out


def class_name_for(obj_path: str) -> str:
    """The skeleton class of ``minimal.bpf.o`` (or ``minimal.bpfel.o``): ``Minimal``."""
    return camel(os.path.basename(obj_path).split(".")[0])


def _ident(name: str) -> str:
    return name + "_" if keyword.iskeyword(name) else name


def _reachable(spec: Spec, roots: list[int]) -> set[int]:
    """Every type id reachable from ``roots`` (members, pointees, elements, params)."""
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        tid = stack.pop()
        if tid in seen or tid == 0:
            continue
        seen.add(tid)
        stack.extend(bt.referenced_ids(spec.type(tid)))
    return seen


class _Generator:
    def __init__(self, obj: ObjectSpec, class_name: str, extra_types: list[str]):
        if obj.btf is None:
            raise GenerateError(f"{obj.source}: no BTF (build with clang -g)")
        self.obj = obj
        self.spec: Spec = obj.btf
        self.cls = class_name
        self.binder = _TypeBinder(obj, {})
        self.builder = self.binder.builder()
        # classes in this machine's byte order whatever the object's: layouts are the same,
        # and the skeleton runs the object of the machine's byte order
        self.builder.native = True
        self.extra = extra_types
        self.names: dict[Any, str] = {}   # ctypes class -> Python name
        self.enums: list[tuple[str, bt.Enum | bt.Enum64]] = []
        self.section_classes: dict[str, Any] = {}
        #: sha256 of each variant whose layouts were checked against the classes
        self.digests: dict[str, str] = {}
        self.used_names: set[str] = {class_name, f"{class_name}Maps",
                                     f"{class_name}Programs"}

    # -- which types ---------------------------------------------------------------------

    def user_roots(self) -> list[int]:
        roots: list[int] = []
        for m in self.obj.maps.values():
            roots += [m.key_type_id, m.value_type_id]
            roots += [v.type_id for v in m.variables]
        spec = self.spec
        for name in self.extra:
            kind, _, bare = name.strip().rpartition(" ")
            kinds = {"struct": [bt.Kind.STRUCT], "union": [bt.Kind.UNION],
                     "enum": [bt.Kind.ENUM, bt.Kind.ENUM64]}.get(
                kind, [bt.Kind.STRUCT, bt.Kind.UNION, bt.Kind.ENUM, bt.Kind.ENUM64,
                       bt.Kind.TYPEDEF])
            ids = [i for k in kinds for i in spec.find_by_name(bare, k)]
            if not ids:
                raise GenerateError(f"{self.obj.source}: --type {name!r}: no such type in "
                                    "the object's BTF")
            roots += ids
        return [r for r in roots if r]

    def kernel_types(self) -> set[int]:
        roots: list[int] = []
        for p in self.obj.programs.values():
            roots += [r.type_id for r in p.core_relos]
        spec = self.spec
        entries = {p.name for p in self.obj.entry_programs()}
        for tid in range(1, len(spec)):
            t = spec.type(tid)
            if isinstance(t, bt.Func) and t.name in entries:  # their context types
                roots.append(t.type)
        return _reachable(spec, roots)

    def selected(self) -> list[int]:
        spec = self.spec
        user = _reachable(spec, self.user_roots())
        kernel = self.kernel_types() - user
        out = []
        for tid in range(1, len(spec)):
            t = spec.type(tid)
            if tid in kernel:
                continue
            if isinstance(t, bt.Struct | bt.Union | bt.Enum | bt.Enum64) and (
                    t.name or tid in user):
                out.append(tid)
        return out

    # -- naming --------------------------------------------------------------------------

    def unique(self, name: str) -> str:
        base, n = name, 2
        while name in self.used_names:
            name, n = f"{base}{n}", n + 1
        self.used_names.add(name)
        return name

    def name_classes(self) -> None:
        spec = self.spec
        typedef_of: dict[int, str] = {}
        for tid in range(1, len(spec)):
            t = spec.type(tid)
            if isinstance(t, bt.Typedef) and t.name:
                typedef_of.setdefault(t.type, t.name)
        owner: dict[Any, tuple[Any, str]] = {}
        for cls in self.builder.built:
            for f in cls.__dict__.get("_fields_", ()):
                ct = f[1]
                while isinstance(ct, type) and issubclass(ct, ctypes.Array):
                    ct = ct._type_
                if ct in self.builder.built:
                    owner.setdefault(ct, (cls, f[0]))
        kinds: dict[str, int] = {}
        for tid in self.builder.built.values():
            t = spec.type(tid)
            if t.name:
                kinds[t.name] = kinds.get(t.name, 0) + 1

        def name_of(cls: Any) -> str:
            if cls in self.names:
                return self.names[cls]
            tid = self.builder.built[cls]
            t = spec.type(tid)
            if t.name:
                raw = camel(t.name)
                if kinds.get(t.name, 0) > 1 or raw in self.used_names:
                    raw = camel(("union_" if isinstance(t, bt.Union) else "struct_") + t.name)
            elif tid in typedef_of:
                raw = camel(typedef_of[tid])
            elif cls in owner:
                parent, field = owner[cls]
                raw = name_of(parent) + camel(field.lstrip("_"))
            else:
                raw = f"Anon{tid}"
            self.names[cls] = self.unique(raw)
            return self.names[cls]

        for cls in self.builder.built:
            name_of(cls)

    # -- rendering -----------------------------------------------------------------------

    def ctype_src(self, ct: Any) -> str:
        if ct in _SIMPLE:
            return _SIMPLE[ct]
        if ct in self.names:
            return self.names[ct]
        if isinstance(ct, type) and issubclass(ct, ctypes.Array):
            return f"{self.ctype_src(ct._type_)} * {ct._length_}"
        raise GenerateError(f"{self.obj.source}: no source form for {ct!r}")

    def py_type(self, ct: Any) -> str:
        if ct in _PY_SIMPLE:
            return _PY_SIMPLE[ct]
        if ct in _SIMPLE:
            return "int"
        if ct in self.names:
            return self.names[ct]
        if _is_char_array(ct):
            return "str"
        if isinstance(ct, type) and issubclass(ct, ctypes.Array):
            return f"ctypes.Array[{self.array_elem(ct._type_)}]"
        return "object"

    def array_elem(self, ct: Any) -> str:
        if isinstance(ct, type) and issubclass(ct, ctypes.Array):
            return f"ctypes.Array[{self.array_elem(ct._type_)}]"
        return self.ctype_src(ct)

    def render_class(self, cls: Any, base: str, doc: str, extra: list[str] | None = None
                     ) -> list[str]:
        out = [f"class {self.names[cls]}({base}):", f'    """{doc}"""', ""]
        out += extra or []
        out.append("    _pack_ = 1")
        anon = list(cls.__dict__.get("_anonymous_", ()))
        if anon:
            out.append(f"    _anonymous_ = ({', '.join(repr(a) for a in anon)},)")
        for name, attr in cls.__dict__.items():
            if isinstance(attr, Bitfield):
                out.append(f"    {name} = _skel.Bitfield({attr.raw!r}, {attr.bit_offset}, "
                           f"{attr.bits}, {attr.signed})")
        out.append("    _fields_ = (")
        for f in cls.__dict__["_fields_"]:
            bits = f", {f[2]}" if len(f) > 2 else ""
            out.append(f"        ({f[0]!r}, {self.ctype_src(f[1])}{bits}),")
        out.append("    )")
        ann = []
        for name, (ct, _bits) in cls._field_types_.items():
            if name.startswith("_") or not name.isidentifier() or keyword.iskeyword(name):
                continue
            noqa = "  # noqa: E741" if name in ("l", "O", "I") else ""
            ann.append(f"    {name}: {'int' if ct is None or _bits else self.py_type(ct)}"
                       f"{noqa}")
        if ann:
            out.append("")
            out += ann
        return [*out, "", ""]

    def render_enum(self, name: str, t: bt.Enum | bt.Enum64) -> list[str]:
        out = [f"class {name}(enum.IntEnum):", f'    """enum {t.name or "(anonymous)"}"""', ""]
        seen: set[str] = set()
        for v in t.values:
            member = _ident(v.name)
            if not member.isidentifier() or member in seen or member.startswith("_"):
                continue
            seen.add(member)
            out.append(f"    {member} = {v.value}")
        if not seen:
            out.append("    pass")
        return [*out, "", ""]

    # -- maps ---------------------------------------------------------------------------

    def value_py(self, type_id: int) -> str:
        spec = self.spec
        if not type_id:
            return "bytes"
        cls = self.binder.value_class(type_id)
        if cls is not None:
            return self.names.get(cls, "object")
        t = spec.type(spec.resolve(type_id))
        if isinstance(t, bt.Int):
            return "bool" if t.encoding & bt.IntEncoding.BOOL else "int"
        if isinstance(t, bt.Enum | bt.Enum64 | bt.Pointer):
            return "int"
        if isinstance(t, bt.Float):
            return "float"
        if isinstance(t, bt.Array):
            et = spec.type(spec.resolve(t.type))
            if isinstance(et, bt.Int) and et.size == 1:
                return "bytes"
            return f"list[{self.value_py(t.type)}]"
        return "object"

    def map_annotation(self, m: MapSpec) -> str:
        if m.type in _EVENT_MAP_TYPES:
            ev = self.binder.event_class(m)
            kind = "RingBuf" if m.type == MAP_TYPE_RINGBUF else "PerfEventArray"
            return f"_skel.{kind}[{self.names.get(ev, 'bytes') if ev is not None else 'bytes'}]"
        if m.is_data:
            return "_skel.MapView[int, object]"
        v = self.value_py(m.value_type_id)
        if m.type in _PERCPU_TYPES:
            v = f"list[{v}]"
        return f"_skel.MapView[{self.value_py(m.key_type_id)}, {v}]"

    # -- the module ---------------------------------------------------------------------

    def prepare(self) -> None:
        """Build every class: the selected types, the data sections, event types."""
        spec = self.spec
        for tid in self.selected():
            t = spec.type(tid)
            if isinstance(t, bt.Enum | bt.Enum64):
                if t.name:
                    self.enums.append((t.name, t))
                continue
            try:
                self.builder.build(tid, 0)
            except Error as e:
                raise GenerateError(f"{self.obj.source}: {t.kind.name.lower()} {t.name}: "
                                    f"{e}") from None
        from .runtime import DataSection

        for m in self.obj.maps.values():
            if m.is_data and m.variables:
                ns = {"_pack_": 1, "_section_": m.section, "_c_name_": m.section,
                      "_fields_": section_fields(self.obj, m, self.binder)}
                self.section_classes[m.section] = type("_S", (DataSection,), ns)
            if m.type in _EVENT_MAP_TYPES:  # event types named by maps only
                self.binder.event_class(m)
        kcfg = self.binder.kconfig_class(None)
        if kcfg is not None:
            self.section_classes[KCONFIG_SEC] = kcfg
        self.name_classes()

    def module(self, obj_source: str, embed: dict[str, bytes] | None,
               files: dict[str, str] | None) -> str:
        spec = self.spec
        enum_names = {}
        for cname, _t in self.enums:
            enum_names[cname] = self.unique(camel(cname))

        body: list[str] = []
        for cname, et in self.enums:
            body += self.render_enum(enum_names[cname], et)
        for cls, tid in self.builder.built.items():
            t = spec.type(tid)
            base = "_skel.Union" if issubclass(cls, ctypes.Union) else "_skel.Struct"
            what = f"{'union' if isinstance(t, bt.Union) else 'struct'} {t.name or '(anon)'}"
            body += self.render_class(cls, base, f"{what} ({ctypes.sizeof(cls)} bytes)",
                                      [f"    _c_name_ = {t.name!r}"] if t.name else None)
        section_names: dict[str, str] = {}
        for section, cls in self.section_classes.items():
            name = self.unique(self.cls + camel(_section_attr(section)))
            self.names[cls] = name
            section_names[section] = name
            what = "the .kconfig externs (read-only)" if section == KCONFIG_SEC else section
            body += self.render_class(cls, "_skel.DataSection", f"{what} of {obj_source}",
                                      [f"    _section_ = {section!r}"])

        maps = [f"class {self.cls}Maps(_skel.Maps):", f'    """The maps of {obj_source}."""',
                ""]
        for m in self.obj.maps.values():
            if m.name.endswith(".inner"):
                continue
            attr = _section_attr(m.section) if m.is_data else m.name
            if attr.isidentifier() and not keyword.iskeyword(attr):
                maps.append(f"    {attr}: {self.map_annotation(m)}")
        if len(maps) == 3:
            maps.append("    pass")
        progs = [f"class {self.cls}Programs(_skel.Programs):",
                 f'    """The programs of {obj_source}."""', ""]
        for p in self.obj.entry_programs():
            if p.name.isidentifier() and not keyword.iskeyword(p.name):
                progs.append(f"    {p.name}: _skel.Program")
        if len(progs) == 3:
            progs.append("    pass")

        types_map = []
        for cls, tid in self.builder.built.items():
            t = spec.type(tid)
            if t.name:
                kind = "union" if isinstance(t, bt.Union) else "struct"
                types_map.append(f"        ({kind + ' ' + t.name!r}, {self.names[cls]}),")
        top = [f"class {self.cls}(_skel.Skeleton):",
               f'    """{obj_source}: open, set globals, load(), attach(), read, close()."""',
               "",
               "    _object_ = _OBJECT"]
        top += ["    _types_ = (", *types_map, "    )"] if types_map else ["    _types_ = ()"]
        top.append("    _sections_ = (")
        top += [f"        ({s!r}, {n})," for s, n in section_names.items()]
        top += ["    )", f"    _maps_class_ = {self.cls}Maps",
                f"    _progs_class_ = {self.cls}Programs", ""]
        for s, n in section_names.items():
            attr = _section_attr(s)
            if attr.isidentifier() and not keyword.iskeyword(attr):
                top.append(f"    {attr}: {n}")
        top += [f"    maps: {self.cls}Maps", f"    progs: {self.cls}Programs", ""]

        obj_lines = self.object_lines(embed, files)
        head = [f'"""Skeleton of {obj_source}, by corebpf {__version__} gen skeleton.',
                "", 'Generated: do not edit."""', "",
                "from __future__ import annotations", ""]
        text = "\n".join(body + maps + ["", ""] + progs + ["", ""] + top)
        imports = []
        if "ctypes." in text:
            imports.append("import ctypes")
        if self.enums:
            imports.append("import enum")
        head += imports + (["" ] if imports else []) + [
            "from corebpf import skeleton as _skel", "", *obj_lines, "", "", ""]
        return "\n".join(head) + text.rstrip() + "\n"

    def check_variant(self, variant: str, path: str, data: bytes) -> None:
        """Every class fits this build of the object too (same source, other target):
        the skeleton may then skip the check when it opens exactly these bytes."""
        from ..btf.codec import layout_matches
        from .runtime import _digest, _same_fields

        obj = ObjectSpec(data, source=path)
        spec = obj.btf
        if spec is None:
            raise GenerateError(f"{path}: no BTF")
        native = spec.endian == ("<" if sys.byteorder == "little" else ">")
        for cls, tid in self.builder.built.items():
            t = self.spec.type(tid)
            if not t.name:
                continue
            kind = bt.Kind.UNION if isinstance(t, bt.Union) else bt.Kind.STRUCT
            ids = spec.find_by_name(t.name, kind)
            ok = bool(ids) and (layout_matches(spec, ids[0], cls) if native
                                else spec.size_of(ids[0]) == ctypes.sizeof(cls))
            if not ok:
                raise GenerateError(f"{path} ({variant}): {kind.name.lower()} {t.name} is "
                                    f"not laid out as in {self.obj.source}: variants must be "
                                    "builds of one source")
        for m in obj.maps.values():
            cls = self.section_classes.get(m.section)
            if m.is_data and cls is not None and not _same_fields(
                    cls, section_fields(obj, m, _TypeBinder(obj, {})), m.value_size):
                raise GenerateError(f"{path} ({variant}): {m.section} differs from "
                                    f"{self.obj.source}'s")
        self.digests[variant] = _digest(data)

    def object_lines(self, embed: dict[str, bytes] | None, files: dict[str, str] | None
                     ) -> list[str]:
        stem = self.obj.name
        digests = ["    digests={"]
        digests += [f"        {v!r}: {d!r}," for v, d in self.digests.items()]
        digests.append("    },")
        if files is not None:
            out = ["_OBJECT = _skel.Files(", "    __file__,", "    {"]
            out += [f"        {v!r}: {p!r}," for v, p in files.items()]
            return [*out, "    },", *digests, ")"]
        assert embed is not None
        out = ["_OBJECT = _skel.Embedded(", f"    {stem!r},", "    {"]
        for variant, data in embed.items():
            text = Embedded.encode(data)
            out.append(f"        {variant!r}: (")
            for i in range(0, len(text), 84):
                out.append(f"            {text[i:i + 84]!r}")
            out.append("        ),")
        return [*out, "    },", *digests, ")"]


def generate(objects: dict[str, str], *, class_name: str | None = None, embed: bool = True,
             module_dir: str | None = None, extra_types: list[str] | None = None) -> str:
    """The source of a skeleton module for ``objects`` (variant -> path: ``bpfel``,
    ``bpfeb``, ``x86.bpfel``...; types come from the first). With ``embed`` the objects go
    inside the module, else the module names them relative to ``module_dir``."""
    if not objects:
        raise GenerateError("no object to generate a skeleton for")
    variants = dict(objects)
    first = next(iter(variants.values()))
    obj = ObjectSpec.load(first)
    name = class_name or class_name_for(first)
    if not name.isidentifier() or keyword.iskeyword(name):
        raise GenerateError(f"{first}: {name!r} is not a Python class name (use --name)")
    gen = _Generator(obj, name, extra_types or [])
    source = os.path.basename(first)
    data: dict[str, bytes] = {}
    for v, p in variants.items():
        try:
            with open(p, "rb") as f:
                data[v] = f.read()
        except OSError as e:
            raise GenerateError(f"{p}: cannot read: {e.strerror}") from None
    gen.prepare()
    for v, p in variants.items():
        gen.check_variant(v, p, data[v])
    if embed:
        return gen.module(source, data, None)
    base = module_dir or os.path.dirname(os.path.abspath(first))
    files = {v: os.path.relpath(os.path.abspath(p), base) for v, p in variants.items()}
    return gen.module(source, None, files)
