"""The client of a BTF service (``corebpf serve``, or any server speaking btfhub-online's
API): this machine's BTF, whole or minimized for some objects, over HTTP, with the
standard library only.

Everything a server sends is untrusted: every response is bounded in size, a BTF
tarball must hold exactly one regular ``.btf`` file (read in memory, never extracted)
whose header is sound, JSON must have the expected shape, a bundle is checked as
:class:`~.bundle.Bundle` checks a file. A failure is a :class:`ServiceClientError` carrying the
URL, the HTTP status and the server's own ``{"error": ...}`` message.

What was fetched is kept in corebpf's cache (kind ``service``: ``~/.cache/corebpf/service``,
bounded with the rest of the cache, :mod:`corebpf.cache`), keyed by the service URL, the
kernel and the objects' sha256s, written atomically. A cached answer is revalidated with
``If-None-Match`` (the server's ETag; a 304 costs no body), and used as is when the
server cannot be reached: a machine that got its BTF once keeps working while the
service is down.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import struct
from collections.abc import Iterable, Sequence
from typing import Any

from .._record import record
from ..errors import ArchiveError
from .sources import normalize_arch

#: what a response may weigh: a kernel's .btf.tar.xz (~1-2 MB compressed) and JSON
MAX_RESPONSE = 64 << 20
#: a bundle response (thousands of kernels' minimized BTF are a few MB)
MAX_BUNDLE_RESPONSE = 512 << 20
#: what a tarball's BTF may expand to (the largest kernel BTF is ~10 MB)
MAX_BTF = 256 << 20
#: how much of an error response is read for its message
MAX_ERROR_BODY = 64 << 10
DEFAULT_TIMEOUT = 60.0
_KEY_FIELDS = ("distribution", "distribution_version", "kernel_version", "arch")
_CACHE_MAGIC = b"CBSC1\n"

Key = tuple[str, str, str, str]


class ServiceClientError(ArchiveError):
    """A BTF service request that failed: ``url`` asked, ``status`` the HTTP status
    (None when the server was not reached or sent no HTTP), ``server_message`` its
    ``{"error": ...}`` text, if any."""

    def __init__(self, message: str, *, url: str, status: int | None = None,
                 server_message: str | None = None):
        self.url = url
        self.status = status
        self.server_message = server_message
        super().__init__(message)


@record
class Fetched:
    """A BTF the service gave (or the cache kept), and how it was got."""

    btf: bytes
    key: Key
    #: "network" (a fresh answer), "revalidated" (304: the cached copy is current),
    #: "stale" (the server could not be reached; the cached copy was used)
    origin: str
    etag: str | None
    #: the objects' sha256s it is minimized for (empty: the kernel's whole BTF)
    objects: tuple[str, ...]


def key_text(key: Key) -> str:
    return "/".join(key)


def _object_bytes(obj: Any) -> tuple[str, bytes]:
    """(file name, bytes) of one object to upload."""
    if isinstance(obj, bytes | bytearray | memoryview):
        return "object.bpf.o", bytes(obj)
    if isinstance(obj, str | os.PathLike):
        path = os.fspath(obj)
        try:
            with open(path, "rb") as f:
                return os.path.basename(path) or "object.bpf.o", f.read(MAX_RESPONSE + 1)
        except OSError as e:
            raise ArchiveError(f"{path}: cannot read: {e.strerror}") from None
    elf = getattr(obj, "elf", None)
    if elf is not None:  # an ObjectSpec: the bytes it was parsed from
        return os.path.basename(getattr(obj, "source", "")) or "object.bpf.o", bytes(elf.data)
    raise TypeError(f"not a BPF object, path or bytes: {type(obj).__name__}")


def _safe_filename(name: str) -> str:
    out = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                  for c in name)
    return out[:100] or "object.bpf.o"


def multipart(objects: Iterable[Any], field: str = "bpf") -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data upload: one ``field`` part per
    object, as btfhub-online's clients send them."""
    import secrets

    boundary = f"corebpf-{secrets.token_hex(16)}"
    body = bytearray()
    for obj in objects:
        name, data = _object_bytes(obj)
        body += (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                 f"filename=\"{_safe_filename(name)}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n").encode()
        body += data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), f"multipart/form-data; boundary={boundary}"


def check_btf_header(raw: bytes, source: str) -> None:
    """Raw BTF whose header fits the data (the rest is parsed by whoever uses it)."""
    if raw[:2] == b"\x9f\xeb":
        e = "<"
    elif raw[:2] == b"\xeb\x9f":
        e = ">"
    else:
        raise ArchiveError(f"{source}: not BTF (magic {raw[:2].hex() or 'missing'})")
    if len(raw) < 24:
        raise ArchiveError(f"{source}: BTF header truncated ({len(raw)} bytes)")
    _, version, _, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        e + "HBBIIIII", raw)
    body = len(raw) - hdr_len
    if version != 1 or hdr_len < 24 or body < 0 or type_off + type_len > body \
            or str_off + str_len > body:
        raise ArchiveError(f"{source}: corrupt BTF header (version {version}, header "
                           f"{hdr_len} bytes, types {type_off}+{type_len}, strings "
                           f"{str_off}+{str_len}, {len(raw)} bytes in all)")


