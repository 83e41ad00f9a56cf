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

from ..errors import LoadError

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

_SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "arm64": 280, "riscv64": 280, "ppc64le": 361,
               "s390x": 351, "i686": 357, "armv7l": 386}


class BPFCommand(enum.IntEnum):
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
        if err in (errno_mod.EPERM, errno_mod.EACCES):
            msg += " (bpf() needs root or CAP_BPF)"
        name = BPFCommand(cmd).name if cmd in BPFCommand._value2member_map_ else str(cmd)
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
            if e.errno in (errno_mod.EPERM, errno_mod.EACCES) and not text:
                hint = " (loading programs needs root or CAP_BPF + CAP_PERFMON)"
            raise VerifierError(
                f"program {name or '?'}: BPF_PROG_LOAD failed: {os.strerror(e.errno or 0)}{hint}",
                errno=e.errno or 0, log=text) from None


def link_create(prog_fd: int, target_fd: int, attach_type: int, flags: int = 0,
                extra: bytes = b"") -> FD:
    """BPF_LINK_CREATE; ``extra`` is the attach-type-specific tail (at offset 16)."""
    attr = bytearray(64)
    struct.pack_into("IIII", attr, 0, prog_fd, target_fd, attach_type, flags)
    attr[16:16 + len(extra)] = extra
    return FD(bpf(BPFCommand.LINK_CREATE, attr))


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
