""".BTF.ext: per-section func_info, line_info and CO-RE relocation records."""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable

from .._enum import IntEnumBase, simple_enum
from .._record import field, record
from ..errors import ObjectError


@simple_enum(enum.IntEnum)
class RelocKind(IntEnumBase):
    """CO-RE relocation kinds (enum bpf_core_relo_kind), named as libbpf prints them."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12

    @property
    def libbpf_name(self) -> str:
        return _KIND_STR[self]

    @property
    def is_field(self) -> bool:
        return self <= RelocKind.FIELD_RSHIFT_U64

    @property
    def is_type(self) -> bool:
        return self in (RelocKind.TYPE_ID_LOCAL, RelocKind.TYPE_ID_TARGET,
                        RelocKind.TYPE_EXISTS, RelocKind.TYPE_SIZE, RelocKind.TYPE_MATCHES)

    @property
    def is_enumval(self) -> bool:
        return self in (RelocKind.ENUMVAL_EXISTS, RelocKind.ENUMVAL_VALUE)


_KIND_STR = {
    RelocKind.FIELD_BYTE_OFFSET: "byte_off",
    RelocKind.FIELD_BYTE_SIZE: "byte_sz",
    RelocKind.FIELD_EXISTS: "field_exists",
    RelocKind.FIELD_SIGNED: "signed",
    RelocKind.FIELD_LSHIFT_U64: "lshift_u64",
    RelocKind.FIELD_RSHIFT_U64: "rshift_u64",
    RelocKind.TYPE_ID_LOCAL: "local_type_id",
    RelocKind.TYPE_ID_TARGET: "target_type_id",
    RelocKind.TYPE_EXISTS: "type_exists",
    RelocKind.TYPE_MATCHES: "type_matches",
    RelocKind.TYPE_SIZE: "type_size",
    RelocKind.ENUMVAL_EXISTS: "enumval_exists",
    RelocKind.ENUMVAL_VALUE: "enumval_value",
}


@record(frozen=True)
class FuncInfo:
    insn_off: int  # bytes from the start of the section
    type_id: int


@record(frozen=True)
class LineInfo:
    insn_off: int
    file_name_off: int
    line_off: int
    line_col: int

    @property
    def line(self) -> int:
        return self.line_col >> 10

    @property
    def column(self) -> int:
        return self.line_col & 0x3FF


@record(frozen=True)
class CoreRelo:
    """One bpf_core_relo record: which instruction, which local type, which access."""

    insn_off: int
    type_id: int
    access_str_off: int
    kind: int
    #: position among its section's CO-RE records: libbpf's "relo #N"
    index: int = 0


@record
class BTFExt:
    func_info: dict[str, list[FuncInfo]] = field(default_factory=dict)
    line_info: dict[str, list[LineInfo]] = field(default_factory=dict)
    core_relos: dict[str, list[CoreRelo]] = field(default_factory=dict)
    func_info_rec_size: int = 8
    line_info_rec_size: int = 16


_MIN_REC = {"func_info": 8, "line_info": 16, "core_relo": 16}


def parse_btf_ext(data: bytes, endian: str, section_name: Callable[[int], str], *,
                  source: str = "<object>") -> BTFExt:
    """Parse .BTF.ext; ``section_name`` maps a string offset in .BTF to a section name."""
    if len(data) < 8:
        raise ObjectError(f"{source}: .BTF.ext too short ({len(data)} bytes)")
    magic, version, _flags, hdr_len = struct.unpack_from(endian + "HBBI", data, 0)
    if magic != 0xEB9F:
        raise ObjectError(f"{source}: .BTF.ext offset 0x0: bad magic {magic:#x}")
    if version != 1:
        raise ObjectError(f"{source}: .BTF.ext offset 0x2: unsupported version {version}")
    if hdr_len < 24 or hdr_len > len(data):
        raise ObjectError(f"{source}: .BTF.ext offset 0x4: bad header length {hdr_len}")
    fields = struct.unpack_from(endian + "IIII", data, 8)
    core = (0, 0)
    if hdr_len >= 32:
        core = struct.unpack_from(endian + "II", data, 24)
    ext = BTFExt()
    for what, (off, length) in (("func_info", fields[0:2]), ("line_info", fields[2:4]),
                                ("core_relo", core)):
        if not length:
            continue
        start = hdr_len + off
        if start + length > len(data):
            raise ObjectError(f"{source}: .BTF.ext {what} ({length} bytes at {start:#x}) runs "
                              f"past the end ({len(data)} bytes)")
        _parse_info(data[start:start + length], start, endian, what, ext, section_name, source)
    return ext


def _parse_info(blob: bytes, base: int, endian: str, what: str, ext: BTFExt,
                section_name: Callable[[int], str], source: str) -> None:
    if len(blob) < 4:
        raise ObjectError(f"{source}: .BTF.ext {what} at {base:#x}: truncated record size")
    (rec_size,) = struct.unpack_from(endian + "I", blob, 0)
    if rec_size < _MIN_REC[what] or rec_size % 4 or rec_size > 4096:
        raise ObjectError(f"{source}: .BTF.ext {what} at {base:#x}: bad record size {rec_size}")
    pos = 4
    rec = struct.Struct(endian + "IIII")
    while pos < len(blob):
        if pos + 8 > len(blob):
            raise ObjectError(f"{source}: .BTF.ext {what} at {base + pos:#x}: truncated "
                              "section header")
        sec_off, num = struct.unpack_from(endian + "II", blob, pos)
        pos += 8
        if num == 0:
            raise ObjectError(f"{source}: .BTF.ext {what} at {base + pos - 4:#x}: zero records")
        if pos + num * rec_size > len(blob):
            raise ObjectError(f"{source}: .BTF.ext {what} at {base + pos:#x}: {num} records of "
                              f"{rec_size} bytes run past the end")
        try:
            name = section_name(sec_off)
        except Exception as e:  # the .BTF string lookup raises BTFError
            raise ObjectError(f"{source}: .BTF.ext {what} at {base + pos - 8:#x}: section name: "
                              f"{e}") from None
        if what == "func_info":
            ext.func_info_rec_size = rec_size
            fi = ext.func_info.setdefault(name, [])
            for k in range(num):
                a, b = struct.unpack_from(endian + "II", blob, pos + k * rec_size)
                fi.append(FuncInfo(a, b))
        elif what == "line_info":
            ext.line_info_rec_size = rec_size
            li = ext.line_info.setdefault(name, [])
            for k in range(num):
                li.append(LineInfo(*rec.unpack_from(blob, pos + k * rec_size)))
        else:
            cr = ext.core_relos.setdefault(name, [])
            for k in range(num):
                a, b, c, d = rec.unpack_from(blob, pos + k * rec_size)
                cr.append(CoreRelo(a, b, c, d, len(cr)))
        pos += num * rec_size
