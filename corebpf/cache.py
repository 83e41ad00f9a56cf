"""corebpf's cache on disk: where it lives, how entries are written, how it stays bounded.

Every cache user goes through here. The root is ``$COREBPF_CACHE_DIR``, else
``$XDG_CACHE_HOME/corebpf``, else ``~/.cache/corebpf``; ``COREBPF_NO_CACHE=1`` turns the
cache off and ``COREBPF_CACHE_SIZE`` (bytes, ``256M``, ``1G``; ``0``: no cap) bounds it.
The entries, by kind:

- ``btf-index``: ``btf-index/<P>-<I>.idx``, a BTF file's type offset index, keyed by the
  file's identity (P hashes its real path; I its device, inode, size, mtime and, under
  ``/sys``, the boot). The entry starts with that identity, so that a walk can tell when
  the file changed or vanished.
- ``kernel-btf``: ``btf-index/<P>-<I>.btf``, a copy of the kernel's sysfs BTF beside its
  index (sysfs hands BTF out a page per read), one per boot.
- ``service``: ``service/<sha256>.btf``, an answer of a BTF service. The directory may
  also hold ``corebpf serve``'s own store (its default ``--cache``), which that server
  bounds itself: it is reported, never touched.

A hit reads one file and, at most once a minute, stamps its mtime (the LRU order): no
directory walk, no lock. Bounding is paid by writes, amortised: a new index replaces the
other identities of its file at once, and each write adds its size to a counter
(``.usage``, under flock); every :data:`WALK_EVERY` writes, or when the counter passes
the cap, one process walks the cache (:func:`prune`), drops stale entries and evicts the
least recently used until the total is under the cap. Concurrent processes only ever
rename whole files into place and tolerate files vanishing under them.
"""

from __future__ import annotations

import os

from .errors import Error

#: what the cache may hold unless COREBPF_CACHE_SIZE says otherwise
DEFAULT_MAX_SIZE = 256 << 20
#: writes between two walks of the cache (sooner when the counter passes the cap)
WALK_EVERY = 32
#: a hit stamps its entry's mtime (its place in LRU order) at most this often, seconds
TOUCH_AFTER = 60.0
#: an unfinished write older than this (seconds) is a crashed writer's: removed
TEMP_AGE = 3600.0
#: eviction goes down to this fraction of the cap, so that the next writes do not walk again
LOW_WATER = 0.9

_MAGIC = b"CBCK"  # an entry keyed by a file's identity: magic, u32 length, identity, payload
_USAGE = ".usage"
_LOCK = ".prune.lock"
_TAG = "CACHEDIR.TAG"
_OWN = frozenset((_USAGE, _LOCK, _TAG))
_TAG_TEXT = (b"Signature: 8a477f597d28d172789f06886806bc55\n"
             b"# corebpf's cache (BTF indexes, kernel BTF copies, BTF service answers).\n"
             b"# See `corebpf cache info`; everything here can be recreated.\n")

#: counters for tests and `cache info`: walks of the cache done by this process
stats = {"walks": 0, "writes": 0, "hits": 0}


class CacheError(Error):
    """A cache setting that cannot be used (``COREBPF_CACHE_SIZE`` that is not a size)."""


# Plain slotted classes, not records: this module is on the start-up path of every
# command that loads BTF, and each record costs a compile at import.


class Kind:
    """One kind of entry: where it lives and what it is."""

    __slots__ = ("description", "name", "subdir", "suffix")

    def __init__(self, name: str, subdir: str, suffix: str, description: str):
        self.name = name
        self.subdir = subdir
        self.suffix = suffix
        self.description = description

    def __repr__(self) -> str:
        return f"Kind({self.name!r})"


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("btf-index", "btf-index", ".idx", "BTF type offset indexes, one per file identity"),
    Kind("kernel-btf", "btf-index", ".btf", "copies of the kernel's sysfs BTF, one per boot"),
    Kind("service", "service", ".btf", "answers of a BTF service (archive fetch, "
         "--btf-service)"),
)}


# -- settings --------------------------------------------------------------------------


def enabled() -> bool:
    """False when ``COREBPF_NO_CACHE`` is set (to anything but ``0``)."""
    return os.environ.get("COREBPF_NO_CACHE", "") in ("", "0")


