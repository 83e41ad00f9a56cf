"""perf_event_open(2) and its ioctls through ctypes, with errno mapped to OSError.

Thin on purpose, like calls.py: ``struct perf_event_attr`` is built as bytes at the
kernel's fixed offsets (include/uapi/linux/perf_event.h) and everything above this module
handles only Python values and owned FDs.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import os
import struct

from .calls import FD, libc, syscall_number

PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2
PERF_COUNT_SW_BPF_OUTPUT = 10

PERF_SAMPLE_RAW = 1 << 10

# bits of the u64 bitfield at offset 40 of perf_event_attr
ATTR_DISABLED = 1 << 0
ATTR_WATERMARK = 1 << 14

PERF_FLAG_FD_CLOEXEC = 1 << 3

PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_SET_BPF = 0x40042408

# struct perf_event_header.type values a BPF output ring carries
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9

# struct perf_event_mmap_page: where the ring's positions live in the first page
MMAP_DATA_HEAD = 1024
MMAP_DATA_TAIL = 1032
MMAP_DATA_OFFSET = 1040
MMAP_DATA_SIZE = 1048

PERF_ATTR_SIZE = 128  # PERF_ATTR_SIZE_VER7: every field up to sig_data


def perf_event_attr(type_: int, config: int = 0, *, sample_period: int = 0,
                    sample_type: int = 0, read_format: int = 0, flags: int = 0,
                    wakeup_events: int = 0, wakeup_watermark: int = 0, config1: int = 0,
                    config2: int = 0) -> bytearray:
    """struct perf_event_attr; ``wakeup_events`` and ``wakeup_watermark`` share one union,
    so a watermark (with ATTR_WATERMARK in ``flags``) wins when both are given."""
    if wakeup_watermark and not flags & ATTR_WATERMARK:
        raise ValueError("wakeup_watermark needs ATTR_WATERMARK in flags")
    attr = bytearray(PERF_ATTR_SIZE)
    struct.pack_into("=IIQQQQQI", attr, 0, type_, PERF_ATTR_SIZE, config, sample_period,
                     sample_type, read_format, flags,
                     wakeup_watermark if flags & ATTR_WATERMARK else wakeup_events)
    struct.pack_into("=QQ", attr, 56, config1, config2)
    return attr


def perf_event_open(attr: bytearray, pid: int = -1, cpu: int = 0, group_fd: int = -1,
                    flags: int = PERF_FLAG_FD_CLOEXEC) -> FD:
    """perf_event_open(2); the event fd is owned by the returned FD."""
    buf = (ctypes.c_char * len(attr)).from_buffer(attr)
    ret = libc().syscall(ctypes.c_long(syscall_number("perf_event_open")), buf,
                         ctypes.c_int(pid), ctypes.c_int(cpu), ctypes.c_int(group_fd),
                         ctypes.c_ulong(flags))
    if ret < 0:
        err = ctypes.get_errno()
        msg = os.strerror(err)
        if err in (errno_mod.EPERM, errno_mod.EACCES):
            from .caps import perf_refusal

            denied = perf_refusal(err)
            if denied is not None:  # missing privileges, said as such (a corebpf Error)
                raise denied
            msg += " (needs root or CAP_PERFMON, or a lower kernel.perf_event_paranoid)"
        raise OSError(err, f"perf_event_open(cpu {cpu}): {msg}")
    return FD(int(ret))


def ioctl(fd: int, request: int, arg: int = 0) -> int:
    """ioctl(2) with an integer argument (PERF_EVENT_IOC_*)."""
    ret = libc().ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.c_ulong(arg))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"ioctl({fd}, {request:#x}): {os.strerror(err)}")
    return int(ret)


__all__ = [
    "ATTR_DISABLED",
    "ATTR_WATERMARK",
    "MMAP_DATA_HEAD",
    "MMAP_DATA_OFFSET",
    "MMAP_DATA_SIZE",
    "MMAP_DATA_TAIL",
    "PERF_ATTR_SIZE",
    "PERF_COUNT_SW_BPF_OUTPUT",
    "PERF_EVENT_IOC_DISABLE",
    "PERF_EVENT_IOC_ENABLE",
    "PERF_EVENT_IOC_SET_BPF",
    "PERF_FLAG_FD_CLOEXEC",
    "PERF_RECORD_LOST",
    "PERF_RECORD_SAMPLE",
    "PERF_SAMPLE_RAW",
    "PERF_TYPE_SOFTWARE",
    "PERF_TYPE_TRACEPOINT",
    "ioctl",
    "perf_event_attr",
    "perf_event_open",
]
