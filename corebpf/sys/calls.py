"""bpf(2) through ctypes, with errno mapped to exceptions.

Each command builds its ``union bpf_attr`` as bytes at the kernel's fixed offsets; the
kernel accepts a shorter attr than it knows, as long as what it does not know is zero.
"""

from __future__ import annotations

import ctypes
import enum
import errno as errno_mod
import os
import struct

from .._enum import IntEnumBase, simple_enum
from ..errors import LoadError

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

_SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "arm64": 280, "riscv64": 280, "ppc64le": 361,
               "s390x": 351, "i686": 357, "armv7l": 386}


@simple_enum(enum.IntEnum)
class BPFCommand(IntEnumBase):
    MAP_CREATE = 0
    MAP_LOOKUP_ELEM = 1
    MAP_UPDATE_ELEM = 2
    MAP_DELETE_ELEM = 3
    MAP_GET_NEXT_KEY = 4
    PROG_LOAD = 5
    OBJ_PIN = 6
    OBJ_GET = 7
    PROG_ATTACH = 8
    PROG_DETACH = 9
    PROG_TEST_RUN = 10
    PROG_GET_NEXT_ID = 11
    MAP_GET_NEXT_ID = 12
    PROG_GET_FD_BY_ID = 13
    MAP_GET_FD_BY_ID = 14
    OBJ_GET_INFO_BY_FD = 15
    PROG_QUERY = 16
    RAW_TRACEPOINT_OPEN = 17
    BTF_LOAD = 18
    BTF_GET_FD_BY_ID = 19
    TASK_FD_QUERY = 20
    MAP_LOOKUP_AND_DELETE_ELEM = 21
    MAP_FREEZE = 22
    BTF_GET_NEXT_ID = 23
    MAP_LOOKUP_BATCH = 24
    MAP_LOOKUP_AND_DELETE_BATCH = 25
    MAP_UPDATE_BATCH = 26
    MAP_DELETE_BATCH = 27
    LINK_CREATE = 28
    LINK_UPDATE = 29
    LINK_GET_FD_BY_ID = 30
    LINK_GET_NEXT_ID = 31
    ENABLE_STATS = 32
    ITER_CREATE = 33
    LINK_DETACH = 34
    PROG_BIND_MAP = 35


BPF_BTF_LOAD = BPFCommand.BTF_LOAD

_libc: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def _syscall() -> Any:
    return libc().syscall


def syscall_number(name: str) -> int:
    table = {"bpf": _SYSCALL_NR, "perf_event_open": {
        "x86_64": 298, "aarch64": 241, "arm64": 241, "riscv64": 241, "ppc64le": 319,
        "s390x": 331, "i686": 336, "armv7l": 364}}[name]
    nr = table.get(os.uname().machine)
    if nr is None:
        raise OSError(errno_mod.ENOSYS, f"{name}(2): unknown architecture {os.uname().machine}")
    return nr


