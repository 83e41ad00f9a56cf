"""Uploaded objects: a multipart/form-data body read as it streams in, its ``bpf``
fields kept (hashed on the way), the size limit enforced while reading.

The body is never buffered whole before the limit is checked: a declared Content-Length
over the limit is refused before a byte is read, and a body that grows past it is
refused when it does. What is left of an oversized body is read and dropped (up to a
bound) so that a client still sending gets the 413 rather than a reset connection.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator

from .._record import field, record
from .errors import BadRequest, TooLarge

#: the multipart field that carries an object, as btfhub-online names it
FIELD = "bpf"
#: at most this many parts (of any name) in one body
MAX_PARTS = 256
#: at most this many objects in one request
MAX_OBJECTS = 64
#: bytes past the limit still read (and dropped) before answering 413
DRAIN = 16 << 20
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# python-multipart logs every malformed header it meets; with no handler configured,
# Python's last-resort handler printed them to the server's stderr without saying which
# request. The client gets a 400 naming the fault; logging set up by the user still
# receives these records.
logging.getLogger("python_multipart").addHandler(logging.NullHandler())


@record
class Upload:
    """One uploaded object: its bytes, their sha256, and the name the client gave it."""

    name: str
    data: bytes
    sha256: str


def upload_name(filename: str | None) -> str:
    """What messages call an upload: the base name the client sent, made printable
    (``C:\\x\\prog.o`` -> ``prog.o``), else the field's name."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("?", name)[:128].strip()
    return name if name not in ("", ".", "..") else FIELD


@record
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None
    chunks: list[bytes] = field(default_factory=list)


class _Collector:
    """The parser's callbacks: one _Part per part, only ``bpf`` parts keep their data."""

    def __init__(self) -> None:
        self.parts: list[_Part] = []
        self.uploads: list[Upload] = []
        self.ended = False
        self._field = bytearray()
        self._value = bytearray()
        self._hash: hashlib._Hash | None = None

    @property
    def current(self) -> _Part:
        return self.parts[-1]

    def part_begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise BadRequest(f"more than {MAX_PARTS} parts in the multipart body")
        self.parts.append(_Part())

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def header_end(self) -> None:
        name = self._field.decode("latin-1").strip().lower()
        self.current.headers[name] = self._value.decode("latin-1").strip()
        self._field.clear()
        self._value.clear()

    def headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        part = self.current
        disposition = part.headers.get("content-disposition")
        if disposition is None:
            raise BadRequest("a part of the multipart body has no Content-Disposition")
        _, options = parse_options_header(disposition)
        name = options.get(b"name")
        part.name = None if name is None else name.decode("latin-1")
        filename = options.get(b"filename")
        part.filename = None if filename is None else filename.decode("utf-8", "replace")
        if part.name == FIELD:
            if sum(1 for p in self.parts if p.name == FIELD) > MAX_OBJECTS:
                raise BadRequest(f"more than {MAX_OBJECTS} objects (fields {FIELD!r})")
            self._hash = hashlib.sha256()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._hash is not None:
            chunk = data[start:end]
            self.current.chunks.append(chunk)
            self._hash.update(chunk)

    def part_end(self) -> None:
        part = self.current
        if self._hash is not None:
            data = b"".join(part.chunks)
            part.chunks.clear()
            name = upload_name(part.filename)
            if not data:
                raise BadRequest(f"field {FIELD!r} ({name}) is empty")
            self.uploads.append(Upload(name, data, self._hash.hexdigest()))
            self._hash = None

    def end(self) -> None:
        self.ended = True


async def _drain(stream: AsyncIterator[bytes], limit: int) -> None:
    """Read and drop up to ``limit`` more bytes of a refused body."""
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            break


async def read_objects(stream: AsyncIterator[bytes], content_type: str | None,
                       content_length: str | None, limit: int) -> list[Upload]:
    """The objects of a multipart/form-data body (field ``bpf``, one or more), in order.

    BadRequest for anything but a well-formed multipart body holding at least one
    non-empty ``bpf`` part; TooLarge when the body passes ``limit`` bytes.
    """
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    ctype, options = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise BadRequest(f"expected a multipart/form-data body with the object in field "
                         f"{FIELD!r}, not {ctype.decode('latin-1') or 'no Content-Type'}")
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("the multipart/form-data Content-Type has no boundary")
    declared: int | None = None
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            raise BadRequest(f"Content-Length {content_length!r} is not a number") from None
    if declared is not None and declared > limit:
        if declared <= limit + DRAIN:
            await _drain(stream, declared)
        raise TooLarge(f"the upload's {declared} bytes are more than the {limit} allowed")
    got = _Collector()
    try:
        parser = MultipartParser(boundary, {
            "on_part_begin": got.part_begin, "on_part_data": got.part_data,
            "on_part_end": got.part_end, "on_header_field": got.header_field,
            "on_header_value": got.header_value, "on_header_end": got.header_end,
            "on_headers_finished": got.headers_finished, "on_end": got.end})
    except FormParserError as e:
        raise BadRequest(f"bad multipart boundary: {e}") from None
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            await _drain(stream, DRAIN)
            raise TooLarge(f"the upload is more than the {limit} bytes allowed")
        if got.ended:
            continue  # the epilogue after the closing boundary
        try:
            parser.write(chunk)
        except FormParserError as e:
            raise BadRequest(f"malformed multipart body: {e}") from None
    if not got.ended:
        raise BadRequest("malformed multipart body: it ends before its closing boundary")
    if not got.uploads:
        raise BadRequest(f"no field {FIELD!r} in the multipart body (the BPF object goes "
                         f"in a file field named {FIELD!r})")
    return got.uploads


__all__ = ["FIELD", "MAX_OBJECTS", "Upload", "read_objects", "upload_name"]
