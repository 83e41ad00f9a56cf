"""Turning an ObjectSpec into kernel objects, in libbpf's order: BTF, maps, relocations
(CO-RE, externs, maps and global data, bpf-to-bpf calls), programs.

Only ``corebpf.sys`` talks to the kernel; this module decides what to ask for.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence

from . import sys as ksys
from ._text import plural
from .btf import Spec
from .btf import types as bt
from .btf.files import KERNEL_BTF
from .btf.files import load as load_btf
from .btf.sanitize import BTFFeatures
from .btf.sanitize import sanitize as sanitize_btf
from .btf.writer import Builder
from .core import RelocationReport, Relocator, Target, as_target
from .errors import LoadError, ObjectError, RelocationError
from .features import btf_features
from .kconfig import kernel_version, read_kconfig
from .obj.object import (
    KCONFIG_SEC,
    MAP_F_MMAPABLE,
    MAP_TYPE_ARRAY_OF_MAPS,
    MAP_TYPE_HASH_OF_MAPS,
    MAP_TYPE_PROG_ARRAY,
    ExternSpec,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    RelocType,
    kconfig_layout,
)
from .obj.sections import AttachType, map_type_name
from .sys.fs import possible_cpu_count

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from .archive.service import ServiceClient
    from .globals import Variable
    from .maps import Map

INSN = struct.Struct("<BBhi")
BPF_PSEUDO_MAP_FD = 1
BPF_PSEUDO_MAP_VALUE = 2
BPF_PSEUDO_BTF_ID = 3
BPF_PSEUDO_FUNC = 4
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_KFUNC_CALL = 2
BPF_F_SLEEPABLE = 1 << 4
BPF_F_XDP_HAS_FRAGS = 1 << 5
MAP_UPDATE_ANY = 0
PIN_BY_NAME = 1
VAR_EXTERN = 2  # BTF_VAR_GLOBAL_EXTERN
FUNC_GLOBAL = 1  # BTF_FUNC_GLOBAL
STT_FUNC = 2
DEFAULT_PIN_ROOT = "/sys/fs/bpf"

# Map types the kernel refuses BTF key/value types for (libbpf clears them too).
# perf_event_array, stack_trace, cgroup_array, array/hash of maps, devmap(_hash), sockmap,
# cpumap, xskmap, sockhash, queue, stack, ringbuf, user_ringbuf
_NO_BTF_MAP_TYPES = {4, 7, 8, 12, 13, 14, 15, 16, 17, 18, 22, 23, 25, 27, 31}
MAP_TYPE_PERF_EVENT_ARRAY = 4
MAP_TYPE_RINGBUF = 27
MAP_TYPE_USER_RINGBUF = 31


def kernel_key_value_sizes(m: MapSpec) -> tuple[int, int]:
    """The key and value sizes the kernel takes for ``m``. ``__type(value, struct event)``
    on a ring buffer or perf event array only names the event type for readers (as
    cilium/ebpf accepts it): the kernel wants 0/0 for ring buffers and 4/4 (a CPU index,
    a perf event fd) for perf event arrays."""
    if m.type in (MAP_TYPE_RINGBUF, MAP_TYPE_USER_RINGBUF):
        return 0, 0
    if m.type == MAP_TYPE_PERF_EVENT_ARRAY:
        return 4, 4
    return m.key_size, m.value_size


class LoadedMap:
    """A map created for an object: its fd, its spec, and for global data an mmap."""

    def __init__(self, spec: MapSpec, fd: ksys.FD, btf: Spec | None):
        self.spec = spec
        self.fd = fd
        self.btf = btf
        self.mmap: mmap.mmap | None = None
        self.pinned: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def as_map(self) -> Map:
        """This map as a :class:`corebpf.maps.Map` (its own fd): lookups, updates,
        iteration and batches with keys and values decoded through the object's BTF."""
        from .maps import Map

        s = self.spec
        if s.is_data:  # its DATASEC as the kernel got it: sized and laid out by the loader
            return Map.from_fd(self.fd.fd)
        if self.btf is not None and (s.key_type_id or s.value_type_id):
            return Map.from_fd(self.fd.fd, btf=self.btf, key_type_id=s.key_type_id,
                               value_type_id=s.value_type_id, load_btf=False)
        return Map.from_fd(self.fd.fd, load_btf=False)

    def read_data(self) -> bytes:
        """A global data map's value (its section's bytes) as the kernel holds it now."""
        size = self.spec.value_size
        if self.mmap is not None:
            return bytes(self.mmap[:size])
        key = ctypes.c_uint32(0)
        val = ctypes.create_string_buffer(max(size, 1))
        ksys.map_elem(ksys.BPFCommand.MAP_LOOKUP_ELEM, self.fd.fd, key, val)
        return val.raw[:size]

    def close(self) -> None:
        if self.mmap is not None:
            try:
                self.mmap.close()
            except BufferError:
                pass  # a view is still exported; the mapping goes with the process
            self.mmap = None
        self.fd.close()

    def __repr__(self) -> str:
        return f"LoadedMap({self.name!r}, fd={self.fd.fd})"