def untar_btf(data: bytes, source: str, *, max_btf: int = MAX_BTF) -> bytes:
    """The raw BTF of a ``.btf.tar.xz`` (BTFHub's, or a customize answer): exactly one
    regular ``.btf`` member, no links or devices, no path leaving the tarball, bounded;
    read in memory."""
    import lzma
    import tarfile

    try:
        xz = lzma.LZMADecompressor()
        body = xz.decompress(data, max_length=max_btf + (1 << 20))
        if not xz.eof:
            raise ArchiveError(f"{source}: truncated xz stream, or more than "
                               f"{max_btf >> 20} MiB of BTF")
    except (lzma.LZMAError, EOFError) as e:
        raise ArchiveError(f"{source}: not an xz-compressed BTF tarball: {e}") from None
    found: list[tuple[str, bytes]] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:") as tar:
            for m in tar:
                parts = m.name.replace("\\", "/").split("/")
                if m.name.startswith(("/", "\\")) or ".." in parts or "\0" in m.name:
                    raise ArchiveError(f"{source}: member {m.name!r} leaves the tarball")
                if m.isdir():
                    continue
                if not m.isreg():
                    raise ArchiveError(f"{source}: member {m.name!r} is not a regular "
                                       "file")
                if m.size > max_btf:
                    raise ArchiveError(f"{source}: member {m.name!r} is more than "
                                       f"{max_btf >> 20} MiB")
                f = tar.extractfile(m)
                assert f is not None
                found.append((m.name, f.read(m.size)))
    except (tarfile.TarError, EOFError, ValueError, OSError) as e:
        raise ArchiveError(f"{source}: corrupt BTF tarball: {e}") from None
    btf = [(n, d) for n, d in found if n.endswith(".btf")]
    if len(found) != 1 or len(btf) != 1:
        names = ", ".join(repr(n) for n, _ in found) or "none"
        raise ArchiveError(f"{source}: expected one .btf file in the tarball, found "
                           f"{names}")
    name, raw = btf[0]
    check_btf_header(raw, f"{source}:{name}")
    return raw


# -- the local cache -------------------------------------------------------------------


def default_cache_dir() -> str:
    """The ``service`` kind's directory in corebpf's cache (:mod:`corebpf.cache`)."""
    from .. import cache

    return cache.kind_dir("service")


class _Cache:
    """One file per answer: magic, a JSON line (URL, key, objects, ETag, sha256), the BTF.
    In the default directory the answers are entries of corebpf's cache, counted towards
    its cap (least recently used evicted first); another directory is the caller's."""

    def __init__(self, root: str):
        self.root = root

    def _name(self, ident: str) -> str:
        return hashlib.sha256(ident.encode()).hexdigest() + ".btf"

    def get(self, ident: str) -> tuple[dict[str, Any], bytes] | None:
        from .. import cache

        blob = cache.read_file(os.path.join(self.root, self._name(ident)),
                               limit=MAX_BTF + (1 << 20))
        if blob is None or not blob.startswith(_CACHE_MAGIC):
            return None
        head, sep, data = blob[len(_CACHE_MAGIC):].partition(b"\n")
        try:
            meta = json.loads(head) if sep else None
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(meta, dict) or meta.get("ident") != ident \
                or meta.get("sha256") != hashlib.sha256(data).hexdigest():
            return None  # another answer's file, or damaged: fetch anew
        return meta, data

    def put(self, ident: str, data: bytes, etag: str | None) -> None:
        from .. import cache

        meta = {"ident": ident, "etag": etag, "sha256": hashlib.sha256(data).hexdigest()}
        blob = _CACHE_MAGIC + json.dumps(meta, sort_keys=True).encode() + b"\n" + data
        name = self._name(ident)
        if os.path.abspath(self.root) == cache.kind_dir("service"):
            cache.write("service", name, blob)
        else:
            cache.write_file(os.path.join(self.root, name), [blob])


# -- the client ------------------------------------------------------------------------