def bpf(cmd: int, attr: bytearray) -> int:
    """Issue bpf(cmd, attr); returns the result or raises OSError with the errno."""
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    ret = _syscall()(ctypes.c_long(syscall_number("bpf")), ctypes.c_long(cmd), buf,
                     ctypes.c_uint(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        msg = os.strerror(err)
        name = BPFCommand(cmd).name if cmd in BPFCommand._value2member_map_ else str(cmd)
        if err in (errno_mod.EPERM, errno_mod.EACCES):
            from .caps import refusal

            denied = refusal(name, err, attr)
            if denied is not None:  # missing privileges, said as such (a corebpf Error)
                raise denied
        raise OSError(err, f"bpf({name}): {msg}")
    return int(ret)


class FD:
    """An owned file descriptor, closed on close() or garbage collection."""

    def __init__(self, fd: int):
        self.fd = fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def __enter__(self) -> FD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def __int__(self) -> int:
        return self.fd

    def __repr__(self) -> str:
        return f"FD({self.fd})"


def addr(buf: ctypes.Array[Any] | None) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


def btf_load(data: bytes, *, log_size: int = 1 << 20) -> FD:
    """BPF_BTF_LOAD; on failure the kernel's BTF verifier log is in the LoadError."""
    blob = ctypes.create_string_buffer(data, len(data))
    attempt = 0
    while True:
        log = ctypes.create_string_buffer(log_size) if attempt else None
        attr = bytearray(32)
        struct.pack_into("QQIII", attr, 0, addr(blob), addr(log), len(data),
                         log_size if log is not None else 0, 1 if log is not None else 0)
        try:
            return FD(bpf(BPFCommand.BTF_LOAD, attr))
        except OSError as e:
            if attempt == 0:
                attempt = 1  # retry with the verifier log enabled
                continue
            if e.errno == errno_mod.ENOSPC and log_size < (1 << 28):
                log_size *= 4
                continue
            text = log.value.decode("utf-8", "replace") if log is not None else ""
            raise LoadError(f"BPF_BTF_LOAD failed: {e.strerror}", errno=e.errno or 0,
                            log=text) from None


# -- attr builders ------------------------------------------------------------------------
# Offsets are those of union bpf_attr in include/uapi/linux/bpf.h.

_VERIFIER_LOG_MAX = 1 << 30


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, *,
               flags: int = 0, inner_map_fd: int = 0, numa_node: int = 0, name: str = "",
               ifindex: int = 0, btf_fd: int = 0, btf_key_type_id: int = 0,
               btf_value_type_id: int = 0, btf_vmlinux_value_type_id: int = 0,
               map_extra: int = 0) -> FD:
    """BPF_MAP_CREATE."""
    attr = bytearray(72)
    struct.pack_into("IIIIIII", attr, 0, map_type, key_size, value_size, max_entries, flags,
                     inner_map_fd, numa_node)
    attr[28:44] = obj_name(name)
    struct.pack_into("=IIIII", attr, 44, ifindex, btf_fd, btf_key_type_id, btf_value_type_id,
                     btf_vmlinux_value_type_id)
    struct.pack_into("=Q", attr, 64, map_extra)
    return FD(bpf(BPFCommand.MAP_CREATE, attr))


def obj_name(name: str) -> bytes:
    """A kernel object name: at most 15 chars of [A-Za-z0-9_.], NUL-padded to 16."""
    clean = "".join(c if c.isalnum() or c in "_." else "_" for c in name)[:15]
    return clean.encode().ljust(16, b"\0")


def map_elem(cmd: int, fd: int, key: Any, value: Any = None, flags: int = 0) -> int:
    """MAP_LOOKUP/UPDATE/DELETE/GET_NEXT_KEY/LOOKUP_AND_DELETE; key/value are ctypes
    buffers (or None)."""
    attr = bytearray(32)
    struct.pack_into("IIQQQ", attr, 0, fd, 0, addr(key), addr(value), flags)
    return bpf(cmd, attr)


def map_batch(cmd: int, fd: int, in_batch: Any, out_batch: Any, keys: Any, values: Any,
              count: int, elem_flags: int = 0, flags: int = 0) -> int:
    """MAP_*_BATCH; returns how many elements were processed (ENOENT ends an iteration)."""
    attr = bytearray(56)
    struct.pack_into("QQQQIIQQ", attr, 0, addr(in_batch), addr(out_batch), addr(keys),
                     addr(values), count, fd, elem_flags, flags)
    try:
        bpf(cmd, attr)
    except OSError as e:
        if e.errno != errno_mod.ENOENT:
            raise
        done = struct.unpack_from("I", attr, 32)[0]
        raise BatchEnd(done) from None
    return int(struct.unpack_from("I", attr, 32)[0])


class BatchEnd(Exception):
    """ENOENT from a batch call: the map is exhausted after ``count`` more elements."""

    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


def map_freeze(fd: int) -> None:
    attr = bytearray(8)
    struct.pack_into("I", attr, 0, fd)
    bpf(BPFCommand.MAP_FREEZE, attr)


def obj_pin(fd: int, path: str) -> None:
    p = ctypes.create_string_buffer(path.encode())
    attr = bytearray(16)
    struct.pack_into("QI", attr, 0, addr(p), fd)
    bpf(BPFCommand.OBJ_PIN, attr)


def obj_get(path: str, flags: int = 0) -> FD:
    p = ctypes.create_string_buffer(path.encode())
    attr = bytearray(16)
    struct.pack_into("QII", attr, 0, addr(p), 0, flags)
    return FD(bpf(BPFCommand.OBJ_GET, attr))


def obj_info(fd: int, size: int = 256) -> bytes:
    """OBJ_GET_INFO_BY_FD into a zeroed buffer of ``size`` bytes (struct bpf_*_info)."""
    info = ctypes.create_string_buffer(size)
    attr = bytearray(16)
    struct.pack_into("IIQ", attr, 0, fd, size, addr(info))
    bpf(BPFCommand.OBJ_GET_INFO_BY_FD, attr)
    return info.raw


def _get_fd_by_id(cmd: BPFCommand, obj_id: int) -> FD:
    attr = bytearray(12)
    struct.pack_into("III", attr, 0, obj_id, 0, 0)  # id, next_id, open_flags
    return FD(bpf(cmd, attr))


def prog_get_fd_by_id(prog_id: int) -> FD:
    """BPF_PROG_GET_FD_BY_ID: a new fd for a live program; ENOENT once it is freed."""
    return _get_fd_by_id(BPFCommand.PROG_GET_FD_BY_ID, prog_id)


def link_get_fd_by_id(link_id: int) -> FD:
    """BPF_LINK_GET_FD_BY_ID: a new fd for a live link; ENOENT once it is released."""
    return _get_fd_by_id(BPFCommand.LINK_GET_FD_BY_ID, link_id)


def map_get_fd_by_id(map_id: int) -> FD:
    """BPF_MAP_GET_FD_BY_ID: a new fd for a live map (a program's, found by its id)."""
    return _get_fd_by_id(BPFCommand.MAP_GET_FD_BY_ID, map_id)


def prog_map_ids(prog_fd: int) -> list[int]:
    """The ids of the maps a loaded program uses (struct bpf_prog_info's map_ids)."""
    info = ctypes.create_string_buffer(64)
    attr = bytearray(16)
    struct.pack_into("IIQ", attr, 0, prog_fd, 64, addr(info))
    bpf(BPFCommand.OBJ_GET_INFO_BY_FD, attr)
    count = struct.unpack_from("I", info, 52)[0]
    if not count:
        return []
    ids = (ctypes.c_uint32 * count)()
    info = ctypes.create_string_buffer(64)
    struct.pack_into("=IQ", info, 52, count, ctypes.addressof(ids))
    struct.pack_into("IIQ", attr, 0, prog_fd, 64, addr(info))
    bpf(BPFCommand.OBJ_GET_INFO_BY_FD, attr)
    return list(ids)[:struct.unpack_from("I", info, 52)[0]]


def btf_get_fd_by_id(btf_id: int) -> FD:
    """BPF_BTF_GET_FD_BY_ID: a new fd for a loaded BTF object (a map's, the kernel's)."""
    return _get_fd_by_id(BPFCommand.BTF_GET_FD_BY_ID, btf_id)


class ProgLoadResult:
    """A loaded program's fd plus the verifier log (when one was requested)."""

    def __init__(self, fd: FD, log: str):
        self.fd = fd
        self.log = log


def prog_load(prog_type: int, insns: bytes, license: str, *, name: str = "",
              expected_attach_type: int = 0, kern_version: int = 0, prog_flags: int = 0,
              prog_btf_fd: int = 0, func_info: bytes = b"", func_info_rec_size: int = 0,
              line_info: bytes = b"", line_info_rec_size: int = 0, attach_btf_id: int = 0,
              attach_btf_obj_fd: int = 0, attach_prog_fd: int = 0, fd_array: Any = None,
              ifindex: int = 0, log_level: int = 0, log_size: int = 1 << 22) -> ProgLoadResult:
    """BPF_PROG_LOAD. On failure the load is retried with the verifier log on, growing the
    buffer while the kernel says it is too small, and the log rides on the VerifierError."""
    from ..errors import VerifierError

    if len(insns) % 8:
        raise ValueError(f"instructions of {len(insns)} bytes are not whole")
    ibuf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    fibuf = ctypes.create_string_buffer(func_info, len(func_info)) if func_info else None
    libuf = ctypes.create_string_buffer(line_info, len(line_info)) if line_info else None
    level = log_level
    while True:
        log = ctypes.create_string_buffer(log_size) if level else None
        attr = bytearray(144)
        struct.pack_into("IIQQIIQII", attr, 0, prog_type, len(insns) // 8, addr(ibuf), addr(lic),
                         level, log_size if log is not None else 0, addr(log), kern_version,
                         prog_flags)
        attr[48:64] = obj_name(name)
        struct.pack_into("IIIIQII", attr, 64, ifindex, expected_attach_type, prog_btf_fd,
                         func_info_rec_size if fibuf is not None else 0, addr(fibuf),
                         len(func_info) // func_info_rec_size if fibuf is not None else 0,
                         line_info_rec_size if libuf is not None else 0)
        struct.pack_into("QIII", attr, 96, addr(libuf),
                         len(line_info) // line_info_rec_size if libuf is not None else 0,
                         attach_btf_id, attach_prog_fd or attach_btf_obj_fd)
        struct.pack_into("Q", attr, 120, addr(fd_array))
        try:
            fd = FD(bpf(BPFCommand.PROG_LOAD, attr))
            text = log.value.decode("utf-8", "replace") if log is not None else ""
            return ProgLoadResult(fd, text)
        except OSError as e:
            if log is None:
                level = 1
                continue
            if e.errno == errno_mod.ENOSPC and log_size < _VERIFIER_LOG_MAX:
                log_size *= 4
                continue
            text = log.value.decode("utf-8", "replace")
            hint = ""
            if e.errno == errno_mod.EPERM and not text:  # privileges were checked above
                hint = (" (refused although this process holds the capabilities the "
                        "program type takes: this kernel forbids it here)")
            elif e.errno == errno_mod.EACCES:
                from .caps import CAP_PERFMON, has

                if not has(CAP_PERFMON):
                    hint = (" (this process lacks CAP_PERFMON, without which the verifier "
                            "refuses pointer arithmetic, pointer leaks and speculative "
                            "paths: run as root or with CAP_PERFMON)")
            raise VerifierError(
                f"program {name or '?'}: BPF_PROG_LOAD failed: {os.strerror(e.errno or 0)}"
                f"{hint}", errno=e.errno or 0, log=text) from None


def link_create(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0,
                extra: bytes = b"") -> FD:
    """BPF_LINK_CREATE; ``extra`` is the attach-type-specific tail (at offset 16)."""
    attr = bytearray(64)
    struct.pack_into("IIII", attr, 0, prog_fd, target_fd, attach_type, flags)
    attr[16:16 + len(extra)] = extra
    return FD(bpf(BPFCommand.LINK_CREATE, attr))


def prog_query(target: int, attach_type: int, *, max_progs: int = 64
               ) -> tuple[list[int], int]:
    """BPF_PROG_QUERY: (ids of the programs attached at ``attach_type`` of ``target`` (a
    cgroup fd; for tcx a network interface's index), the revision of that list where
    the kernel keeps one, else 0)."""
    ids = (ctypes.c_uint32 * max_progs)()
    attr = bytearray(64)
    struct.pack_into("IIIIQI", attr, 0, target, attach_type, 0, 0, ctypes.addressof(ids),
                     max_progs)
    bpf(BPFCommand.PROG_QUERY, attr)
    count = struct.unpack_from("I", attr, 24)[0]
    return list(ids)[:min(count, max_progs)], int(struct.unpack_from("Q", attr, 56)[0])


def raw_tracepoint_open(name: str | None, prog_fd: int) -> FD:
    n = ctypes.create_string_buffer(name.encode()) if name else None
    attr = bytearray(16)
    struct.pack_into("QI", attr, 0, addr(n), prog_fd)
    return FD(bpf(BPFCommand.RAW_TRACEPOINT_OPEN, attr))


def prog_attach(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0) -> None:
    attr = bytearray(20)
    struct.pack_into("IIII", attr, 0, target_fd, prog_fd, attach_type, flags)
    bpf(BPFCommand.PROG_ATTACH, attr)


def prog_detach(prog_fd: int, target_fd: int, attach_type: int) -> None:
    attr = bytearray(20)
    struct.pack_into("IIII", attr, 0, target_fd, prog_fd, attach_type, 0)
    bpf(BPFCommand.PROG_DETACH, attr)


def iter_create(link_fd: int) -> FD:
    attr = bytearray(8)
    struct.pack_into("I", attr, 0, link_fd)
    return FD(bpf(BPFCommand.ITER_CREATE, attr))


def prog_test_run(prog_fd: int, data_in: bytes = b"", repeat: int = 1,
                  ctx_in: bytes = b"") -> tuple[int, bytes]:
    """BPF_PROG_TEST_RUN: (return value, data out)."""
    din = ctypes.create_string_buffer(data_in, len(data_in)) if data_in else None
    dout = ctypes.create_string_buffer(max(len(data_in), 1) + 256)
    cin = ctypes.create_string_buffer(ctx_in, len(ctx_in)) if ctx_in else None
    attr = bytearray(80)
    struct.pack_into("IIIIQQII", attr, 0, prog_fd, 0, len(data_in), len(dout), addr(din),
                     addr(dout), repeat, 0)
    struct.pack_into("IIQQ", attr, 40, len(ctx_in), 0, addr(cin), 0)
    bpf(BPFCommand.PROG_TEST_RUN, attr)
    retval, size_out = struct.unpack_from("II", attr, 4)[0], struct.unpack_from("I", attr, 12)[0]
    return retval, dout.raw[:size_out]


# -- object ids and info: what bpftool's prog/map/link/btf show read ------------------------


def _get_next_id(cmd: BPFCommand, start: int) -> int | None:
    attr = bytearray(12)
    struct.pack_into("III", attr, 0, start, 0, 0)  # start_id, next_id, open_flags
    try:
        bpf(cmd, attr)
    except OSError as e:
        if e.errno == errno_mod.ENOENT:
            return None
        raise
    return int(struct.unpack_from("I", attr, 4)[0])


def prog_get_next_id(start: int = 0) -> int | None:
    """BPF_PROG_GET_NEXT_ID: the first program id above ``start``; None past the last."""
    return _get_next_id(BPFCommand.PROG_GET_NEXT_ID, start)


def map_get_next_id(start: int = 0) -> int | None:
    """BPF_MAP_GET_NEXT_ID: the first map id above ``start``; None past the last."""
    return _get_next_id(BPFCommand.MAP_GET_NEXT_ID, start)


def link_get_next_id(start: int = 0) -> int | None:
    """BPF_LINK_GET_NEXT_ID: the first link id above ``start``; None past the last."""
    return _get_next_id(BPFCommand.LINK_GET_NEXT_ID, start)


def btf_get_next_id(start: int = 0) -> int | None:
    """BPF_BTF_GET_NEXT_ID: the first BTF object id above ``start``; None past the last."""
    return _get_next_id(BPFCommand.BTF_GET_NEXT_ID, start)


def _info_by_fd(fd: int, info: ctypes.Array[ctypes.c_char]) -> int:
    """OBJ_GET_INFO_BY_FD into ``info`` (pointers and counts already set); returns the
    length the kernel filled (its struct may be shorter than ours)."""
    attr = bytearray(16)
    struct.pack_into("IIQ", attr, 0, fd, len(info), addr(info))
    bpf(BPFCommand.OBJ_GET_INFO_BY_FD, attr)
    return int(struct.unpack_from("I", attr, 4)[0])


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


_PROG_INFO_SIZE = 232  # struct bpf_prog_info up to attach_btf_id (6.0+)
_MAP_INFO_FULL_SIZE = 104  # struct bpf_map_info up to hash_size (6.17+)
_LINK_INFO_SIZE = 64
_BTF_INFO_SIZE = 32


class ProgInfo:
    """struct bpf_prog_info, with the arrays it points to that were asked for.

    ``tag`` is the 8-byte program tag; ``load_time`` is nanoseconds since boot
    (CLOCK_BOOTTIME); ``func_info`` holds (insn_off, type_id) and ``line_info``
    (insn_off, file_name_off, line_off, line_col) records, offsets into the program's
    BTF (``btf_id``) strings.
    """

    __slots__ = ("attach_btf_id", "attach_btf_obj_id", "btf_id", "created_by_uid",
                 "func_info", "gpl_compatible", "id", "ifindex", "jited_func_lens",
                 "jited_insns", "jited_ksyms", "jited_prog_len", "line_info", "load_time",
                 "map_ids", "name", "netns_dev", "netns_ino", "nr_func_info",
                 "nr_jited_ksyms", "nr_line_info", "nr_map_ids", "recursion_misses",
                 "run_cnt", "run_time_ns", "tag", "type", "verified_insns",
                 "xlated_insns", "xlated_prog_len")
    type: int
    id: int
    jited_prog_len: int
    xlated_prog_len: int
    load_time: int
    created_by_uid: int
    nr_map_ids: int
    ifindex: int
    netns_dev: int
    netns_ino: int
    nr_jited_ksyms: int
    btf_id: int
    nr_func_info: int
    nr_line_info: int
    run_time_ns: int
    run_cnt: int
    recursion_misses: int
    verified_insns: int
    attach_btf_obj_id: int
    attach_btf_id: int

    def __init__(self, raw: bytes) -> None:
        (self.type, self.id) = struct.unpack_from("=II", raw, 0)
        self.tag = bytes(raw[8:16])
        (self.jited_prog_len, self.xlated_prog_len) = struct.unpack_from("=II", raw, 16)
        (self.load_time, self.created_by_uid, self.nr_map_ids) = struct.unpack_from(
            "=QII", raw, 40)
        self.name = _cstr(raw[64:80])
        (self.ifindex, bits, self.netns_dev, self.netns_ino) = struct.unpack_from(
            "=IIQQ", raw, 80)
        self.gpl_compatible = bool(bits & 1)
        (self.nr_jited_ksyms,) = struct.unpack_from("=I", raw, 104)
        (self.btf_id,) = struct.unpack_from("=I", raw, 128)
        (self.nr_func_info, self.nr_line_info) = struct.unpack_from("=II", raw, 144)
        (self.run_time_ns, self.run_cnt, self.recursion_misses, self.verified_insns,
         self.attach_btf_obj_id, self.attach_btf_id) = struct.unpack_from("=QQQIII", raw, 192)
        self.map_ids: list[int] = []
        self.xlated_insns: bytes | None = None
        self.jited_insns: bytes | None = None
        self.jited_ksyms: list[int] = []
        self.jited_func_lens: list[int] = []
        self.func_info: list[tuple[int, int]] = []
        self.line_info: list[tuple[int, int, int, int]] = []

    def __repr__(self) -> str:
        return f"ProgInfo(id={self.id}, type={self.type}, name={self.name!r})"


def prog_info(fd: int, *, map_ids: bool = True, xlated: bool = False, jited: bool = False,
              func_info: bool = False, line_info: bool = False,
              jited_ksyms: bool = False) -> ProgInfo:
    """struct bpf_prog_info of a program fd, plus the arrays asked for: asked once for
    the counts and sizes, then again with buffers of those sizes, as bpftool does (the
    scalars are the first answer's, the arrays the second's)."""
    first = ctypes.create_string_buffer(_PROG_INFO_SIZE)
    _info_by_fd(fd, first)
    raw = first.raw
    out = ProgInfo(raw)
    nr_lens = struct.unpack_from("=I", raw, 108)[0]
    frec = struct.unpack_from("=I", raw, 132)[0]
    lrec = struct.unpack_from("=I", raw, 172)[0]
    # (pointer offset, count offset, count, record size, count to write at count offset)
    want: dict[str, tuple[int, int, int, int]] = {}
    if map_ids and out.nr_map_ids:
        want["map_ids"] = (56, 52, out.nr_map_ids, 4)
    if xlated and out.xlated_prog_len:
        want["xlated"] = (32, 20, out.xlated_prog_len, 1)
    if jited and out.jited_prog_len:
        want["jited"] = (24, 16, out.jited_prog_len, 1)
    if jited_ksyms and out.nr_jited_ksyms:
        want["ksyms"] = (112, 104, out.nr_jited_ksyms, 8)
    if jited_ksyms and nr_lens:
        want["lens"] = (120, 108, nr_lens, 4)
    if func_info and out.nr_func_info and frec >= 8:
        want["func"] = (136, 144, out.nr_func_info, frec)
    if line_info and out.nr_line_info and lrec >= 16:
        want["line"] = (152, 148, out.nr_line_info, lrec)
    if not want:
        return out
    info = ctypes.create_string_buffer(_PROG_INFO_SIZE)
    bufs: dict[str, ctypes.Array[ctypes.c_char]] = {}
    for key, (ptr_off, cnt_off, n, rec) in want.items():
        bufs[key] = b = ctypes.create_string_buffer(n * rec)
        struct.pack_into("=Q", info, ptr_off, ctypes.addressof(b))
        struct.pack_into("=I", info, cnt_off, n)
    if "func" in want:
        struct.pack_into("=I", info, 132, frec)
    if "line" in want:
        struct.pack_into("=I", info, 172, lrec)
    _info_by_fd(fd, info)
    got = info.raw

    def data(key: str) -> tuple[bytes, int]:
        _ptr, cnt_off, n, rec = want[key]
        n = min(n, struct.unpack_from("=I", got, cnt_off)[0])  # the kernel's count now
        return bufs[key].raw[:n * rec], n

    if "map_ids" in want:
        d, n = data("map_ids")
        out.map_ids = list(struct.unpack(f"={n}I", d))
    if "xlated" in want:
        out.xlated_insns = data("xlated")[0]
    if "jited" in want:
        out.jited_insns = data("jited")[0]
    if "ksyms" in want:
        d, n = data("ksyms")
        out.jited_ksyms = list(struct.unpack(f"={n}Q", d))
    if "lens" in want:
        d, n = data("lens")
        out.jited_func_lens = list(struct.unpack(f"={n}I", d))
    if "func" in want:
        d, n = data("func")
        out.func_info = [(int(a), int(b)) for a, b in
                         (struct.unpack_from("=II", d, i * frec) for i in range(n))]
    if "line" in want:
        d, n = data("line")
        out.line_info = [(int(a), int(b), int(c), int(e)) for a, b, c, e in
                         (struct.unpack_from("=IIII", d, i * lrec) for i in range(n))]
    return out


class KernelMapInfo:
    """struct bpf_map_info, every field this kernel fills (``corebpf.maps.MapInfo`` is
    the part a Map needs)."""

    __slots__ = ("btf_id", "btf_key_type_id", "btf_value_type_id",
                 "btf_vmlinux_id", "btf_vmlinux_value_type_id", "id", "ifindex",
                 "key_size", "map_extra", "map_flags", "max_entries", "name",
                 "netns_dev", "netns_ino", "type", "value_size")
    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int
    ifindex: int
    btf_vmlinux_value_type_id: int
    netns_dev: int
    netns_ino: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    btf_vmlinux_id: int
    map_extra: int

    def __init__(self, raw: bytes) -> None:
        (self.type, self.id, self.key_size, self.value_size, self.max_entries,
         self.map_flags) = struct.unpack_from("=6I", raw, 0)
        self.name = _cstr(raw[24:40])
        (self.ifindex, self.btf_vmlinux_value_type_id, self.netns_dev, self.netns_ino,
         self.btf_id, self.btf_key_type_id, self.btf_value_type_id, self.btf_vmlinux_id,
         self.map_extra) = struct.unpack_from("=IIQQIIIIQ", raw, 40)

    def __repr__(self) -> str:
        return f"KernelMapInfo(id={self.id}, type={self.type}, name={self.name!r})"


def map_info(fd: int) -> KernelMapInfo:
    """struct bpf_map_info of a map fd."""
    info = ctypes.create_string_buffer(_MAP_INFO_FULL_SIZE)
    _info_by_fd(fd, info)
    return KernelMapInfo(info.raw)


#: struct bpf_link_info's union member, per link type: (name, offset, format) of each
#: scalar field; strings and arrays are read separately (see :func:`link_info`).
_LINK_FIELDS: dict[int, tuple[tuple[str, int, str], ...]] = {
    1: (("cookie", 32, "Q"),),  # raw_tracepoint (tp_name read below)
    2: (("attach_type", 16, "I"), ("target_obj_id", 20, "I"), ("target_btf_id", 24, "I"),
        ("cookie", 32, "Q")),  # tracing
    3: (("cgroup_id", 16, "Q"), ("attach_type", 24, "I")),  # cgroup
    4: (("map_id", 28, "I"),),  # iter (target_name below; task/cgroup parts by target)
    5: (("netns_ino", 16, "I"), ("attach_type", 20, "I")),  # netns
    6: (("ifindex", 16, "I"),),  # xdp
    7: (("perf_event_type", 16, "I"),),  # perf_event (the rest by perf event type)
    8: (("count", 24, "I"), ("flags", 28, "I"), ("missed", 32, "Q")),  # kprobe_multi
    9: (("map_id", 16, "I"),),  # struct_ops
    10: (("pf", 16, "I"), ("hooknum", 20, "I"), ("priority", 24, "i"),
         ("flags", 28, "I")),  # netfilter
    11: (("ifindex", 16, "I"), ("attach_type", 20, "I")),  # tcx
    12: (("path_size", 48, "I"), ("count", 52, "I"), ("flags", 56, "I"),
         ("pid", 60, "I")),  # uprobe_multi
    13: (("ifindex", 16, "I"), ("attach_type", 20, "I")),  # netkit
    14: (("map_id", 16, "I"), ("attach_type", 20, "I")),  # sockmap
}
_PERF_FIELDS: dict[int, tuple[tuple[str, int, str], ...]] = {
    1: (("offset", 36, "I"), ("cookie", 40, "Q"), ("ref_ctr_offset", 48, "Q")),  # uprobe
    2: (("offset", 36, "I"), ("cookie", 40, "Q"), ("ref_ctr_offset", 48, "Q")),  # uretprobe
    3: (("offset", 36, "I"), ("addr", 40, "Q"), ("missed", 48, "Q"), ("cookie", 56, "Q")),
    4: (("offset", 36, "I"), ("addr", 40, "Q"), ("missed", 48, "Q"), ("cookie", 56, "Q")),
    5: (("cookie", 40, "Q"),),  # tracepoint
    6: (("config", 24, "Q"), ("type", 32, "I"), ("cookie", 40, "Q")),  # event
}
#: perf event type -> the name of its string field (at offset 24, length at 32)
_PERF_NAME = {1: "file_name", 2: "file_name", 3: "func_name", 4: "func_name",
              5: "tp_name"}
_NAME_MAX = 4096


class LinkInfo:
    """struct bpf_link_info: ``type``, ``id``, ``prog_id`` and the fields of the union
    member for this link type in ``attrs``, by their uapi names (``tp_name``,
    ``attach_type``, ``cgroup_id``, ``target_name``, ``ifindex``, ``perf_event_type``,
    ``file_name``, ``addrs``, ``offsets``, ...)."""

    __slots__ = ("attrs", "id", "prog_id", "type")

    def __init__(self, type: int, id: int, prog_id: int, attrs: dict[str, Any]) -> None:
        self.type = type
        self.id = id
        self.prog_id = prog_id
        self.attrs = attrs

    def __repr__(self) -> str:
        return f"LinkInfo(id={self.id}, type={self.type}, prog_id={self.prog_id}, {self.attrs})"


def _fields(raw: bytes, fields: tuple[tuple[str, int, str], ...]) -> dict[str, Any]:
    return {name: struct.unpack_from("=" + fmt, raw, off)[0] for name, off, fmt in fields}


def link_info(fd: int) -> LinkInfo:
    """struct bpf_link_info of a link fd, with the strings (tracepoint, iterator target,
    probed file or function) and arrays (kprobe_multi addresses, uprobe_multi offsets)
    the kernel hands out on a second call with buffers."""
    info = ctypes.create_string_buffer(_LINK_INFO_SIZE)
    _info_by_fd(fd, info)
    raw = info.raw
    ltype, lid, prog_id = struct.unpack_from("=III", raw, 0)
    attrs = _fields(raw, _LINK_FIELDS.get(ltype, ()))
    again = ctypes.create_string_buffer(_LINK_INFO_SIZE)
    keep: list[Any] = []

    def buf(size: int) -> int:
        b = ctypes.create_string_buffer(max(size, 1))
        keep.append(b)
        return ctypes.addressof(b)

    # (attr name, pointer offset, length offset, length, kind) of what to fetch
    fetch: list[tuple[str, int, int, int, str]] = []
    if ltype == 1:  # raw_tracepoint: tp_name, length at 24
        fetch.append(("tp_name", 16, 24, _NAME_MAX, "str"))
    elif ltype == 4:  # iter: target_name, length at 24
        fetch.append(("target_name", 16, 24, _NAME_MAX, "str"))
    elif ltype == 7:
        ptype = attrs["perf_event_type"]
        attrs.update(_fields(raw, _PERF_FIELDS.get(ptype, ())))
        if ptype in _PERF_NAME:
            fetch.append((_PERF_NAME[ptype], 24, 32, _NAME_MAX, "str"))
    elif ltype == 8 and attrs["count"]:
        n = attrs["count"]
        fetch += [("addrs", 16, 24, n, "u64"), ("cookies", 40, 24, n, "u64")]
    elif ltype == 12:
        n = attrs["count"]
        if attrs["path_size"]:
            fetch.append(("path", 16, 48, attrs["path_size"], "str"))
        if n:
            fetch += [("offsets", 24, 52, n, "u64"), ("ref_ctr_offsets", 32, 52, n, "u64"),
                      ("cookies", 40, 52, n, "u64")]
    if fetch:
        for _name, ptr_off, len_off, n, kind in fetch:
            size = n * 8 if kind == "u64" else n
            struct.pack_into("=Q", again, ptr_off, buf(size))
            struct.pack_into("=I", again, len_off, n)
        try:
            _info_by_fd(fd, again)
        except OSError as e:
            if e.errno != errno_mod.ENOSPC:  # a name longer than _NAME_MAX: leave it out
                raise
        else:
            got = again.raw
            for name, ptr_off, _len_off, n, kind in fetch:
                (ptr,) = struct.unpack_from("=Q", got, ptr_off)
                data = ctypes.string_at(ptr, n * 8 if kind == "u64" else n)
                attrs[name] = (list(struct.unpack(f"={n}Q", data)) if kind == "u64"
                               else _cstr(data))
            if ltype == 4:  # the iterator's parameters sit past target_name
                if attrs.get("target_name") in ("task", "task_file", "task_vma"):
                    attrs.update(_fields(got, (("tid", 32, "I"), ("pid", 36, "I"))))
                elif attrs.get("target_name") == "cgroup":
                    attrs.update(_fields(got, (("cgroup_id", 32, "Q"), ("order", 40, "I"))))
    return LinkInfo(ltype, lid, prog_id, attrs)


class BTFInfo:
    """struct bpf_btf_info: ``size`` bytes of BTF, ``name`` (``vmlinux``, a module's, or
    empty for a program's), ``kernel`` for the kernel's own BTF objects; ``data`` is the
    raw BTF when it was asked for."""

    __slots__ = ("data", "id", "kernel", "name", "size")

    def __init__(self, id: int, size: int, name: str, kernel: bool,
                 data: bytes | None) -> None:
        self.id = id
        self.size = size
        self.name = name
        self.kernel = kernel
        self.data = data

    def __repr__(self) -> str:
        return f"BTFInfo(id={self.id}, size={self.size}, name={self.name!r})"


def btf_info(fd: int, *, data: bool = False) -> BTFInfo:
    """struct bpf_btf_info of a BTF fd (and its bytes with ``data``)."""
    info = ctypes.create_string_buffer(_BTF_INFO_SIZE)
    _info_by_fd(fd, info)
    size, _bid = struct.unpack_from("=II", info.raw, 8)
    name_len = struct.unpack_from("=I", info.raw, 24)[0]
    again = ctypes.create_string_buffer(_BTF_INFO_SIZE)
    name_buf = ctypes.create_string_buffer(max(name_len + 1, 64))
    blob = ctypes.create_string_buffer(max(size, 1)) if data else None
    struct.pack_into("=QI", again, 0, addr(blob), size if blob is not None else 0)
    struct.pack_into("=QI", again, 16, addr(name_buf), len(name_buf))
    _info_by_fd(fd, again)
    got_size, bid = struct.unpack_from("=II", again.raw, 8)
    kernel = bool(struct.unpack_from("=I", again.raw, 28)[0])
    raw = blob.raw[:got_size] if blob is not None and got_size <= size else None
    return BTFInfo(bid, got_size, _cstr(name_buf.raw), kernel, raw)


def fdinfo(fd: int) -> dict[str, str]:
    """/proc/self/fdinfo/FD as key -> value (bpftool reads memlock, frozen,
    owner_prog_type... there); empty when /proc is not mounted."""
    try:
        with open(f"/proc/self/fdinfo/{fd}", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            out.setdefault(key.strip(), value.strip())
    return out


def fd_kind(fd: int) -> str:
    """What a BPF fd holds: ``prog``, ``map``, ``link``, ``btf`` or ``unknown``, from its
    anon inode's name (as bpftool's get_fd_type)."""
    try:
        what = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "unknown"
    for marker, kind in (("bpf-map", "map"), ("bpf-prog", "prog"), ("bpf_link", "link"),
                         ("bpf-link", "link"), ("btf", "btf")):
        if marker in what:
            return kind
    return "unknown"


def kallsyms_lookup(addresses: Iterable[int], names: Iterable[str] = ()) -> tuple[
        dict[int, str], dict[str, int]]:
    """One pass over /proc/kallsyms: the first symbol at each of ``addresses`` and the
    address of each of ``names`` (zero addresses, as kptr_restrict hides them, match
    nothing). Empty when the file cannot be read."""
    want_addr = set(addresses)
    want_name = set(names)
    by_addr: dict[int, str] = {}
    by_name: dict[str, int] = {}
    try:
        with open("/proc/kallsyms", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split(None, 3)
                if len(parts) < 3:
                    continue
                try:
                    a = int(parts[0], 16)
                except ValueError:
                    continue
                if not a:
                    continue
                sym = parts[2]
                if a in want_addr and a not in by_addr:
                    by_addr[a] = sym
                if sym in want_name and sym not in by_name:
                    by_name[sym] = a
    except OSError:
        pass
    return by_addr, by_name