def root() -> str:
    """``$COREBPF_CACHE_DIR``, else ``$XDG_CACHE_HOME/corebpf``, else ``~/.cache/corebpf``
    (a relative XDG_CACHE_HOME is ignored, as the XDG spec says)."""
    own = os.environ.get("COREBPF_CACHE_DIR")
    if own:
        return os.path.abspath(own)
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "corebpf")


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, what: str = "size") -> int:
    """``1048576``, ``64K``, ``256M``, ``1G`` (powers of 1024; ``B``/``iB`` allowed)."""
    t = text.strip().lower()
    if len(t) >= 3 and t.endswith("ib") and t[-3] in "kmgt":
        t = t[:-2]
    elif t.endswith("b"):
        t = t[:-1]
    unit = t[-1] if t and t[-1] in "kmgt" else ""
    digits = t[:-1].rstrip() if unit else t
    if not (digits.isascii() and digits.isdigit()):
        raise CacheError(f"{what}={text!r} is not a size (expected bytes: 268435456, 256M, "
                         "1G; 0 for no cap)")
    return int(digits) * _UNITS[unit]


def max_size() -> int:
    """The cap in bytes (``COREBPF_CACHE_SIZE``, default 256 MiB; 0: none)."""
    text = os.environ.get("COREBPF_CACHE_SIZE", "").strip()
    return parse_size(text, "COREBPF_CACHE_SIZE") if text else DEFAULT_MAX_SIZE


def kind_dir(kind: str, base: str | None = None) -> str:
    return os.path.join(base or root(), KINDS[kind].subdir)


# -- entries keyed by a file's identity ------------------------------------------------


class SourceKey:
    """A file's identity: ``path`` (real), ``ident`` (what the entry starts with), ``stem``
    (``<P>-<I>``: P hashes the path, so that entries of one file share ``prefix``)."""

    __slots__ = ("ident", "path", "prefix", "stem")

    def __init__(self, path: str, ident: bytes, prefix: str, stem: str):
        self.path = path
        self.ident = ident
        self.prefix = prefix
        self.stem = stem


def _hash16(data: bytes) -> str:
    import zlib

    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def boot_id() -> bytes | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            return f.read().strip()
    except OSError:
        return None


def source_key(path: str | os.PathLike[str], st: os.stat_result, *,
               boot: bytes | None = None) -> SourceKey | None:
    """The identity of the file at ``path`` whose stat is ``st``: device, inode, size,
    mtime and, under /sys (whose files look the same after a reboot), the boot id
    (``boot``, default this boot's). None when the boot cannot be told."""
    real = os.path.realpath(path)
    if not real.startswith("/sys/"):
        boot = b""
    elif boot is None:
        boot = boot_id()
        if boot is None:
            return None
    fpath = os.fsencode(real)
    ident = b"\0".join((fpath, b"%d" % st.st_dev, b"%d" % st.st_ino, b"%d" % st.st_size,
                        b"%d" % st.st_mtime_ns, boot))
    prefix = _hash16(fpath)
    return SourceKey(real, ident, prefix, f"{prefix}-{_hash16(ident)}")


def _stale_ident(ident: bytes, boot: bytes | None) -> str | None:
    """Why an entry with this identity is stale (its file changed, vanished, or belongs
    to an earlier boot), or None."""
    fields = ident.split(b"\0")
    if len(fields) != 6 or not all(f.isdigit() for f in fields[1:5]):
        return "damaged"
    if fields[5] and fields[5] != boot:
        return "an earlier boot"
    try:
        st = os.stat(fields[0])
    except OSError:
        return "file gone"
    if (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) != tuple(int(f) for f in
                                                                  fields[1:5]):
        return "file changed"
    return None


def _read_ident(path: str) -> bytes | None:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) != 8 or head[:4] != _MAGIC:
                return None
            n = int.from_bytes(head[4:], "little")
            ident = f.read(n) if n <= 1 << 16 else b""
            return ident if len(ident) == n else None
    except OSError:
        return None


# -- reading and writing -----------------------------------------------------------------


def read_file(path: str, *, ident: bytes | None = None, size: int | None = None,
              limit: int | None = None) -> bytes | None:
    """The bytes of the cache file at ``path`` (after its identity, which must be
    ``ident``), or None: absent, another file's, damaged, not ``size`` bytes long or over
    ``limit``. Marks the entry used (its mtime, at most once a minute)."""
    try:
        with open(path, "rb") as f:
            if ident is not None:
                head = f.read(8)
                if len(head) != 8 or head[:4] != _MAGIC \
                        or int.from_bytes(head[4:], "little") != len(ident) \
                        or f.read(len(ident)) != ident:
                    return None
            bound = size if size is not None else limit
            data = f.read() if bound is None else f.read(bound + 1)
            if (size is not None and len(data) != size) or \
                    (limit is not None and len(data) > limit):
                return None
            _touch(f.fileno())
    except OSError:
        return None
    stats["hits"] += 1
    return data


