"""Generate the plain-class section of corebpf/btf/types.py.

The BTF kinds are simple records, but `@dataclass` costs ~15 ms of import time (the
dataclasses/inspect imports plus code generation per class) on every `corebpf` start.
This writes the same classes out as source once: __slots__, __init__, __repr__, __eq__,
__match_args__. Run: python scripts/gen_btf_types.py (rewrites between the markers).
"""

from __future__ import annotations

import re
from pathlib import Path

TYPES = Path(__file__).resolve().parents[1] / "corebpf" / "btf" / "types.py"

# name, kind (or None for helper records), docstring, fields: (name, annotation, default)
CLASSES: list[tuple[str, str | None, str, list[tuple[str, str, str | None]]]] = [
    ("Void", "UNKN", "Type id 0: ``void``. Never encoded.", [("name", "str", '""')]),
    ("Int", "INT", "", [("name", "str", None), ("size", "int", None), ("encoding", "int", "0"),
                        ("bit_offset", "int", "0"), ("bits", "int", "0")]),
    ("Pointer", "PTR", "", [("type", "int", None), ("name", "str", '""')]),
    ("Array", "ARRAY", "", [("type", "int", None), ("index_type", "int", None),
                            ("nelems", "int", None), ("name", "str", '""')]),
    ("Member", None, "A struct/union member; ``offset`` is in bits from the start of the "
     "composite.", [("name", "str", None), ("type", "int", None), ("offset", "int", None),
                    ("bitfield_size", "int", "0")]),
    ("Struct", "STRUCT", "``bitfield_encoding`` is kind_flag: member offsets carry a bitfield "
     "size in their top 8 bits.",
     [("name", "str", None), ("size", "int", None), ("members", "list[Member]", "[]"),
      ("bitfield_encoding", "bool", "False")]),
    ("Union", "UNION", "", [("name", "str", None), ("size", "int", None),
                            ("members", "list[Member]", "[]"),
                            ("bitfield_encoding", "bool", "False")]),
    ("EnumValue", None, "", [("name", "str", None), ("value", "int", None)]),
    ("Enum", "ENUM", "32-bit enum; with ``signed`` (kind_flag) values are read as signed.",
     [("name", "str", None), ("size", "int", None), ("values", "list[EnumValue]", "[]"),
      ("signed", "bool", "False")]),
    ("Enum64", "ENUM64", "", [("name", "str", None), ("size", "int", None),
                              ("values", "list[EnumValue]", "[]"), ("signed", "bool", "False")]),
    ("Fwd", "FWD", "Forward declaration; kind_flag says ``union`` rather than ``struct``.",
     [("name", "str", None), ("is_union", "bool", "False")]),
    ("Typedef", "TYPEDEF", "", [("name", "str", None), ("type", "int", None)]),
    ("Volatile", "VOLATILE", "", [("type", "int", None), ("name", "str", '""')]),
    ("Const", "CONST", "", [("type", "int", None), ("name", "str", '""')]),
    ("Restrict", "RESTRICT", "", [("type", "int", None), ("name", "str", '""')]),
    ("Func", "FUNC", "", [("name", "str", None), ("type", "int", None),
                          ("linkage", "int", "0")]),
    ("Param", None, "", [("name", "str", None), ("type", "int", None)]),
    ("FuncProto", "FUNC_PROTO", "", [("return_type", "int", None),
                                     ("params", "list[Param]", "[]"), ("name", "str", '""')]),
    ("Var", "VAR", "", [("name", "str", None), ("type", "int", None), ("linkage", "int", "0")]),
    ("VarSecinfo", None, "", [("type", "int", None), ("offset", "int", None),
                              ("size", "int", None)]),
    ("Datasec", "DATASEC", "", [("name", "str", None), ("size", "int", None),
                                ("vars", "list[VarSecinfo]", "[]")]),
    ("Float", "FLOAT", "", [("name", "str", None), ("size", "int", None)]),
    ("DeclTag", "DECL_TAG", "``component_idx`` is -1 for the type itself, else a member/param "
     "index; ``attribute`` (kind_flag) marks a plain ``__attribute__((name))``.",
     [("name", "str", None), ("type", "int", None), ("component_idx", "int", "-1"),
      ("attribute", "bool", "False")]),
    ("TypeTag", "TYPE_TAG", "", [("name", "str", None), ("type", "int", None),
                                 ("attribute", "bool", "False")]),
]

EXTRA = {
    "Int": '''
    @property
    def signed(self) -> bool:
        return bool(self.encoding & IntEncoding.SIGNED)
''',
}


def gen_class(name: str, kind: str | None, doc: str,
              fields: list[tuple[str, str, str | None]]) -> str:
    names = [f[0] for f in fields]
    params = []
    body = []
    for fname, ann, default in fields:
        if default == "[]":
            params.append(f"{fname}: {ann} | None = None")
            body.append(f"        self.{fname} = [] if {fname} is None else {fname}")
        elif default is None:
            params.append(f"{fname}: {ann}")
            body.append(f"        self.{fname} = {fname}")
        else:
            params.append(f"{fname}: {ann} = {default}")
            body.append(f"        self.{fname} = {fname}")
    out = [f"class {name}:"]
    if doc:
        out.append(f'    """{doc}"""')
        out.append("")
    out.append(f"    __slots__ = ({', '.join(repr(n) for n in names)},)")
    out.append(f"    __match_args__ = ({', '.join(repr(n) for n in names)},)")
    if kind:
        out.append(f"    kind: ClassVar[Kind] = Kind.{kind}")
    for fname, ann, _ in fields:
        out.append(f"    {fname}: {ann}")
    out.append("")
    sig = ", ".join(["self", *params])
    if len(sig) > 80:
        out.append("    def __init__(")
        out.append("        " + sig.replace(", ", ",\n        ") + ",")
        out.append("    ) -> None:")
    else:
        out.append(f"    def __init__({sig}) -> None:")
    out += body
    out.append("")
    reprs = ", ".join(f"{n}={{self.{n}!r}}" for n in names)
    out.append("    def __repr__(self) -> str:")
    out.append(f'        return f"{name}({reprs})"')
    out.append("")
    out.append("    def __eq__(self, other: object) -> bool:")
    out.append(f"        if not isinstance(other, {name}):")
    out.append("            return NotImplemented")
    cmp = " and ".join(f"self.{n} == other.{n}" for n in names)
    out.append(f"        return {cmp}")
    out.append("")
    out.append("    __hash__ = None  # type: ignore[assignment]")
    if name in EXTRA:
        out.append(EXTRA[name].rstrip("\n"))
    return "\n".join(out) + "\n"


def main() -> None:
    text = TYPES.read_text()
    start, end = "# --- generated by scripts/gen_btf_types.py ---\n", "# --- end generated ---\n"
    gen = "\n\n".join(gen_class(*c) for c in CLASSES)
    if start in text:
        head = text[: text.index(start) + len(start)]
        text = head + "\n\n" + gen + "\n\n" + text[text.index(end):]
    else:
        raise SystemExit("markers missing in types.py")
    TYPES.write_text(re.sub(r"\n{4,}", "\n\n\n", text))


if __name__ == "__main__":
    main()