class Program:
    """A loaded program: fd, spec, and what it was relocated into."""

    def __init__(self, spec: ProgramSpec, fd: ksys.FD, insns: bytes, log: str,
                 attach_btf_id: int = 0):
        self.spec = spec
        self.fd = fd
        self.insns = insns
        self.verifier_log = log
        self.attach_btf_id = attach_btf_id

    @property
    def name(self) -> str:
        return self.spec.name

    def test_run(self, data: bytes = b"", repeat: int = 1, ctx: bytes = b"") -> tuple[int, bytes]:
        return ksys.prog_test_run(self.fd.fd, data, repeat, ctx)

    def close(self) -> None:
        self.fd.close()

    def __repr__(self) -> str:
        return f"Program({self.name!r}, fd={self.fd.fd})"


class Collection:
    """Everything loaded from one object; close() releases every fd."""

    def __init__(self, obj: ObjectSpec):
        self.obj = obj
        self.maps: dict[str, LoadedMap] = {}
        self.programs: dict[str, Program] = {}
        self.btf_fd: ksys.FD | None = None
        self.core_reports: list[RelocationReport] = []

    def close(self) -> None:
        for p in self.programs.values():
            p.close()
        for m in self.maps.values():
            m.close()
        if self.btf_fd is not None:
            self.btf_fd.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _fixup_btf(obj: ObjectSpec, kconfig_layout: dict[str, tuple[int, int]],
               features: BTFFeatures | None = None) -> bytes:
    """libbpf's btf_fixup_datasec: DATASEC sizes and variable offsets from the ELF, the
    .kconfig section laid out by the loader, variables sorted by offset; then kinds the
    kernel lacks (``features``) rewritten as libbpf's bpf_object__sanitize_btf does."""
    assert obj.btf is not None
    b = Builder.from_spec(obj.btf)
    # global functions of hidden or internal visibility (usdt.bpf.h's __weak __hidden
    # bpf_usdt_arg & co.) go to the kernel as static, as libbpf's mark_btf_static does,
    # so the verifier checks them in their caller's context
    hidden = {s.name for s in obj.elf.symbols
              if s.type == STT_FUNC and s.bind != 0 and s.visibility in (1, 2)}
    if hidden:
        for i, t in enumerate(b.types):
            if isinstance(t, bt.Func) and t.name in hidden and t.linkage == FUNC_GLOBAL:
                b.types[i] = bt.Func(t.name, t.type, 0)
    sizes = {s.name: s.size for s in obj.elf.sections}
    syms = {s.name: s.value for s in obj.elf.symbols if s.name and s.shndx not in (0, 0xFFF1)}
    for i, t in enumerate(b.types):
        if not isinstance(t, bt.Datasec):
            continue
        vars_ = [bt.VarSecinfo(v.type, v.offset, v.size) for v in t.vars]
        size = t.size
        if t.name == KCONFIG_SEC:
            for v in vars_:
                var = b[v.type]
                if var.name in kconfig_layout:
                    v.offset, v.size = kconfig_layout[var.name]
                if isinstance(var, bt.Var) and var.linkage == VAR_EXTERN:
                    # the loader allocates them (libbpf: BTF_VAR_GLOBAL_ALLOCATED); the
                    # kernel refuses extern VARs
                    b.types[v.type - b.first_id] = bt.Var(var.name, var.type, 1)
            size = max((v.offset + v.size for v in vars_), default=0)
        elif t.name != ".ksyms":
            if size == 0:
                size = sizes.get(t.name, 0)
                for v in vars_:
                    var = b[v.type]
                    if isinstance(var, bt.Var) and var.linkage not in (0, 2):
                        v.offset = syms.get(var.name, v.offset)
        vars_.sort(key=lambda v: v.offset)
        b.types[i] = bt.Datasec(t.name, size, vars_)
    if features is not None and not features.complete:
        b.types = sanitize_btf(b.types, features, first_id=b.first_id)
    return b.encode()


def _kconfig_value(btf: Spec, ext: ExternSpec, config: Mapping[str, str]) -> bytes | None:
    """The bytes of one .kconfig extern, or None when unknown (left zero)."""
    size = btf.size_of(ext.target_type_id)
    t = btf.type(btf.resolve(ext.target_type_id))
    if ext.name == "LINUX_KERNEL_VERSION":
        return kernel_version().to_bytes(size, "little")
    if ext.name in ("LINUX_HAS_BPF_COOKIE", "LINUX_HAS_SYSCALL_WRAPPER"):
        return (1).to_bytes(size, "little")
    raw = config.get(ext.name)
    if raw is None:
        return None
    if isinstance(t, bt.Enum | bt.Enum64) and t.name == "libbpf_tristate":
        val = {"y": 1, "m": 2, "n": 0}.get(raw, 0)
        return val.to_bytes(size, "little")
    if isinstance(t, bt.Int) and t.encoding & bt.IntEncoding.BOOL:
        return (1 if raw in ("y", "m") else 0).to_bytes(size, "little")
    if isinstance(t, bt.Array):
        s = raw.strip('"').encode()[: size - 1]
        return s.ljust(size, b"\0")
    if raw in ("y", "m", "n"):
        return (1 if raw != "n" else 0).to_bytes(size, "little")
    try:
        val = int(raw, 0)
    except ValueError:
        return None
    signed = isinstance(t, bt.Int) and bool(t.encoding & 1)
    # libbpf's range check: the value as a u64 must fit the variable's size (8 bytes
    # take any u64; -1 fits a signed int, not an unsigned one)
    bits = 8 * size
    v = val & (1 << 64) - 1
    if bits < 64:
        fits = (v + (1 << bits - 1)) & (1 << 64) - 1 < 1 << bits if signed else v >> bits == 0
        if not fits:
            raise LoadError(f"extern (kcfg) {ext.name!r}: value {raw} does not fit in "
                            f"{plural(size, 'byte')}")
    return (v & (1 << bits) - 1).to_bytes(size, "little")