def read_mapped(kind: str, name: str, *, ident: bytes | None = None,
                size: int | None = None) -> memoryview | None:
    """:func:`read` through ``mmap``: a read-only view of the entry's payload (after its
    identity, which must be ``ident``), or None as :func:`read` says.

    Nothing is copied: the view keeps the mapping alive, and the mapping outlives the
    file's replacement or removal (writers rename whole files into place and prune
    unlinks; nothing truncates an entry in place), so a view stays valid for as long as
    it is held."""
    import mmap

    path = os.path.join(root(), KINDS[kind].subdir, name)
    try:
        with open(path, "rb") as f:
            skip = 0
            if ident is not None:
                head = f.read(8)
                if len(head) != 8 or head[:4] != _MAGIC \
                        or int.from_bytes(head[4:], "little") != len(ident) \
                        or f.read(len(ident)) != ident:
                    return None
                skip = 8 + len(ident)
            fd = f.fileno()
            total = os.fstat(fd).st_size
            if total <= skip or (size is not None and total - skip != size):
                return None
            view = memoryview(mmap.mmap(fd, total, access=mmap.ACCESS_READ))[skip:]
            _touch(fd)
    except (OSError, ValueError):
        return None
    stats["hits"] += 1
    return view


def read(kind: str, name: str, *, ident: bytes | None = None, size: int | None = None,
         limit: int | None = None) -> bytes | None:
    """:func:`read_file` of entry ``name`` of ``kind``."""
    return read_file(os.path.join(root(), KINDS[kind].subdir, name), ident=ident, size=size,
                     limit=limit)


def _touch(fd: int) -> None:
    import time

    try:
        if time.time() - os.fstat(fd).st_mtime > TOUCH_AFTER:
            os.utime(fd)
    except OSError:
        pass  # someone else's file, a read-only cache: it only loses its place in LRU


