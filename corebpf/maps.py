"""Kernel maps: create, open (pin, fd), read and write them from user space.

A :class:`Map` owns one map fd. Keys and values go in as ``bytes``, ints, ctypes
instances, or plain Python values when the map knows its BTF key/value types (see
:mod:`corebpf.btf.codec`); they come out decoded the same way, else as ``bytes``.

Per-CPU maps hold one value per *possible* CPU, each slot rounded up to 8 bytes as the
kernel lays them out; their values are lists. Maps of maps and program arrays take fds
(a :class:`Map`, an FD or an int) and give back the stored object's id, as the kernel does.

Everything that talks to the kernel goes through :mod:`corebpf.sys.calls`.
"""

from __future__ import annotations

import ctypes
import enum
import errno as E
import functools
import mmap as mmap_mod
import os
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping

from ._record import record
from .btf import Spec
from .btf.codec import Codec, CodecError, codec
from .errors import BTFError, Error, LoadError
from .obj.sections import MapType
from .sys.calls import (
    FD,
    BatchEnd,
    BPFCommand,
    bpf,
    btf_get_fd_by_id,
    btf_load,
    map_batch,
    map_create,
    map_elem,
    map_freeze,
    obj_get,
    obj_info,
    obj_pin,
)
from .sys.fs import possible_cpu_count

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeAlias

    Decoder: TypeAlias = "Callable[[bytes, int], Any]"
    Encoder: TypeAlias = "Callable[[Any], bytes]"

__all__ = [
    "ANY",
    "EXIST",
    "LOCK",
    "NOEXIST",
    "Map",
    "MapError",
    "MapFlags",
    "MapInfo",
    "MapKeyError",
    "MapType",
    "lpm_key",
    "possible_cpus",
]


class MapFlags(enum.IntFlag):
    """BPF_F_* map_flags of BPF_MAP_CREATE."""

    NO_PREALLOC = 1 << 0
    NO_COMMON_LRU = 1 << 1
    NUMA_NODE = 1 << 2
    RDONLY = 1 << 3
    WRONLY = 1 << 4
    STACK_BUILD_ID = 1 << 5
    ZERO_SEED = 1 << 6
    RDONLY_PROG = 1 << 7
    WRONLY_PROG = 1 << 8
    CLONE = 1 << 9
    MMAPABLE = 1 << 10
    PRESERVE_ELEMS = 1 << 11
    INNER_MAP = 1 << 12
    LINK = 1 << 13
    PATH_FD = 1 << 14
    VTYPE_BTF_OBJ_FD = 1 << 15
    TOKEN_FD = 1 << 16
    SEGV_ON_FAULT = 1 << 17
    NO_USER_CONV = 1 << 18


#: update() flags: create or replace / create only / replace only / take the spin lock
ANY, NOEXIST, EXIST, LOCK = 0, 1, 2, 4

_PERCPU = frozenset({MapType.PERCPU_HASH, MapType.PERCPU_ARRAY, MapType.LRU_PERCPU_HASH,
                     MapType.PERCPU_CGROUP_STORAGE})
#: Written with an fd, read back as the object's id (u32).
_FD_VALUES = frozenset({MapType.PROG_ARRAY, MapType.PERF_EVENT_ARRAY, MapType.CGROUP_ARRAY,
                        MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS})
#: Keyless maps: push/pop/peek on a NULL key.
_KEYLESS = frozenset({MapType.QUEUE, MapType.STACK, MapType.BLOOM_FILTER})
ENOTSUPP = 524  # the kernel-internal errno bpf(2) leaks when a map type lacks an operation
_UNSUPPORTED = frozenset({ENOTSUPP, E.EOPNOTSUPP, E.EINVAL})
_MAP_INFO_SIZE = 88  # struct bpf_map_info up to map_extra
_U32 = struct.Struct("=I")
_BATCH_MAX = 4096


class MapError(Error, OSError):
    """A map operation the kernel refused; ``errno`` says why."""

    def __str__(self) -> str:
        return str(self.strerror if self.strerror is not None else self.args[0])


class MapKeyError(MapError, KeyError):
    """A key that is not in the map (or an empty queue/stack, or a bloom filter miss)."""


@functools.cache
def possible_cpus() -> int:
    """How many CPUs per-CPU maps hold a value for (see sys.fs.possible_cpu_count)."""
    return possible_cpu_count()


def lpm_key(prefixlen: int, data: bytes) -> bytes:
    """An LPM trie key: host-order u32 prefix length, then the data (network order)."""
    return _U32.pack(prefixlen) + bytes(data)


