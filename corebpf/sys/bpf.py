"""bpf(2) through ctypes, with errno mapped to exceptions.

Each command builds its ``union bpf_attr`` as bytes at the kernel's fixed offsets; the
kernel accepts a shorter attr than it knows, as long as what it does not know is zero.
"""

from __future__ import annotations

import ctypes
import enum
import errno as errno_mod
import os
import platform
import struct
from typing import Any

from ..errors import LoadError

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
    nr = table.get(platform.machine())
    if nr is None:
        raise OSError(errno_mod.ENOSYS, f"{name}(2): unknown architecture {platform.machine()}")
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