def _kallsyms() -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        with open("/proc/kallsyms") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    out.setdefault(parts[2], int(parts[0], 16))
    except OSError:
        pass
    return out


def _attach_btf_id(vmlinux: Spec, prog: ProgramSpec) -> int:
    """The kernel BTF id a tracing/LSM/iterator program attaches to (libbpf's rules)."""
    d = prog.section_def
    if d is None or not d.btf_target:
        return 0
    target = prog.attach_target
    if not target:
        raise LoadError(f"program {prog.name!r}: section {prog.section!r} names no target")
    if d.attach_type == AttachType.TRACE_RAW_TP:
        name, kind = f"btf_trace_{target}", bt.Kind.TYPEDEF
    elif d.attach_type in (AttachType.LSM_MAC, AttachType.LSM_CGROUP):
        name, kind = f"bpf_lsm_{target}", bt.Kind.FUNC
    elif d.attach_type == AttachType.TRACE_ITER:
        name, kind = f"bpf_iter_{target}", bt.Kind.FUNC
    else:
        name, kind = target, bt.Kind.FUNC
    ids = vmlinux.find_by_name(name, kind)
    if not ids:
        raise LoadError(f"program {prog.name!r}: kernel has no {kind.name} {name!r} to attach to")
    return ids[0]


class Loader:
    """One load of one object (use :func:`load`)."""

    def __init__(self, obj: ObjectSpec, *, core_btf: Spec | Target | None = None,
                 vmlinux: Spec | None = None, rodata: Mapping[str, Any] | None = None,
                 kconfig: Mapping[str, str] | None = None, pin_root: str = DEFAULT_PIN_ROOT,
                 programs: Iterable[str] | None = None, log_level: int = 0,
                 btf_features: BTFFeatures | None = None, log_lines: int | None = 20):
        self.obj = obj
        self.log_lines = log_lines
        #: rewrite the object's BTF for these features up front instead of probing
        #: after a refusal (to prepare BTF for an older kernel, or to test the rewrite)
        self.forced_features = btf_features
        if vmlinux is None and isinstance(core_btf, Spec) and core_btf.base is None \
                and core_btf.source == KERNEL_BTF:
            vmlinux = core_btf  # the kernel's own, opened by the caller: not read twice
        self._vmlinux = vmlinux
        self.core_btf = core_btf
        self.rodata = dict(rodata or {})
        self.kconfig = kconfig
        self.pin_root = pin_root
        self.only = set(programs) if programs is not None else None
        self.log_level = log_level
        self.coll = Collection(obj)

    @property
    def vmlinux(self) -> Spec:
        if self._vmlinux is None:
            self._vmlinux = load_btf(KERNEL_BTF)
        return self._vmlinux

    def run(self) -> Collection:
        obj = self.obj
        self._check_privileges()
        if obj.endian != "<" and struct.pack("=I", 1) == struct.pack("<I", 1):
            raise LoadError(f"{obj.source}: big-endian object cannot run on this kernel")
        self._encode_rodata()
        try:
            self._load_btf()
            self._create_maps()
            patched = self._relocate_core()
            self._load_programs(patched)
            self._fill_prog_arrays()
        except BaseException:
            self.coll.close()
            raise
        return self.coll

    def _check_privileges(self) -> None:
        """Missing privileges said first (a PrivilegeError), before the kernel's EPERM
        could be read as anything else, e.g. BTF features it lacks."""
        from .sys.caps import UNPRIVILEGED_PROG_TYPES, require

        types = {int(p.prog_type) for p in self.obj.entry_programs()
                 if p.autoload and (self.only is None or p.name in self.only)}
        require(f"loading {self.obj.source}", frozenset(types),
                unprivileged_ok=self.obj.btf is None and types <= UNPRIVILEGED_PROG_TYPES)

    def _encode_rodata(self) -> None:
        """Every ``rodata`` value checked against its variable's type before the kernel
        is asked for anything (an unknown name or a value that does not fit is a
        :class:`corebpf.globals.VariableError`)."""
        self._rodata_vars: dict[str, list[Variable]] = {}
        self._rodata_bytes: dict[str, bytes] = {}
        if not self.rodata:
            return
        from .globals import encode_variable, find_variable

        for name, value in self.rodata.items():
            var = find_variable(self.obj, name, read_only=True)
            self._rodata_bytes[name] = encode_variable(self.obj, name, value, read_only=True)
            self._rodata_vars.setdefault(var.section, []).append(var)

    # -- BTF -------------------------------------------------------------------------

    def _load_btf(self) -> None:
        self.kcfg_layout, self.kcfg_size = kconfig_layout(self.obj)
        self.btf_features = BTFFeatures()
        if self.obj.btf is None:
            self.btf_raw = b""
            return
        # As clang wrote it first: a kernel that takes it needs no probing; one that
        # refuses it gets it rewritten for the BTF kinds it was found to accept.
        if self.forced_features is not None:
            self.btf_features = self.forced_features
        self.btf_raw = _fixup_btf(self.obj, self.kcfg_layout, self.forced_features)
        try:
            self.coll.btf_fd = ksys.btf_load(self.btf_raw)
        except LoadError as e:
            if e.errno in (1, 13):  # EPERM, EACCES: privileges, never a missing feature
                raise LoadError(f"{self.obj.source}: the kernel refused the object's BTF: "
                                f"{e} (loading BTF needs root or CAP_BPF)", errno=e.errno,
                                log=e.log) from None
            if self.forced_features is not None:
                raise LoadError(f"{self.obj.source}: the kernel refused the object's BTF "
                                f"rewritten for {self.forced_features}: {e}",
                                errno=e.errno, log=e.log) from None
            self.btf_features = btf_features()
            if self.btf_features.complete:
                raise LoadError(f"{self.obj.source}: the kernel refused the object's BTF: "
                                f"{e}", errno=e.errno, log=e.log) from None
            self.btf_raw = _fixup_btf(self.obj, self.kcfg_layout, self.btf_features)
            try:
                self.coll.btf_fd = ksys.btf_load(self.btf_raw)
            except LoadError as e2:
                raise LoadError(f"{self.obj.source}: the kernel refused the object's BTF, "
                                f"also rewritten for its features ({self.btf_features}): "
                                f"{e2}", errno=e2.errno, log=e2.log) from None
        self.kbtf = Spec(self.btf_raw, source=f"{self.obj.source}:.BTF (fixed up)")

    # -- maps ------------------------------------------------------------------------

    def _map_btf_ids(self, m: MapSpec) -> tuple[int, int, int]:
        if self.coll.btf_fd is None or m.type in _NO_BTF_MAP_TYPES:
            return 0, 0, 0
        if m.is_data:
            ids = self.kbtf.find_by_name(m.section, bt.Kind.DATASEC)
            return self.coll.btf_fd.fd, 0, ids[0] if ids else 0
        return self.coll.btf_fd.fd, m.key_type_id, m.value_type_id

    def _create_one(self, m: MapSpec, inner_fd: int = 0) -> ksys.FD:
        max_entries = m.max_entries
        if m.type == MAP_TYPE_PERF_EVENT_ARRAY and max_entries == 0:
            max_entries = possible_cpu_count()
        if m.type == MAP_TYPE_RINGBUF:
            page = mmap.PAGESIZE
            max_entries = max(page, (max_entries + page - 1) // page * page)
        btf_fd, key_id, value_id = self._map_btf_ids(m)
        key_size, value_size = kernel_key_value_sizes(m)
        try:
            try:
                return ksys.map_create(m.type, key_size, value_size, max_entries,
                                       flags=m.flags, inner_map_fd=inner_fd,
                                       numa_node=m.numa_node, name=m.name, btf_fd=btf_fd,
                                       btf_key_type_id=key_id, btf_value_type_id=value_id,
                                       map_extra=m.map_extra)
            except OSError:
                if not (key_id or value_id):
                    raise
                # as libbpf: the kernel may not take BTF types for this map; retry without
                return ksys.map_create(m.type, key_size, value_size, max_entries,
                                       flags=m.flags, inner_map_fd=inner_fd,
                                       numa_node=m.numa_node, name=m.name,
                                       map_extra=m.map_extra)
        except OSError as e:
            raise LoadError(f"{self.obj.source}: map {m.name!r} ({map_type_name(m.type)}, key "
                            f"{key_size}, value {value_size}, max {max_entries}): "
                            f"{e.strerror}", errno=e.errno or 0) from None

    def _create_maps(self) -> None:
        obj = self.obj
        specs = [m for m in obj.maps.values() if not m.name.endswith(".inner")]
        if self.kcfg_layout:
            kc = MapSpec(name=self._kconfig_map_name(), type=2, key_size=4,
                         value_size=max(self.kcfg_size, 1), max_entries=1,
                         flags=(1 << 7) | MAP_F_MMAPABLE, section=KCONFIG_SEC, is_data=True,
                         read_only=True)  # contents made once the kernel took its size
            specs.append(kc)
        for m in specs:
            pin_path = None
            if m.pinning == PIN_BY_NAME:
                from .sys.fs import ensure_bpffs

                pin_path = os.path.join(ensure_bpffs(self.pin_root), m.name)
                if os.path.exists(pin_path):
                    with self._map_step(m.name, f"reuse the map pinned at {pin_path}"):
                        fd = ksys.obj_get(pin_path)
                    lm = LoadedMap(m, fd, obj.btf)
                    lm.pinned = pin_path
                    self.coll.maps[m.name] = lm
                    continue
            inner_fd: ksys.FD | None = None
            if m.inner is not None:
                inner_fd = self._create_one(m.inner)
            try:
                fd = self._create_one(m, inner_fd.fd if inner_fd else 0)
            finally:
                if inner_fd is not None:
                    inner_fd.close()
            lm = LoadedMap(m, fd, obj.btf)
            self.coll.maps[m.name] = lm
            if m.is_data:
                with self._map_step(m.name, "set its initial contents"):
                    self._init_data_map(lm)
            if pin_path is not None:
                with self._map_step(m.name, f"pin it at {pin_path}"):
                    ksys.obj_pin(fd.fd, pin_path)
                lm.pinned = pin_path
        for m in specs:
            if m.type in (MAP_TYPE_ARRAY_OF_MAPS, MAP_TYPE_HASH_OF_MAPS):
                for slot, name in m.initial_values.items():
                    inner = self.coll.maps.get(name)
                    if inner is None:
                        raise LoadError(f"map {m.name!r}: slot {slot} names unknown map {name!r}")
                    key = ctypes.c_uint32(slot)
                    val = ctypes.c_uint32(inner.fd.fd)
                    with self._map_step(m.name, f"initialize slot [{slot}] to map {name!r}"):
                        ksys.map_elem(ksys.BPFCommand.MAP_UPDATE_ELEM,
                                      self.coll.maps[m.name].fd.fd, key, val, MAP_UPDATE_ANY)

    @contextlib.contextmanager
    def _map_step(self, name: str, what: str) -> Iterator[None]:
        """The kernel's refusal of a step after a map's creation as a LoadError naming
        the map and the step, as libbpf's messages do."""
        try:
            yield
        except OSError as e:
            raise LoadError(f"{self.obj.source}: map {name!r}: failed to {what}: "
                            f"{e.strerror}", errno=e.errno or 0) from None

    def _kconfig_map_name(self) -> str:
        pfx_len = min(16 - 8 - 1, len(self.obj.name))
        return (self.obj.name[:pfx_len] + KCONFIG_SEC)[:15]

    def _kconfig_contents(self) -> bytes:
        assert self.obj.btf is not None
        data = bytearray(max(self.kcfg_size, 1))
        config = self.kconfig if self.kconfig is not None else read_kconfig()
        for ext in self.obj.externs.values():
            if ext.kind != "kconfig":
                continue
            off, size = self.kcfg_layout[ext.name]
            val = _kconfig_value(self.obj.btf, ext, config)
            if val is None:
                if not ext.is_weak and not ext.name.startswith("CONFIG_"):
                    raise LoadError(f"extern (kcfg) {ext.name!r}: unrecognized virtual extern")
                if not ext.is_weak:
                    raise LoadError(f"extern {ext.name!r} (strong): not resolved")
                continue
            data[off:off + size] = val[:size]
        return bytes(data)

    def _init_data_map(self, lm: LoadedMap) -> None:
        m = lm.spec
        contents = bytearray(self._kconfig_contents() if m.section == KCONFIG_SEC
                             else m.contents)
        rodata = self._rodata_vars.get(m.section, ())
        if rodata:  # padded only now: the kernel has accepted a map of value_size
            contents = contents.ljust(m.value_size, b"\0")
        for var in rodata:
            contents[var.offset:var.offset + var.size] = self._rodata_bytes[var.name]
        if any(contents):
            key = ctypes.c_uint32(0)
            val = ctypes.create_string_buffer(bytes(contents[:m.value_size]), max(m.value_size, 1))
            ksys.map_elem(ksys.BPFCommand.MAP_UPDATE_ELEM, lm.fd.fd, key, val, MAP_UPDATE_ANY)
        if m.read_only:
            ksys.map_freeze(lm.fd.fd)
        if m.flags & MAP_F_MMAPABLE and m.value_size:
            prot = mmap.PROT_READ if m.read_only else mmap.PROT_READ | mmap.PROT_WRITE
            size = (m.value_size + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
            lm.mmap = mmap.mmap(lm.fd.fd, size, mmap.MAP_SHARED, prot)

    # -- relocations -----------------------------------------------------------------

    def _relocate_core(self) -> dict[str, bytes]:
        obj = self.obj
        if obj.btf_ext is None or not any(p.core_relos for p in obj.programs.values()):
            return {}
        target = self.core_btf if self.core_btf is not None else self.vmlinux
        reports, patched = Relocator(obj, as_target(target)).run()
        self.coll.core_reports = reports
        failed = [r for r in reports if r.error]
        if failed:
            raise RelocationError(f"{obj.source}: CO-RE relocation failed: {failed[0].error}")
        return patched

    def _resolve_data_relocs(self, prog: ProgramSpec, insns: bytearray) -> None:
        maps = self.coll.maps
        kallsyms: dict[str, int] | None = None
        for r in prog.relocations:
            off = r.insn * 8
            code, regs, o, imm = INSN.unpack_from(insns, off)
            if r.type == RelocType.LD64:
                m = maps[r.target]
                INSN.pack_into(insns, off, code, (regs & 0x0F) | (BPF_PSEUDO_MAP_FD << 4), o,
                               m.fd.fd)
            elif r.type == RelocType.DATA:
                m = maps[r.target]
                c2, r2, o2, _ = INSN.unpack_from(insns, off + 8)
                value_off = imm + r.sym_off
                if not 0 <= value_off < 1 << 31:  # the kernel takes an offset into the value
                    raise ObjectError(f"{self.obj.source}: program {prog.name!r} instruction "
                                      f"{r.insn}: offset {value_off} into map {r.target!r} "
                                      "is out of range")
                INSN.pack_into(insns, off, code, (regs & 0x0F) | (BPF_PSEUDO_MAP_VALUE << 4), o,
                               m.fd.fd)
                INSN.pack_into(insns, off + 8, c2, r2, o2, value_off)
            elif r.type in (RelocType.EXTERN_LD64, RelocType.EXTERN_CALL):
                ext = self.obj.externs[r.target]
                if ext.kind == "kconfig":
                    m = maps[self._kconfig_map_name()]
                    c2, r2, o2, _ = INSN.unpack_from(insns, off + 8)
                    INSN.pack_into(insns, off, code,
                                   (regs & 0x0F) | (BPF_PSEUDO_MAP_VALUE << 4), o, m.fd.fd)
                    INSN.pack_into(insns, off + 8, c2, r2, o2, self.kcfg_layout[ext.name][0])
                elif ext.is_func:
                    ids = self.vmlinux.find_by_name(ext.name, bt.Kind.FUNC)
                    if not ids:
                        if not ext.is_weak:
                            raise LoadError(f"extern (func ksym) {ext.name!r}: not found in "
                                            "kernel BTF")
                        INSN.pack_into(insns, off, 0x85, 0, 0, 0xBAD2310)
                        continue
                    INSN.pack_into(insns, off, code,
                                   (regs & 0x0F) | (BPF_PSEUDO_KFUNC_CALL << 4), 0, ids[0])
                elif ext.target_type_id:  # typed ksym: its VAR in kernel BTF
                    ids = self.vmlinux.find_by_name(ext.name, bt.Kind.VAR)
                    c2, r2, o2, _ = INSN.unpack_from(insns, off + 8)
                    if not ids:
                        if not ext.is_weak:
                            raise LoadError(f"extern (var ksym) {ext.name!r}: not found in "
                                            "kernel BTF")
                        INSN.pack_into(insns, off, code, regs & 0x0F, o, 0)
                        INSN.pack_into(insns, off + 8, c2, r2, o2, 0)
                        continue
                    INSN.pack_into(insns, off, code, (regs & 0x0F) | (BPF_PSEUDO_BTF_ID << 4),
                                   o, ids[0])
                    INSN.pack_into(insns, off + 8, c2, r2, o2, 0)
                else:  # typeless ksym: its address from kallsyms
                    if kallsyms is None:
                        kallsyms = _kallsyms()
                    addr = kallsyms.get(ext.name)
                    if addr is None and not ext.is_weak:
                        raise LoadError(f"extern (ksym) {ext.name!r}: not in /proc/kallsyms")
                    addr = addr or 0
                    c2, r2, o2, _ = INSN.unpack_from(insns, off + 8)
                    INSN.pack_into(insns, off, code, regs & 0x0F, o, _s32(addr & 0xFFFFFFFF))
                    INSN.pack_into(insns, off + 8, c2, r2, o2, _s32(addr >> 32))

    def _link(self, main: ProgramSpec, code: dict[str, bytearray]) -> tuple[
            bytearray, list[tuple[ProgramSpec, int]]]:
        """Append called subprograms to ``main`` (libbpf's bpf_object__reloc_code) and point
        every call/callback at its copy. Returns the instructions and (program, start)."""
        obj = self.obj
        text = [p for p in obj.programs.values() if p.is_subprog]
        buf = bytearray(code[main.name])
        segments: list[tuple[ProgramSpec, int]] = [(main, 0)]
        placed: dict[str, int] = {main.name: 0}
        for i in _calls_and_loads(buf):  # in order, also in code appended meanwhile
            seg_prog, seg_start = next((p, s) for p, s in reversed(segments) if s <= i)
            local = i - seg_start
            c, regs, o, imm = INSN.unpack_from(buf, i * 8)
            src = regs >> 4
            is_call = c == 0x85 and src == BPF_PSEUDO_CALL
            is_func_addr = c == 0x18 and src == BPF_PSEUDO_FUNC
            if not (is_call or is_func_addr):
                continue
            rel = next((r for r in seg_prog.relocations if r.insn == local
                        and r.type in (RelocType.CALL, RelocType.SUBPROG_ADDR)), None)
            if rel is not None:
                target_off = (rel.sym_off + (imm + 1) * 8 if is_call else rel.sym_off + imm)
                section = ".text"
            else:
                target_off = seg_prog.offset + (local + imm + 1) * 8
                section = seg_prog.elf_section
            sub = next((p for p in obj.programs.values() if p.elf_section == section
                        and p.offset <= target_off < p.offset + len(p.insns)), None)
            if sub is None or (sub is not main and not sub.is_subprog and section != ".text"
                               and sub not in text):
                raise RelocationError(f"program {main.name!r}: call at insn {i} targets "
                                      f"offset {target_off:#x} of {section!r}, which is no "
                                      "subprogram")
            if sub.name not in placed:
                placed[sub.name] = len(buf) // 8
                segments.append((sub, placed[sub.name]))
                buf += code[sub.name]
            dest = placed[sub.name] + (target_off - sub.offset) // 8
            INSN.pack_into(buf, i * 8, c, regs, o, dest - i - 1)
        return buf, segments

    # -- programs --------------------------------------------------------------------

    def _load_programs(self, patched: dict[str, bytes]) -> None:
        obj = self.obj
        code: dict[str, bytearray] = {}
        for p in obj.programs.values():
            buf = bytearray(patched.get(p.name, p.insns))
            self._resolve_data_relocs(p, buf)
            code[p.name] = buf
        for p in obj.entry_programs():
            if not p.autoload or (self.only is not None and p.name not in self.only):
                continue
            if p.section_def is None:
                raise LoadError(f"{obj.source}: program {p.name!r}: unknown section "
                                f"{p.section!r}")
            insns, segments = self._link(p, code)
            func_info, line_info = self._ext_info(segments)
            if not self.btf_features.func:  # no FUNC kind: libbpf sends neither
                func_info, line_info = b"", b""
            d = p.section_def
            # only tracing/LSM/iterator programs need the kernel's own BTF (an attach id);
            # on a kernel without BTF the others load against a bundle's BTF alone
            attach_id = _attach_btf_id(self.vmlinux, p) if d.btf_target else 0
            flags = 0
            if p.section_def.sleepable:
                flags |= BPF_F_SLEEPABLE
            if p.section_def.xdp_frags:
                flags |= BPF_F_XDP_HAS_FRAGS
            try:
                res = ksys.prog_load(
                    int(p.prog_type), bytes(insns), obj.license or "", name=p.name,
                    expected_attach_type=int(p.attach_type or 0),
                    kern_version=obj.kern_version or kernel_version(), prog_flags=flags,
                    prog_btf_fd=self.coll.btf_fd.fd if self.coll.btf_fd is not None else 0,
                    func_info=func_info, func_info_rec_size=8 if func_info else 0,
                    line_info=line_info, line_info_rec_size=16 if line_info else 0,
                    attach_btf_id=attach_id, log_level=self.log_level)
            except LoadError as e:
                raise type(e)(f"{obj.source}: {e}{self._explain_poison(e.log, p, insns)}"
                              f"{verifier_log_excerpt(e.log, self.log_lines)}",
                              errno=e.errno, log=e.log) from None
            self.coll.programs[p.name] = Program(p, res.fd, bytes(insns), res.log, attach_id)

    def _ext_info(self, segments: list[tuple[ProgramSpec, int]]) -> tuple[bytes, bytes]:
        if self.coll.btf_fd is None:
            return b"", b""
        fi = bytearray()
        li = bytearray()
        for prog, start in segments:
            for f in prog.func_info:
                fi += struct.pack("<II", start + f.insn_off // 8, f.type_id)
            for ln in prog.line_info:
                li += struct.pack("<IIII", start + ln.insn_off // 8, ln.file_name_off,
                                  ln.line_off, ln.line_col)
        return bytes(fi), bytes(li)

    def _explain_poison(self, log: str, prog: ProgramSpec, insns: bytes | bytearray) -> str:
        """A poisoned CO-RE instruction in words: which field of which type is missing."""
        if "195896080" not in log and "0xbad2310" not in log:
            return ""
        missing = [r for r in self.coll.core_reports if r.poisoned]
        if not missing:
            return ""
        where = "the target BTF" if self.core_btf is not None else "the running kernel"
        lines = []
        for r in missing:
            head = r.local_spec.split("] ", 1)[-1].split(" (")[0] if r.local_spec else "?"
            typ, _, field = head.partition(".")
            what = f"{typ} has no field {field}" if field else f"{typ} does not exist"
            lines.append(f"CO-RE: {what} on {where} (program {r.program!r}, relocation "
                         f"#{r.index}, instruction {r.insn} poisoned)")
        return "\n" + "\n".join(lines)

    def _fill_prog_arrays(self) -> None:
        for m in self.obj.maps.values():
            if m.type != MAP_TYPE_PROG_ARRAY or not m.initial_values:
                continue
            lm = self.coll.maps[m.name]
            for slot, name in m.initial_values.items():
                prog = self.coll.programs.get(name)
                if prog is None:
                    continue
                key = ctypes.c_uint32(slot)
                val = ctypes.c_uint32(prog.fd.fd)
                with self._map_step(m.name, f"initialize slot [{slot}] to program {name!r}"):
                    ksys.map_elem(ksys.BPFCommand.MAP_UPDATE_ELEM, lm.fd.fd, key, val,
                                  MAP_UPDATE_ANY)


def verifier_log_excerpt(log: str, lines: int | None = 20) -> str:
    """The end of a verifier log for an error message (its last ``lines`` lines, where
    the refused instruction and the verifier's reason are; all of it for None), each
    line indented, after a newline; "" without a log."""
    all_lines = log.rstrip("\n").splitlines()
    if not all_lines or lines == 0:
        return ""
    shown = all_lines if lines is None else all_lines[-lines:]
    head = "verifier log:" if len(shown) == len(all_lines) else \
        f"verifier log (last {len(shown)} of {len(all_lines)} lines):"
    return "\n" + head + "".join(f"\n  {line}" for line in shown)


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


#: one BTF (a Spec or a path in any container)
BTFArg = Spec | str | os.PathLike[str]
#: what ``load(btf=...)`` takes: one BTF or Target, or several searched in order
CoreBTF = BTFArg | Target | Sequence[BTFArg | Target]


def _calls_and_loads(buf: bytearray) -> Iterator[int]:
    """Indexes of the calls (0x85) and 64-bit loads (0x18) in ``buf``, in order, found by
    searching the opcode bytes (the second half of a 64-bit load has opcode 0, so every
    hit starts an instruction) instead of decoding every instruction; code appended to
    ``buf`` while iterating is searched too."""
    start = 0
    while start < len(buf) // 8:
        end = len(buf) // 8
        ops = bytes(buf[start * 8:end * 8:8])
        hits = []
        for op in (b"\x85", b"\x18"):
            k = ops.find(op)
            while k >= 0:
                hits.append(start + k)
                k = ops.find(op, k + 1)
        yield from sorted(hits)
        start = end


def core_targets(btf: CoreBTF | None) -> Spec | Target | None:
    """``load``'s ``btf`` argument opened: one Spec, or a Target searching several in
    order (paths opened with :func:`corebpf.btf.load`)."""
    if btf is None or isinstance(btf, Spec | Target):
        return btf
    if isinstance(btf, str | os.PathLike):
        return load_btf(btf)
    items = list(btf)
    if len(items) == 1:
        return core_targets(items[0])
    opened: list[Spec | Target] = []
    for item in items:
        one = core_targets(item)
        assert one is not None
        opened.append(one)
    return Target.ordered(opened)


def load(obj: ObjectSpec | str | os.PathLike[str], *,
         btf: CoreBTF | None = None,
         rodata: Mapping[str, Any] | None = None, kconfig: Mapping[str, str] | None = None,
         pin_root: str = DEFAULT_PIN_ROOT, programs: Iterable[str] | None = None,
         log_level: int = 0, bundle: str | os.PathLike[str] | None = None,
         btf_features: BTFFeatures | None = None,
         verifier_log_lines: int | None = 20,
         service: str | ServiceClient | None = None) -> Collection:
    """Load an object into the kernel.

    ``btf`` is the BTF CO-RE relocates against (a Spec or a path in any container);
    by default the running kernel's. A list of them is searched in order: for each
    local type the first with a candidate decides (:class:`corebpf.core.Target`), so
    ``[user_btf, KERNEL_BTF]`` takes ``struct data`` from the user BTF and kernel types
    from the kernel's; the running kernel is searched only if listed. ``bundle`` (a
    corebpf BTF bundle) is for kernels without BTF of their own: the kernel's BTF is used
    when it has one, else this machine's entry of the bundle. ``service`` (a BTF service
    URL, ``corebpf serve``, or a :class:`corebpf.archive.service.ServiceClient`) comes
    last: on a kernel without BTF whose bundle (if any) has no entry for it, the
    service's BTF of this kernel minimized for this object, cached locally (opt-in: no
    request is made otherwise). ``rodata`` sets read-only
    globals (``const volatile``) before load, by name, each value checked against the
    variable's BTF type as :func:`corebpf.globals.encode_variable` does (a VariableError
    names the variable, its section and type, or lists the read-only globals for an
    unknown name).
    ``btf_features`` rewrites the object's BTF for a kernel with only those BTF kinds
    (by default it is rewritten only if this kernel refuses it, for what it accepts).
    A program the verifier refuses is a VerifierError whose message ends with the last
    ``verifier_log_lines`` lines of the verifier's log (None: all of it); ``.log`` holds
    all of it (a failed load is retried with ``log_level`` 1 to get one).
    """
    spec = obj if isinstance(obj, ObjectSpec) else ObjectSpec.load(obj)
    core_btf = core_targets(btf)
    if core_btf is None and (bundle is not None or service is not None):
        from .archive.bundle import select_core_btf

        choice = select_core_btf(bundle=bundle, service=service, objects=[spec])
        core_btf = None if choice.kind == "kernel" else choice.spec
    return Loader(spec, core_btf=core_btf, rodata=rodata, kconfig=kconfig, pin_root=pin_root,
                  programs=programs, log_level=log_level, btf_features=btf_features,
                  log_lines=verifier_log_lines).run()