@record(frozen=True)
class MapInfo:
    """struct bpf_map_info as BPF_OBJ_GET_INFO_BY_FD returns it."""

    type: MapType | int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str
    ifindex: int = 0
    btf_vmlinux_value_type_id: int = 0
    btf_id: int = 0
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    map_extra: int = 0

    @classmethod
    def from_bytes(cls, raw: bytes) -> MapInfo:
        mtype, mid, ksize, vsize, max_entries, flags = struct.unpack_from("=6I", raw, 0)
        name = raw[24:40].split(b"\0", 1)[0].decode("utf-8", "replace")
        ifindex, vmlinux_vtid = struct.unpack_from("=2I", raw, 40)
        btf_id, key_tid, value_tid = struct.unpack_from("=3I", raw, 64)
        (extra,) = struct.unpack_from("=Q", raw, 80)
        try:
            typ: MapType | int = MapType(mtype)
        except ValueError:
            typ = mtype
        return cls(typ, mid, ksize, vsize, max_entries, flags, name, ifindex, vmlinux_vtid,
                   btf_id, key_tid, value_tid, extra)


def _is_ctypes(obj: object) -> bool:
    return isinstance(obj, ctypes.Structure | ctypes.Union | ctypes.Array | ctypes._SimpleCData)


def _round8(n: int) -> int:
    return (n + 7) & ~7


# -- map BTF from the kernel (pure attr builders; candidates for corebpf.sys) ------------


def _btf_raw(fd: int) -> bytes:
    """The BTF blob behind a BTF fd (BPF_OBJ_GET_INFO_BY_FD, struct bpf_btf_info): asked
    once for its size, then for its bytes."""
    size = 0
    for _ in range(4):  # the size cannot change, but do not loop forever if it did
        data = ctypes.create_string_buffer(max(size, 1))
        info = ctypes.create_string_buffer(32)
        struct.pack_into("QI", info, 0, ctypes.addressof(data) if size else 0, size)
        attr = bytearray(16)
        struct.pack_into("IIQ", attr, 0, fd, 32, ctypes.addressof(info))
        bpf(BPFCommand.OBJ_GET_INFO_BY_FD, attr)
        need = struct.unpack_from("I", info, 8)[0]
        if size and need <= size:
            return data.raw[:need]
        size = need
    raise OSError(E.EAGAIN, "BTF size kept changing")


def _kernel_map_btf(btf_id: int) -> Spec | None:
    """The BTF a map was created with, or None when the kernel will not give it."""
    try:
        with btf_get_fd_by_id(btf_id) as fd:
            raw = _btf_raw(fd.fd)
        return Spec(raw, source=f"btf id {btf_id}")
    except (OSError, Error):
        return None


# -- Map --------------------------------------------------------------------------------