class ServiceClient:
    """A BTF service at ``url`` (``http://host:port``, maybe with a path prefix).

    ``cache``: True (the default cache directory, unless ``COREBPF_NO_CACHE`` is set),
    False (none) or a directory. ``timeout`` is per request, in seconds.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT,
                 cache: bool | str | os.PathLike[str] = True):
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ServiceClientError(f"{url!r}: not a BTF service URL (expected "
                                     "http://HOST[:PORT][/PREFIX])", url=url)
        self.url = url.rstrip("/")
        self.timeout = timeout
        root: str | None
        if cache is True:
            from .. import cache as _cache

            root = default_cache_dir() if _cache.enabled() else None
        else:
            root = None if cache is False else os.fspath(cache)
        self._cache = _Cache(root) if root is not None else None

    def __repr__(self) -> str:
        return f"ServiceClient({self.url!r})"

    # -- HTTP ------------------------------------------------------------------------

    def _request(self, method: str, route: str, *, query: Sequence[tuple[str, str]] = (),
                 body: bytes | None = None, headers: dict[str, str] | None = None,
                 limit: int = MAX_RESPONSE) -> tuple[int, bytes, dict[str, str]]:
        """(status, body, headers) of one request; 304 is returned, every other
        non-2xx status and every transport failure is a ServiceClientError."""
        import http.client
        import urllib.error
        import urllib.request
        from urllib.parse import urlencode

        url = f"{self.url}/{route}" + (f"?{urlencode(query)}" if query else "")
        req = urllib.request.Request(url, data=body, method=method,
                                     headers={"User-Agent": "corebpf", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                length = resp.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > limit:
                    raise ServiceClientError(f"{url}: the answer is {length} bytes, more than the "
                                             f"{limit} accepted", url=url, status=resp.status)
                data = resp.read(limit + 1)
                if len(data) > limit:
                    raise ServiceClientError(f"{url}: the answer is more than {limit} bytes",
                                             url=url, status=resp.status)
                return resp.status, data, {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as e:
            if e.code == 304:
                return 304, b"", {k.lower(): v for k, v in e.headers.items()}
            raise self._http_error(url, e) from None
        except urllib.error.URLError as e:
            reason = e.reason.strerror if isinstance(e.reason, OSError) and \
                e.reason.strerror else str(e.reason)
            raise ServiceClientError(f"{self.url}: cannot reach the BTF service: {reason}",
                                     url=url) from None
        except http.client.HTTPException as e:  # not HTTP at all, or cut short
            raise ServiceClientError(f"{self.url}: the BTF service sent no valid HTTP answer to "
                                     f"{method} /{route}: {type(e).__name__}: {e}",
                                     url=url) from None
        except (OSError, ValueError) as e:  # timeouts, resets
            why = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or \
                type(e).__name__
            raise ServiceClientError(f"{self.url}: BTF service request {method} /{route} failed: "
                                     f"{why}", url=url) from None

    @staticmethod
    def _http_error(url: str, e: Any) -> ServiceClientError:
        try:
            text = e.read(MAX_ERROR_BODY)
        except OSError:
            text = b""
        message = None
        try:
            doc = json.loads(text)
            if isinstance(doc, dict):
                msg = doc.get("error", doc.get("detail"))
                message = msg if isinstance(msg, str) else None if msg is None else \
                    json.dumps(msg)
        except (ValueError, UnicodeDecodeError):
            pass
        if message is None:
            message = text[:200].decode("utf-8", "replace").strip() or e.reason
        return ServiceClientError(f"{url}: HTTP {e.code}: {message}", url=url, status=e.code,
                                  server_message=message)

    def _json(self, method: str, route: str, **kw: Any) -> Any:
        _, data, _ = self._request(method, route, **kw)
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ServiceClientError(f"{self.url}/{route}: the answer is not JSON: "
                                     f"{data[:60]!r}", url=f"{self.url}/{route}") from None

    # -- the API ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        doc = self._json("GET", "monitoring/health")
        if not isinstance(doc, dict):
            raise ServiceClientError(f"{self.url}/monitoring/health: not a JSON object",
                                     url=f"{self.url}/monitoring/health")
        return doc

    def list(self) -> list[dict[str, str]]:
        """Every kernel the service has: ``distribution``, ``distribution_version``,
        ``kernel_version``, ``arch``."""
        doc = self._json("GET", "api/v1/list")
        route = f"{self.url}/api/v1/list"
        if not isinstance(doc, list):
            raise ServiceClientError(f"{route}: the answer is not a JSON list", url=route)
        for i, row in enumerate(doc):
            if not isinstance(row, dict) or not all(isinstance(row.get(k), str)
                                                    for k in _KEY_FIELDS):
                raise ServiceClientError(f"{route}: row #{i} is not a kernel "
                                         f"({', '.join(_KEY_FIELDS)})", url=route)
        return [{k: row[k] for k in _KEY_FIELDS} for row in doc]

    def kernels(self) -> builtins.list[Key]:
        """:meth:`list` as (distro, version, arch, release) keys."""
        return [(r["distribution"], r["distribution_version"], r["arch"],
                 r["kernel_version"]) for r in self.list()]

    @staticmethod
    def _query(key: Key) -> builtins.list[tuple[str, str]]:
        distro, version, arch, release = key
        return [("distribution", distro), ("distribution_version", version),
                ("kernel_version", release), ("arch", normalize_arch(arch))]

    def fetch(self, key: Key, objects: Sequence[Any] = ()) -> Fetched:
        """This kernel's BTF: whole (``download``) without objects, else minimized for
        them (``customize``); from the cache when the server says it is current (304) or
        cannot be reached."""
        key = (key[0], key[1], normalize_arch(key[2]), key[3])
        uploads = [_object_bytes(o) for o in objects]
        shas = tuple(sorted(hashlib.sha256(d).hexdigest() for _, d in uploads))
        route = "api/v1/customize" if uploads else "api/v1/download"
        ident = json.dumps([self.url, route, list(key), list(shas)])
        cached = self._cache.get(ident) if self._cache is not None else None
        headers: dict[str, str] = {}
        if cached is not None and cached[0].get("etag"):
            headers["If-None-Match"] = cached[0]["etag"]
        body = ctype = None
        if uploads:
            body, ctype = multipart(d for _, d in uploads)
            headers["Content-Type"] = ctype
        try:
            status, data, got = self._request("POST" if uploads else "GET", route,
                                              query=self._query(key), body=body,
                                              headers=headers)
        except ServiceClientError as e:
            if cached is not None and (e.status is None or e.status >= 500):
                return Fetched(cached[1], key, "stale", cached[0].get("etag"), shas)
            if e.status == 404 and key_text(key) not in str(e):
                raise ServiceClientError(f"{e} (no BTF for {key_text(key)} on the service)",
                                         url=e.url, status=e.status,
                                         server_message=e.server_message) from None
            raise
        if status == 304:
            if cached is None:
                raise ServiceClientError(f"{self.url}/{route}: 304 Not Modified without a cached "
                                         "copy", url=f"{self.url}/{route}", status=304)
            return Fetched(cached[1], key, "revalidated", cached[0].get("etag"), shas)
        raw = untar_btf(data, f"{self.url}/{route} ({key_text(key)})")
        etag = got.get("etag")
        if self._cache is not None:
            self._cache.put(ident, raw, etag)
        return Fetched(raw, key, "network", etag, shas)

    def download(self, key: Key) -> bytes:
        """The kernel's whole raw BTF (the service's ``.btf.tar.xz``, unpacked)."""
        return self.fetch(key).btf

    def customize(self, key: Key, objects: Sequence[Any]) -> bytes:
        """The kernel's BTF minimized for ``objects`` (paths, bytes or ObjectSpecs)."""
        if not objects:
            raise ServiceClientError(f"{self.url}: customize needs at least one object",
                                     url=f"{self.url}/api/v1/customize")
        return self.fetch(key, objects).btf

    def check(self, objects: Sequence[Any]) -> dict[str, Any]:
        """The objects' compatibility over every kernel of the service, the JSON
        ``corebpf check --json`` prints."""
        body, ctype = multipart(objects)
        doc = self._json("POST", "api/v1/check", body=body,
                         headers={"Content-Type": ctype})
        if not isinstance(doc, dict):
            raise ServiceClientError(f"{self.url}/api/v1/check: the answer is not a JSON object",
                                     url=f"{self.url}/api/v1/check")
        return doc

    def bundle(self, objects: Sequence[Any], out_path: str | os.PathLike[str], *,
               distribution: str | None = None, arch: str | None = None) -> str:
        """A corebpf bundle for ``objects`` over the service's kernels (maybe only one
        distribution's or architecture's), checked, then written atomically to
        ``out_path``."""
        from .bundle import Bundle

        query = [(k, v) for k, v in (("distribution", distribution),
                                     ("arch", normalize_arch(arch) if arch else None)) if v]
        body, ctype = multipart(objects)
        _, data, _ = self._request("POST", "api/v1/bundle", query=query, body=body,
                                   headers={"Content-Type": ctype},
                                   limit=MAX_BUNDLE_RESPONSE)
        Bundle.from_bytes(data, f"{self.url}/api/v1/bundle")
        out = os.fspath(out_path)
        write_atomic(out, data, ArchiveError)
        return out


def write_atomic(path: str, data: bytes, error: type[Exception] = ArchiveError,
                 mode: int = 0o644) -> None:
    """``data`` to ``path`` through a temporary file in the same directory and a rename:
    a reader sees the old file or the new one, never part of one; nothing is left
    behind on failure."""
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                   suffix=".tmp")
    except OSError as e:
        raise error(f"{path}: cannot write: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise error(f"{path}: cannot write: {e.strerror or e}") from None
        raise


__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_RESPONSE",
    "Fetched",
    "ServiceClient",
    "ServiceClientError",
    "check_btf_header",
    "default_cache_dir",
    "multipart",
    "untar_btf",
    "write_atomic",
]