def write_file(path: str, chunks: tuple[bytes, ...] | list[bytes], *,
               base: str | None = None) -> bool:
    """Write ``path`` atomically (a temporary beside it, renamed into place): readers see
    the old file or the new one, whole. False when it cannot be written (a read-only home
    is no reason to fail); ``base``, the cache's root, gets its CACHEDIR.TAG when made."""
    d = os.path.dirname(path)
    tmp = os.path.join(d, f".tmp-{os.path.basename(path)}-{os.getpid()}-{os.urandom(4).hex()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:
            _make_dirs(d, base)
            fd = os.open(tmp, flags, 0o666)
        try:
            with open(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError:
        return False
    return True


def _make_dirs(d: str, base: str | None) -> None:
    os.makedirs(d, exist_ok=True)
    if base is not None and not os.path.exists(os.path.join(base, _TAG)):
        write_file(os.path.join(base, _TAG), [_TAG_TEXT])


def write(kind: str, name: str, data: bytes, *, ident: bytes | None = None,
          replaces: str | None = None) -> bool:
    """Store entry ``name`` of ``kind`` (starting with ``ident``, if given) atomically.

    ``replaces``: a prefix (:attr:`SourceKey.prefix`) whose other entries are now stale
    and go at once. The write is counted towards the cap and now and then walks the
    cache (:func:`prune`). False when not written: larger than the cap, or the cache
    cannot be written. Callers decide whether to cache (``COREBPF_NO_CACHE``)."""
    base = root()
    d = os.path.join(base, KINDS[kind].subdir)
    head = b"" if ident is None else _MAGIC + len(ident).to_bytes(4, "little") + ident
    size = len(head) + len(data)
    cap = max_size()
    if cap and size > cap:
        return False
    target = os.path.join(d, name)
    try:
        old = os.stat(target).st_size
    except OSError:
        old = 0
    if not write_file(target, (head, data), base=base):
        return False
    stats["writes"] += 1
    delta = size - old
    if replaces is not None:
        delta -= _drop_others(d, replaces + "-", name.partition(".")[0])
    _account(base, delta, cap, target)
    return True


def _drop_others(d: str, prefix: str, stem: str) -> int:
    """Remove the entries in ``d`` named ``prefix*`` but not ``stem.*``; their bytes."""
    freed = 0
    try:
        names = os.listdir(d)
    except OSError:
        return 0
    for n in names:
        if n.startswith(prefix) and n.partition(".")[0] != stem:
            freed += _remove(os.path.join(d, n)) or 0
    return freed


def _remove(path: str) -> int | None:
    """Unlink ``path``; its size, None when it was not there (someone else removed it)
    or cannot be removed."""
    try:
        size = os.stat(path).st_size
        os.unlink(path)
    except OSError:
        return None
    return size


def _parse_usage(blob: bytes) -> tuple[int, int] | None:
    parts = blob.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _store_usage(fd: int, total: int, writes: int) -> None:
    data = b"%d %d\n" % (total, writes)
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


def _account(base: str, delta: int, cap: int, keep: str) -> None:
    """Add ``delta`` bytes to the counter; walk the cache when it is due."""
    import fcntl

    try:
        fd = os.open(os.path.join(base, _USAGE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        usage = _parse_usage(os.pread(fd, 64, 0))
        walk = usage is None  # first write, or a damaged counter: measure
        if usage is not None:
            total, writes = max(0, usage[0] + delta), usage[1] + 1
            walk = bool(cap and total > cap) or writes >= WALK_EVERY
            if not walk:
                _store_usage(fd, total, writes)
    except OSError:
        return
    finally:
        os.close(fd)
    if walk:
        prune(base, cap=cap, keep=(keep,))


def _set_usage(base: str, total: int) -> None:
    import fcntl

    try:
        fd = os.open(os.path.join(base, _USAGE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _store_usage(fd, total, 0)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- the walk ------------------------------------------------------------------------------


class Entry:
    """One file of the cache. ``group``: files evicted together (an index and the kernel
    BTF copy beside it); ``stale``: why it is useless (None: it is not); ``last_use``:
    its mtime, stamped by hits."""

    __slots__ = ("group", "kind", "last_use", "managed", "path", "size", "stale")

    def __init__(self, kind: str, path: str, size: int, last_use: float, group: str,
                 stale: str | None = None, managed: bool = True):
        self.kind = kind
        self.path = path
        self.size = size
        self.last_use = last_use
        self.group = group
        self.stale = stale
        self.managed = managed

    def __repr__(self) -> str:
        return f"Entry({self.kind!r}, {self.path!r}, {self.size}, stale={self.stale!r})"


def _is_hex(s: str) -> bool:
    return bool(s) and all(c in "0123456789abcdef" for c in s)


def _is_temp(name: str) -> bool:
    return name.startswith(".tmp-") or name.endswith(".tmp")


def scan(base: str | None = None, *, unmanaged: bool = False) -> list[Entry]:
    """Every entry of the cache, with why it is stale, for :func:`prune`, :func:`info`
    and :func:`clear`. Unfinished writes count only once they are :data:`TEMP_AGE` old;
    with ``unmanaged``, also files the cache does not own (``corebpf serve``'s store,
    other directories under the root), as kinds ``serve`` and ``other``."""
    import time

    base = base or root()
    now = time.time()
    out: list[Entry] = []
    boot = boot_id()
    idx_stale: dict[str, str | None] = {}
    copies: list[Entry] = []
    for e in _files(os.path.join(base, "btf-index")):
        st = _stat(e)
        if st is None:
            continue
        name = e.name
        stem, _, suffix = name.partition(".")
        kind = "kernel-btf" if name.endswith(".btf") else "btf-index"
        entry = Entry(kind, e.path, st.st_size, st.st_mtime, stem)
        if _is_temp(name):
            if now - st.st_mtime < TEMP_AGE:
                continue
            entry.stale = "unfinished write"
        elif len(stem) != 33 or stem[16] != "-" or not _is_hex(stem[:16] + stem[17:]) \
                or suffix not in ("idx", "btf"):
            entry.stale = "older corebpf's format"
        elif suffix == "idx":
            ident = _read_ident(e.path)
            entry.stale = "damaged" if ident is None else _stale_ident(ident, boot)
            idx_stale[stem] = entry.stale
        else:
            copies.append(entry)
        out.append(entry)
    for entry in copies:  # a copy goes with its index
        if entry.group not in idx_stale:
            entry.stale = "no index beside it"
        else:
            entry.stale = idx_stale[entry.group]
    service = os.path.join(base, "service")
    for e in _files(service, dirs=unmanaged):
        st = _stat(e)
        if st is None:
            continue
        name = e.name
        if e.is_dir(follow_symlinks=False) or not (
                _is_temp(name) or (name.endswith(".btf") and len(name) == 68
                                   and _is_hex(name[:64]))):
            if unmanaged:
                out.append(Entry("serve", e.path, _tree_size(e.path, st), st.st_mtime,
                                 e.path, managed=False))
            continue
        entry = Entry("service", e.path, st.st_size, st.st_mtime, e.path)
        if _is_temp(name):
            if now - st.st_mtime < TEMP_AGE:
                continue
            entry.stale = "unfinished write"
        out.append(entry)
    if unmanaged:
        for e in _files(base, dirs=True):
            if e.name in _OWN or e.name in ("btf-index", "service"):
                continue
            st = _stat(e)
            if st is not None:
                kind = "serve" if e.name == "serve" else "other"
                out.append(Entry(kind, e.path, _tree_size(e.path, st), st.st_mtime, e.path,
                                 managed=False))
    return out


def _files(d: str, *, dirs: bool = False) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(d) as it:
            return [e for e in it if dirs or e.is_file(follow_symlinks=False)]
    except OSError:
        return []


def _stat(e: os.DirEntry[str]) -> os.stat_result | None:
    try:
        return e.stat(follow_symlinks=False)
    except OSError:
        return None


def _tree_size(path: str, st: os.stat_result) -> int:
    import stat

    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
            except OSError:
                pass
    return total


class Removed:
    """What a prune or a clear removed: entries and bytes per kind; ``remaining``: bytes
    the managed kinds hold afterwards."""

    __slots__ = ("bytes", "entries", "remaining")

    def __init__(self) -> None:
        self.entries: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.remaining = 0

    def __repr__(self) -> str:
        return f"Removed({self.entries!r}, {self.bytes!r}, remaining={self.remaining})"

    @property
    def total_entries(self) -> int:
        return sum(self.entries.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def add(self, e: Entry) -> None:
        """Remove ``e``'s file and count it (unless another process was first)."""
        freed = _remove(e.path)
        if freed is not None:
            self.entries[e.kind] = self.entries.get(e.kind, 0) + 1
            self.bytes[e.kind] = self.bytes.get(e.kind, 0) + freed

    def to_json(self) -> dict[str, object]:
        return {"entries": self.total_entries, "bytes": self.total_bytes,
                "remaining_bytes": self.remaining,
                "kinds": {k: {"entries": n, "bytes": self.bytes.get(k, 0)}
                          for k, n in sorted(self.entries.items())}}


class _Lock:
    """The walk's lock (flock on ``.prune.lock``): one walker at a time."""

    def __init__(self, base: str, wait: bool):
        self.path = os.path.join(base, _LOCK)
        self.wait = wait
        self.fd = -1

    def __enter__(self) -> bool:
        import fcntl

        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            fcntl.flock(self.fd, fcntl.LOCK_EX if self.wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError:
            return self.fd >= 0 or not os.path.isdir(os.path.dirname(self.path))
        return True

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)


def prune(base: str | None = None, *, cap: int | None = None,
          keep: tuple[str, ...] = ()) -> Removed | None:
    """Walk the cache: remove stale entries (their file changed or vanished, an earlier
    boot's kernel BTF, an older format, a crashed writer's temporary), then the least
    recently used until the managed kinds fit in ``LOW_WATER`` of the cap. ``keep``: paths
    never evicted (the entry just written). None when another process is walking."""
    base = base or root()
    cap = max_size() if cap is None else cap
    with _Lock(base, wait=False) as got:
        if not got:
            return None
        stats["walks"] += 1
        if os.path.isdir(base) and not os.path.exists(os.path.join(base, _TAG)):
            write_file(os.path.join(base, _TAG), [_TAG_TEXT])
        done = Removed()
        live: list[Entry] = []
        for e in scan(base):
            if e.stale is not None:
                done.add(e)
            else:
                live.append(e)
        total = sum(e.size for e in live)
        if cap and total > cap:
            groups: dict[str, list[Entry]] = {}
            for e in live:
                groups.setdefault(e.group, []).append(e)
            order = sorted(groups.values(), key=lambda g: max(e.last_use for e in g))
            for g in order:
                if total <= cap * LOW_WATER:
                    break
                if any(e.path in keep for e in g):
                    continue
                for e in g:
                    done.add(e)
                    total -= e.size
        done.remaining = total
        _set_usage(base, total)
        return done


# -- info and clear ----------------------------------------------------------------------


class KindUsage:
    """What one kind holds (``managed``: False for what the cache reports but leaves to
    its owner)."""

    __slots__ = ("bytes", "description", "directory", "entries", "kind", "managed",
                 "stale_bytes", "stale_entries")

    def __init__(self, kind: str, description: str, directory: str, *, managed: bool = True):
        self.kind = kind
        self.description = description
        self.directory = directory
        self.managed = managed
        self.entries = self.bytes = self.stale_entries = self.stale_bytes = 0

    def __repr__(self) -> str:
        return f"KindUsage({self.kind!r}, entries={self.entries}, bytes={self.bytes})"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "description": self.description,
                "directory": self.directory, "managed": self.managed,
                "entries": self.entries, "bytes": self.bytes,
                "stale_entries": self.stale_entries, "stale_bytes": self.stale_bytes}


_UNMANAGED = {
    "serve": "corebpf serve's own store (its default --cache; bounded by its --cache-size)",
    "other": "not corebpf's cache (other files under the cache directory)",
}


class CacheInfo:
    """The cache as ``corebpf cache info`` shows it."""

    __slots__ = ("cap", "enabled", "kinds", "root")

    def __init__(self, root: str, enabled: bool, cap: int, kinds: list[KindUsage]):
        self.root = root
        self.enabled = enabled
        self.cap = cap
        self.kinds = kinds

    def __repr__(self) -> str:
        return f"CacheInfo({self.root!r}, bytes={self.bytes}, cap={self.cap})"

    @property
    def managed(self) -> list[KindUsage]:
        return [k for k in self.kinds if k.managed]

    @property
    def bytes(self) -> int:
        return sum(k.bytes for k in self.managed)

    @property
    def entries(self) -> int:
        return sum(k.entries for k in self.managed)

    @property
    def stale_bytes(self) -> int:
        return sum(k.stale_bytes for k in self.managed)

    @property
    def stale_entries(self) -> int:
        return sum(k.stale_entries for k in self.managed)

    def to_json(self) -> dict[str, object]:
        return {"root": self.root, "enabled": self.enabled, "cap": self.cap,
                "entries": self.entries, "bytes": self.bytes,
                "stale_entries": self.stale_entries, "stale_bytes": self.stale_bytes,
                "kinds": [k.to_json() for k in self.kinds]}


def info(base: str | None = None) -> CacheInfo:
    """Location, cap, and entries, bytes and stale entries per kind (a full walk)."""
    base = base or root()
    cap = max_size()
    kinds = {k.name: KindUsage(k.name, k.description, os.path.join(base, k.subdir))
             for k in KINDS.values()}
    for e in scan(base, unmanaged=True):
        u = kinds.get(e.kind)
        if u is None:
            where = os.path.dirname(e.path) if e.kind == "serve" else base
            u = kinds[e.kind] = KindUsage(e.kind, _UNMANAGED[e.kind], where, managed=False)
        u.entries += 1
        u.bytes += e.size
        if e.stale is not None:
            u.stale_entries += 1
            u.stale_bytes += e.size
    return CacheInfo(base, enabled(), cap, list(kinds.values()))


def clear(kinds: list[str] | tuple[str, ...] | None = None, *, stale_only: bool = False,
          base: str | None = None) -> Removed:
    """Remove the entries of ``kinds`` (default: every kind the cache manages; never
    ``corebpf serve``'s store), or with ``stale_only`` only their stale ones."""
    base = base or root()
    for k in kinds or ():
        if k not in KINDS:
            raise CacheError(f"no cache kind {k!r} (kinds: {', '.join(KINDS)})")
    wanted = set(kinds or KINDS)
    done = Removed()
    with _Lock(base, wait=True):
        remaining = 0
        for e in scan(base):
            if e.kind in wanted and (e.stale is not None or not stale_only):
                done.add(e)
            else:
                remaining += e.size
        done.remaining = remaining
        if os.path.isdir(base):
            _set_usage(base, remaining)
    return done


def format_size(n: int) -> str:
    """``0 B``, ``512 B``, ``1.4 MiB``, ``256 MiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            return f"{value:.1f}".removesuffix(".0") + f" {unit}"
    raise AssertionError("unreachable")


__all__ = [
    "DEFAULT_MAX_SIZE", "KINDS", "WALK_EVERY", "CacheError", "CacheInfo", "Entry", "Kind",
    "KindUsage", "Removed", "SourceKey", "boot_id", "clear", "enabled", "format_size", "info",
    "kind_dir", "max_size", "parse_size", "prune", "read", "read_file", "read_mapped", "root",
    "scan", "source_key", "write", "write_file",
]