class Map:
    """A kernel map. Use :meth:`create`, :meth:`from_fd` or :meth:`from_pin`.

    Maps have no cheap length, so there is no ``len()``; iterate :meth:`keys` or
    :meth:`items` (which uses batch lookups where the kernel has them).
    """

    def __init__(self, fd: FD, info: MapInfo, *, btf: Spec | None = None,
                 key_type_id: int = 0, value_type_id: int = 0, key_ctype: Any = None,
                 value_ctype: Any = None, enum_names: bool = False):
        self.fd = fd
        self._info = info
        self.btf = btf
        self.key_type_id = key_type_id
        self.value_type_id = value_type_id
        self.pinned: str | None = None
        self._mmaps: list[mmap_mod.mmap] = []
        self._no_batch: set[int] = set()  # batch commands this map type turned out to lack
        mtype = info.type
        self.percpu = mtype in _PERCPU
        self.ncpus = possible_cpus() if self.percpu else 1
        self._vstride = _round8(info.value_size) if self.percpu else info.value_size
        self._vtotal = self._vstride * self.ncpus
        kc = self._codec(btf, key_type_id, info.key_size, "key", enum_names)
        vc = self._codec(btf, value_type_id, info.value_size, "value", enum_names)
        self.key_codec, self.value_codec = kc, vc
        self._kenc = self._encoder(info.key_size, kc, key_ctype, "key", fds=False)
        self._kdec = self._decoder(info.key_size, kc, key_ctype, ids=False)
        fds = mtype in _FD_VALUES
        self._venc1 = self._encoder(info.value_size, vc, value_ctype, "value", fds=fds)
        self._vdec1 = self._decoder(info.value_size, vc, value_ctype, ids=fds)

    # -- construction ---------------------------------------------------------------

    @classmethod
    def create(cls, map_type: MapType | int, key_size: int = 0, value_size: int = 0,
               max_entries: int = 0, flags: int = 0, name: str = "", *,
               btf: Spec | None = None, btf_fd: int | FD | None = None, key_type_id: int = 0,
               value_type_id: int = 0, inner_map: Map | None = None, numa_node: int = 0,
               map_extra: int = 0, ifindex: int = 0, btf_vmlinux_value_type_id: int = 0,
               key_ctype: Any = None, value_ctype: Any = None,
               enum_names: bool = False) -> Map:
        """BPF_MAP_CREATE.

        With ``btf`` (a Spec) and type ids, the kernel gets the types (storage maps need
        them) and keys/values are encoded and decoded with them; sizes left 0 are taken
        from the types (or from ``key_ctype``/``value_ctype``). ``btf_fd`` passes BTF
        already loaded in the kernel (``btf`` then only serves decoding). A perf event
        array with ``max_entries`` 0 gets one slot per possible CPU.
        """
        if btf is not None:
            if not key_size and key_type_id:
                key_size = btf.size_of(key_type_id)
            if not value_size and value_type_id:
                value_size = btf.size_of(value_type_id)
        if not key_size and key_ctype is not None:
            key_size = ctypes.sizeof(key_ctype)
        if not value_size and value_ctype is not None:
            value_size = ctypes.sizeof(value_ctype)
        if map_type == MapType.PERF_EVENT_ARRAY and not max_entries:
            max_entries = possible_cpus()
        kernel_btf: FD | None = None
        fdnum = 0
        if btf_fd is not None:
            fdnum = int(btf_fd)
        elif btf is not None and (key_type_id or value_type_id or btf_vmlinux_value_type_id):
            kernel_btf = btf_load(btf.raw)
            fdnum = kernel_btf.fd
        inner_fd = 0
        if inner_map is not None:
            inner_fd = inner_map._fdnum()
        try:
            fd = map_create(int(map_type), key_size, value_size, max_entries, flags=flags,
                            inner_map_fd=inner_fd, numa_node=numa_node, name=name,
                            ifindex=ifindex, btf_fd=fdnum,
                            btf_key_type_id=key_type_id if fdnum else 0,
                            btf_value_type_id=value_type_id if fdnum else 0,
                            btf_vmlinux_value_type_id=btf_vmlinux_value_type_id,
                            map_extra=map_extra)
        except OSError as e:
            tname = MapType(map_type).name if map_type in MapType._value2member_map_ \
                else str(map_type)
            raise LoadError(
                f"map {name or '(unnamed)'} ({tname}, key {key_size}, value {value_size}, "
                f"max_entries {max_entries}, flags {flags:#x}): BPF_MAP_CREATE failed: "
                f"{os.strerror(e.errno or 0)}{_create_hint(int(map_type), e.errno or 0)}",
                errno=e.errno or 0) from None
        finally:
            if kernel_btf is not None:
                kernel_btf.close()  # the map holds its own reference
        return cls._open(fd, btf=btf, key_type_id=key_type_id, value_type_id=value_type_id,
                         key_ctype=key_ctype, value_ctype=value_ctype, enum_names=enum_names,
                         load_btf=False)

    @classmethod
    def from_fd(cls, fd: int, *, btf: Spec | None = None, key_type_id: int | None = None,
                value_type_id: int | None = None, key_ctype: Any = None,
                value_ctype: Any = None, enum_names: bool = False,
                load_btf: bool = True) -> Map:
        """A map for a duplicate of ``fd`` (the caller keeps and closes its own).

        Without ``btf``, and with ``load_btf``, the BTF the map was created with (if any)
        is fetched from the kernel, so values decode as that program declared them.
        """
        try:
            dup = FD(os.dup(fd))
        except OSError as e:
            raise MapError(e.errno or E.EBADF, f"fd {fd}: {e.strerror}") from None
        return cls._open(dup, btf=btf, key_type_id=key_type_id, value_type_id=value_type_id,
                         key_ctype=key_ctype, value_ctype=value_ctype, enum_names=enum_names,
                         load_btf=load_btf)

    @classmethod
    def from_pin(cls, path: str, *, flags: int = 0, btf: Spec | None = None,
                 key_type_id: int | None = None, value_type_id: int | None = None,
                 key_ctype: Any = None, value_ctype: Any = None, enum_names: bool = False,
                 load_btf: bool = True) -> Map:
        """The map pinned at ``path`` (``flags``: BPF_F_RDONLY/BPF_F_WRONLY file access)."""
        try:
            fd = obj_get(path, flags)
        except OSError as e:
            raise MapError(e.errno or 0, f"{path}: cannot open pinned map: "
                                         f"{os.strerror(e.errno or 0)}") from None
        return cls._open(fd, btf=btf, key_type_id=key_type_id, value_type_id=value_type_id,
                         key_ctype=key_ctype, value_ctype=value_ctype, enum_names=enum_names,
                         load_btf=load_btf)

    @classmethod
    def _open(cls, fd: FD, *, btf: Spec | None, key_type_id: int | None,
              value_type_id: int | None, key_ctype: Any, value_ctype: Any, enum_names: bool,
              load_btf: bool) -> Map:
        try:
            what = os.readlink(f"/proc/self/fd/{fd.fd}")
        except OSError:
            what = "anon_inode:bpf-map"  # no /proc: let the kernel judge
        if what != "anon_inode:bpf-map":  # a program's info would pass for a map's
            fd.close()
            raise MapError(E.EINVAL, f"fd is not a map but {what}")
        try:
            info = MapInfo.from_bytes(obj_info(fd.fd, _MAP_INFO_SIZE))
        except OSError as e:
            fd.close()
            raise MapError(e.errno or 0, f"fd is not a map: {os.strerror(e.errno or 0)}") \
                from None
        fetched = False
        if btf is None and load_btf and info.btf_id:
            btf = _kernel_map_btf(info.btf_id)
            fetched = btf is not None
        if btf is not None:
            key_type_id = info.btf_key_type_id if key_type_id is None else key_type_id
            value_type_id = info.btf_value_type_id if value_type_id is None else value_type_id
        try:
            try:
                return cls(fd, info, btf=btf, key_type_id=key_type_id or 0,
                           value_type_id=value_type_id or 0, key_ctype=key_ctype,
                           value_ctype=value_ctype, enum_names=enum_names)
            except (BTFError, CodecError):
                if not fetched:
                    raise
                # types this codec cannot lay out: the map still opens, with bytes
                return cls(fd, info, key_ctype=key_ctype, value_ctype=value_ctype)
        except BaseException:
            fd.close()
            raise

    # -- key/value conversion -------------------------------------------------------

    @staticmethod
    def _codec(btf: Spec | None, type_id: int, size: int, what: str,
               enum_names: bool) -> Codec | None:
        if btf is None or not type_id:
            return None
        c = codec(btf, type_id, enum_names=enum_names)
        if c.size != size:
            raise CodecError(what, f"BTF type [{type_id}] {c.name} is {c.size} bytes, the "
                                   f"map's {what}s are {size}")
        return c

    @staticmethod
    def _encoder(size: int, c: Codec | None, ctype: Any, what: str, fds: bool) -> Encoder:
        order: Any = sys.byteorder

        def enc(obj: Any) -> bytes:
            if isinstance(obj, bytes | bytearray | memoryview) or _is_ctypes(obj):
                raw = bytes(obj)
                if len(raw) != size:
                    raise CodecError(what, f"{len(raw)} bytes for a {size}-byte {what}")
                return raw
            if fds:
                if isinstance(obj, Map):
                    obj = obj._fdnum()
                elif isinstance(obj, FD):
                    obj = obj.fd
            if c is not None:
                return c.encode(obj)
            if isinstance(obj, int):
                try:
                    return int(obj).to_bytes(size, order, signed=obj < 0)
                except OverflowError:
                    raise CodecError(what, f"{obj} does not fit in {size} bytes") from None
            if ctype is not None and isinstance(obj, Mapping | list | tuple):
                raise CodecError(what, f"pass a {ctype.__name__} instance or bytes")
            raise CodecError(what, f"cannot encode {type(obj).__name__} as a {size}-byte "
                                   f"{what} without BTF types (pass bytes, an int or a "
                                   f"ctypes instance)")
        return enc

    @staticmethod
    def _decoder(size: int, c: Codec | None, ctype: Any, ids: bool) -> Decoder:
        if c is not None:
            return c.decode
        if ctype is not None:
            return lambda buf, off: ctype.from_buffer_copy(buf, off)
        if ids and size == 4:
            unpack = _U32.unpack_from
            return lambda buf, off: unpack(buf, off)[0]
        return lambda buf, off: bytes(buf[off:off + size])

    def _venc(self, value: Any) -> bytes:
        if not self.percpu:
            return self._venc1(value)
        n, stride = self.ncpus, self._vstride
        if isinstance(value, list | tuple) and len(value) == n:
            parts = [self._venc1(v) for v in value]
        else:
            parts = [self._venc1(value)] * n  # one value for every CPU
        pad = bytes(stride - self.value_size)
        return b"".join(p + pad for p in parts) if pad else b"".join(parts)

    def _vdec(self, buf: bytes, off: int) -> Any:
        if not self.percpu:
            return self._vdec1(buf, off)
        stride, dec = self._vstride, self._vdec1
        return [dec(buf, off + i * stride) for i in range(self.ncpus)]

    def encode_key(self, key: Any) -> bytes:
        """``key`` as the map stores it."""
        return self._kenc(key)

    def encode_value(self, value: Any) -> bytes:
        """``value`` as the map stores it (all CPUs' slots for per-CPU maps)."""
        return self._venc(value)

    # -- properties -----------------------------------------------------------------

    @property
    def type(self) -> MapType | int:
        return self._info.type

    @property
    def key_size(self) -> int:
        return self._info.key_size

    @property
    def value_size(self) -> int:
        return self._info.value_size

    @property
    def max_entries(self) -> int:
        return self._info.max_entries

    @property
    def flags(self) -> int:
        return self._info.flags

    @property
    def name(self) -> str:
        return self._info.name

    @property
    def id(self) -> int:
        return self._info.id

    @property
    def closed(self) -> bool:
        return self.fd.closed

    def info(self) -> MapInfo:
        """struct bpf_map_info, asked of the kernel now."""
        try:
            return MapInfo.from_bytes(obj_info(self._fdnum(), _MAP_INFO_SIZE))
        except OSError as e:
            raise self._error(e, "get info") from None

    # -- plumbing -------------------------------------------------------------------

    def _fdnum(self) -> int:
        if self.fd.closed:
            raise MapError(E.EBADF, f"map {self.name or '(unnamed)'} is closed")
        return self.fd.fd

    def _where(self) -> str:
        tname = self.type.name if isinstance(self.type, MapType) else str(self.type)
        return f"map {self.name or '(unnamed)'} ({tname}, fd {self.fd.fd})"

    def _error(self, e: OSError, what: str, key: Any = None, missing: bool = False) -> MapError:
        if isinstance(e, MapError):  # already ours (a closed map)
            return e
        err = e.errno or 0
        keytext = f" {key!r}" if key is not None else ""
        if err == E.ENOENT and missing:
            if not self.key_size:
                return MapKeyError(err, f"{self._where()}: {what}: the map is empty")
            return MapKeyError(err, f"{self._where()}: {what}:{keytext} not found")
        reason = {E.E2BIG: "the map is full (or the key is out of range)",
                  E.EEXIST: "the key exists (NOEXIST)",
                  ENOTSUPP: "not supported for this map type",
                  E.EOPNOTSUPP: "not supported for this map type"}.get(err, os.strerror(err))
        return MapError(err, f"{self._where()}: {what}{keytext}: {reason}")

    def _key_buf(self, key: Any) -> ctypes.Array[ctypes.c_char] | None:
        if not self.key_size:
            if key is not None:
                raise CodecError("key", f"{self._where()} has no keys (use push/pop/peek)")
            return None
        raw = self._kenc(key)
        return ctypes.create_string_buffer(raw, len(raw))

    # -- single elements ------------------------------------------------------------

    def lookup(self, key: Any = None, flags: int = 0) -> Any:
        """The value under ``key``; MapKeyError if there is none."""
        kbuf = self._key_buf(key)
        vbuf = ctypes.create_string_buffer(max(self._vtotal, 1))
        try:
            map_elem(BPFCommand.MAP_LOOKUP_ELEM, self._fdnum(), kbuf, vbuf, flags)
        except OSError as e:
            raise self._error(e, "lookup", key, missing=True) from None
        return self._vdec(vbuf.raw, 0)

    def get(self, key: Any, default: Any = None) -> Any:
        try:
            return self.lookup(key)
        except MapKeyError:
            return default

    def update(self, key: Any, value: Any, flags: int = ANY) -> None:
        """Store ``value`` under ``key`` (``flags``: ANY, NOEXIST, EXIST, maybe | LOCK).

        For per-CPU maps, ``value`` is a list or tuple of one value per possible CPU, or
        a single value that every CPU gets."""
        kbuf = self._key_buf(key)
        raw = self._venc(value)
        vbuf = ctypes.create_string_buffer(raw, len(raw))
        try:
            map_elem(BPFCommand.MAP_UPDATE_ELEM, self._fdnum(), kbuf, vbuf, flags)
        except OSError as e:
            raise self._error(e, "update", key, missing=flags & EXIST != 0) from None

    def delete(self, key: Any) -> None:
        kbuf = self._key_buf(key)
        try:
            map_elem(BPFCommand.MAP_DELETE_ELEM, self._fdnum(), kbuf)
        except OSError as e:
            raise self._error(e, "delete", key, missing=True) from None

    def lookup_and_delete(self, key: Any = None) -> Any:
        """Remove ``key`` and return what it held (hash maps; queues and stacks: pop)."""
        kbuf = self._key_buf(key)
        vbuf = ctypes.create_string_buffer(max(self._vtotal, 1))
        try:
            map_elem(BPFCommand.MAP_LOOKUP_AND_DELETE_ELEM, self._fdnum(), kbuf, vbuf)
        except OSError as e:
            raise self._error(e, "lookup and delete", key, missing=True) from None
        return self._vdec(vbuf.raw, 0)

    def __getitem__(self, key: Any) -> Any:
        return self.lookup(key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update(key, value)

    def __delitem__(self, key: Any) -> None:
        self.delete(key)

    def __contains__(self, item: Any) -> bool:
        """Whether a key is present (for a bloom filter: whether the value may be)."""
        if self.type == MapType.BLOOM_FILTER:
            return bool(self.peek(item))
        try:
            self.lookup(item)
        except MapKeyError:
            return False
        return True

    # -- queue, stack, bloom filter ---------------------------------------------------

    def push(self, value: Any, flags: int = ANY) -> None:
        """Queue/stack: append ``value`` (``EXIST`` drops the oldest when full); bloom
        filter: add it."""
        raw = self._venc(value)
        vbuf = ctypes.create_string_buffer(raw, len(raw))
        try:
            map_elem(BPFCommand.MAP_UPDATE_ELEM, self._fdnum(), None, vbuf, flags)
        except OSError as e:
            raise self._error(e, "push") from None

    def pop(self) -> Any:
        """Queue: the oldest value, stack: the newest, removed; MapKeyError when empty."""
        return self.lookup_and_delete(None)

    def peek(self, value: Any = None) -> Any:
        """Queue/stack: the value :meth:`pop` would return, left in place. Bloom filter:
        whether ``value`` may have been pushed (False means certainly not)."""
        if self.type == MapType.BLOOM_FILTER:
            raw = self._venc(value)
            vbuf = ctypes.create_string_buffer(raw, len(raw))
            try:
                map_elem(BPFCommand.MAP_LOOKUP_ELEM, self._fdnum(), None, vbuf)
            except OSError as e:
                if e.errno == E.ENOENT:
                    return False
                raise self._error(e, "peek") from None
            return True
        return self.lookup(None)

    # -- iteration --------------------------------------------------------------------

    def _raw_keys(self) -> Iterator[bytes]:
        if not self.key_size:
            raise MapError(E.EINVAL, f"{self._where()}: has no keys to iterate")
        ks = self.key_size
        prev: ctypes.Array[ctypes.c_char] | None = None
        nxt = ctypes.create_string_buffer(ks)
        while True:
            try:
                map_elem(BPFCommand.MAP_GET_NEXT_KEY, self._fdnum(), prev, nxt)
            except OSError as e:
                if e.errno == E.ENOENT:
                    return
                raise self._error(e, "next key") from None
            raw = nxt.raw
            yield raw
            prev = ctypes.create_string_buffer(raw, ks)

    def keys(self) -> Iterator[Any]:
        """Every key, by BPF_MAP_GET_NEXT_KEY. A hash map that loses the current key
        while this runs starts over from its first key (the kernel's rule)."""
        dec = self._kdec
        for raw in self._raw_keys():
            yield dec(raw, 0)

    __iter__ = keys

    def values(self) -> Iterator[Any]:
        for _key, value in self.items():
            yield value

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every (key, value): batch lookups where the kernel has them, else key by key
        (skipping keys deleted meanwhile)."""
        return self.lookup_batch()

    def _items_by_key(self) -> Iterator[tuple[Any, Any]]:
        kdec = self._kdec
        vbuf = ctypes.create_string_buffer(max(self._vtotal, 1))
        for raw in self._raw_keys():
            kbuf = ctypes.create_string_buffer(raw, len(raw))
            try:
                map_elem(BPFCommand.MAP_LOOKUP_ELEM, self._fdnum(), kbuf, vbuf)
            except OSError as e:
                if e.errno == E.ENOENT:
                    continue
                raise self._error(e, "lookup", kdec(raw, 0)) from None
            yield kdec(raw, 0), self._vdec(vbuf.raw, 0)

    # -- batches ----------------------------------------------------------------------

    def _batch_unsupported(self, cmd: int, e: OSError) -> bool:
        """Whether to fall back to single elements after ``e`` (remembered for good when
        the kernel says the map type lacks the command)."""
        if e.errno in (ENOTSUPP, E.EOPNOTSUPP):
            self._no_batch.add(cmd)
            return True
        return e.errno == E.EINVAL

    def lookup_batch(self, chunk: int = 0, *, delete: bool = False) -> Iterator[tuple[Any, Any]]:
        """Every (key, value), ``chunk`` elements per BPF_MAP_LOOKUP_BATCH (or
        LOOKUP_AND_DELETE_BATCH with ``delete``); element by element where the kernel has
        no batch operation for this map type."""
        cmd = BPFCommand.MAP_LOOKUP_AND_DELETE_BATCH if delete else BPFCommand.MAP_LOOKUP_BATCH
        if cmd in self._no_batch or not self.key_size:
            yield from self._fallback_lookup(delete)
            return
        n = chunk or min(max(self.max_entries, 1), _BATCH_MAX)
        ks, vs = self.key_size, self._vtotal
        tok = max(ks, 8)
        in_b: ctypes.Array[ctypes.c_char] | None = None
        out_b = ctypes.create_string_buffer(tok)
        keys = ctypes.create_string_buffer(ks * n)
        vals = ctypes.create_string_buffer(max(vs * n, 1))
        first = True
        kdec, vdec = self._kdec, self._vdec
        while True:
            done = False
            try:
                count = map_batch(cmd, self._fdnum(), in_b, out_b, keys, vals, n)
            except BatchEnd as end:
                count, done = end.count, True
            except OSError as e:
                if e.errno == E.ENOSPC and n < (1 << 20):
                    n *= 2  # a hash bucket holds more than one batch: grow and retry
                    keys = ctypes.create_string_buffer(ks * n)
                    vals = ctypes.create_string_buffer(max(vs * n, 1))
                    continue
                if first and self._batch_unsupported(cmd, e):
                    yield from self._fallback_lookup(delete)
                    return
                raise self._error(e, "lookup and delete batch" if delete else "lookup batch") \
                    from None
            first = False
            kraw, vraw = keys.raw, vals.raw
            for i in range(count):
                yield kdec(kraw, i * ks), vdec(vraw, i * vs)
            if done:
                return
            in_b, out_b = out_b, (in_b if in_b is not None else ctypes.create_string_buffer(tok))

    def _fallback_lookup(self, delete: bool) -> Iterator[tuple[Any, Any]]:
        if not delete:
            yield from self._items_by_key()
            return
        kdec = self._kdec
        atomic = True
        for raw in list(self._raw_keys()):
            try:
                if atomic:
                    try:
                        value = self.lookup_and_delete(raw)
                    except MapError as e:
                        if e.errno not in (ENOTSUPP, E.EOPNOTSUPP):
                            raise
                        atomic = False  # this map type has no LOOKUP_AND_DELETE_ELEM
                if not atomic:
                    value = self.lookup(raw)
                    self.delete(raw)
            except MapKeyError:
                continue
            yield kdec(raw, 0), value

    def update_batch(self, items: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
                     flags: int = ANY) -> int:
        """Store many (key, value) pairs with one BPF_MAP_UPDATE_BATCH; returns how many."""
        pairs = list(items.items() if isinstance(items, Mapping) else items)
        if not pairs:
            return 0
        if BPFCommand.MAP_UPDATE_BATCH not in self._no_batch:
            kraw = b"".join(self._kenc(k) for k, _ in pairs)
            vraw = b"".join(self._venc(v) for _, v in pairs)
            kbuf = ctypes.create_string_buffer(kraw, len(kraw))
            vbuf = ctypes.create_string_buffer(vraw, max(len(vraw), 1))
            try:
                return map_batch(BPFCommand.MAP_UPDATE_BATCH, self._fdnum(), None, None, kbuf,
                                 vbuf, len(pairs), elem_flags=flags)
            except BatchEnd as end:
                key = pairs[end.count][0] if end.count < len(pairs) else None
                raise self._error(OSError(E.ENOENT, ""), "update batch", key,
                                  missing=True) from None
            except OSError as e:
                if not self._batch_unsupported(BPFCommand.MAP_UPDATE_BATCH, e):
                    raise self._error(e, "update batch") from None
        for k, v in pairs:
            self.update(k, v, flags)
        return len(pairs)

    def delete_batch(self, keys: Iterable[Any]) -> int:
        """Delete many keys with one BPF_MAP_DELETE_BATCH; returns how many. A missing
        key raises MapKeyError once the keys before it are deleted."""
        ks = list(keys)
        if not ks:
            return 0
        if BPFCommand.MAP_DELETE_BATCH not in self._no_batch:
            kraw = b"".join(self._kenc(k) for k in ks)
            kbuf = ctypes.create_string_buffer(kraw, len(kraw))
            try:
                return map_batch(BPFCommand.MAP_DELETE_BATCH, self._fdnum(), None, None, kbuf,
                                 None, len(ks))
            except BatchEnd as end:
                key = ks[end.count] if end.count < len(ks) else None
                raise self._error(OSError(E.ENOENT, ""), "delete batch", key,
                                  missing=True) from None
            except OSError as e:
                if not self._batch_unsupported(BPFCommand.MAP_DELETE_BATCH, e):
                    raise self._error(e, "delete batch") from None
        for k in ks:
            self.delete(k)
        return len(ks)

    # -- whole-map operations -------------------------------------------------------

    def freeze(self) -> None:
        """Make the map read-only for user space (programs may still write it unless it
        was created BPF_F_RDONLY_PROG). Mappings whose views were all released are
        unmapped first: the kernel refuses while a writable mapping exists."""
        self._unmap_released()
        try:
            map_freeze(self._fdnum())
        except OSError as e:
            err = self._error(e, "freeze")
            if e.errno == E.EBUSY:
                err = MapError(E.EBUSY, f"{err} (a writable mmap() view is still out: "
                                        f"release it first)")
            raise err from None

    def _unmap_released(self) -> None:
        kept = []
        for mm in self._mmaps:
            try:
                mm.close()
            except BufferError:
                kept.append(mm)  # a memoryview is still out; the mapping goes when it does
        self._mmaps = kept

    def mmap(self, writable: bool | None = None) -> memoryview:
        """The values of a BPF_F_MMAPABLE array as one memoryview (element ``i`` at
        ``i * round_up(value_size, 8)``); global data (.bss, .data) lives this way.
        Writable unless the map is frozen or ``writable`` is False."""
        if not self.flags & MapFlags.MMAPABLE:
            raise MapError(E.EINVAL, f"{self._where()}: not created with BPF_F_MMAPABLE")
        page = mmap_mod.PAGESIZE
        length = max(page, (self.max_entries * _round8(self.value_size) + page - 1)
                     // page * page)
        fd = self._fdnum()
        attempts = [True, False] if writable is None else [writable]
        for rw in attempts:
            prot = mmap_mod.PROT_READ | (mmap_mod.PROT_WRITE if rw else 0)
            try:
                mm = mmap_mod.mmap(fd, length, mmap_mod.MAP_SHARED, prot)
            except OSError as e:
                if rw and writable is None and e.errno in (E.EPERM, E.EACCES):
                    continue
                raise self._error(e, "mmap") from None
            self._mmaps.append(mm)
            return memoryview(mm)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- pinning --------------------------------------------------------------------

    def pin(self, path: str) -> None:
        """Pin the map at ``path`` on a bpffs (which must exist and be free)."""
        try:
            obj_pin(self._fdnum(), path)
        except OSError as e:
            raise MapError(e.errno or 0, f"{self._where()}: pin at {path}: "
                                         f"{os.strerror(e.errno or 0)}") from None
        self.pinned = path

    def unpin(self) -> None:
        """Remove the pin made by :meth:`pin` (or that :meth:`from_pin` opened)."""
        if self.pinned is None:
            return
        try:
            os.unlink(self.pinned)
        except FileNotFoundError:
            pass
        except OSError as e:
            raise MapError(e.errno or 0, f"{self._where()}: unpin {self.pinned}: "
                                         f"{e.strerror}") from None
        self.pinned = None

    # -- lifetime -------------------------------------------------------------------

    def close(self) -> None:
        """Release the fd (and mappings no view still holds); the kernel frees the map
        once no fd, pin, mapping or program refers to it."""
        self._unmap_released()
        self._mmaps.clear()
        self.fd.close()

    def __enter__(self) -> Map:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.fd.closed else f"fd={self.fd.fd}"
        tname = self.type.name if isinstance(self.type, MapType) else str(self.type)
        return (f"Map({self.name!r}, {tname}, key={self.key_size}, value={self.value_size}, "
                f"max_entries={self.max_entries}, {state})")


def _create_hint(map_type: int, err: int) -> str:
    if err in (E.EPERM, E.EACCES):
        return " (needs root or CAP_BPF)"
    if err == E.EINVAL and map_type in (MapType.TASK_STORAGE, MapType.INODE_STORAGE,
                                        MapType.SK_STORAGE, MapType.CGRP_STORAGE):
        return (" (storage maps need BPF_F_NO_PREALLOC, max_entries 0, an int key and BTF "
                "key/value types)")
    if err == E.EINVAL and map_type in (MapType.ARRAY_OF_MAPS, MapType.HASH_OF_MAPS):
        return " (maps of maps need inner_map and a 4-byte value)"
    return ""
