"""Multipart bodies read as they stream in: the ``bpf`` fields kept and hashed, other
fields ignored, the limit enforced while reading, every malformed body a BadRequest."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence

import pytest

from corebpf.service.errors import BadRequest, TooLarge
from corebpf.service.uploads import Upload, read_objects, upload_name
from tests.service.conftest import multipart

CTYPE = "multipart/form-data; boundary=b0"


async def _stream(body: bytes, chunk: int, seen: list[int]) -> AsyncIterator[bytes]:
    for i in range(0, len(body), chunk):
        seen.append(i + chunk)
        yield body[i:i + chunk]


def read(body: bytes, *, limit: int = 1 << 20, chunk: int = 7, ctype: str = CTYPE,
         length: str | None = None, seen: list[int] | None = None) -> list[Upload]:
    return asyncio.run(read_objects(_stream(body, chunk, seen if seen is not None else []),
                                    ctype, length, limit))


def body_of(parts: Sequence[tuple[str, str, bytes]]) -> bytes:
    return multipart(parts, "b0")[0]


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_objects_in_order_hashed(chunk: int) -> None:
    a, b = b"\x7fELF" + bytes(range(256)) * 3, b"second\r\n--b1 not our boundary\r\n"
    got = read(body_of([("bpf", "a.o", a), ("note", "x", b"ignored"), ("bpf", "b.o", b)]),
               chunk=chunk)
    assert [(u.name, u.data, u.sha256) for u in got] == [
        ("a.o", a, hashlib.sha256(a).hexdigest()), ("b.o", b, hashlib.sha256(b).hexdigest())]


def test_upload_names() -> None:
    assert upload_name("C:\\src\\prog.o") == "prog.o"
    assert upload_name("../../etc/x.o") == "x.o"
    assert upload_name("a\nb.o") == "a?b.o"
    assert upload_name(None) == upload_name("") == upload_name("..") == "bpf"
    assert len(upload_name("x" * 1000)) == 128


def test_declared_length_over_the_limit_reads_nothing_past_it() -> None:
    seen: list[int] = []
    body = body_of([("bpf", "a.o", bytes(5000))])
    with pytest.raises(TooLarge, match="1000"):
        read(body, limit=1000, length=str(len(body)), seen=seen, chunk=100)
    # drained, not parsed: nothing was kept
    with pytest.raises(TooLarge):
        read(body, limit=1000, length=str(len(body) + (64 << 20)), seen=(few := []),
             chunk=100)
    assert few == []  # far over the limit: not even drained


def test_growing_body_stops_at_the_limit() -> None:
    body = body_of([("bpf", "a.o", bytes(200000))])
    with pytest.raises(TooLarge):
        read(body, limit=10000, chunk=1000)  # no Content-Length (chunked)


@pytest.mark.parametrize("body,ctype,says", [
    (b"x", "application/octet-stream", "multipart/form-data"),
    (b"x", "", "multipart/form-data"),
    (b"x", "multipart/form-data", "boundary"),
    (b"garbage", CTYPE, "malformed"),
    (body_of([("bpf", "a.o", b"data")])[:-10], CTYPE, "closing boundary"),
    (body_of([("other", "a.o", b"data")]), CTYPE, "no field 'bpf'"),
    (body_of([("bpf", "a.o", b"")]), CTYPE, "empty"),
    (b"--b0\r\nX: y\r\n\r\ndata\r\n--b0--\r\n", CTYPE, "Content-Disposition"),
    (body_of([("bpf", "a.o", b"d")] * 65), CTYPE, "more than 64 objects"),
])
def test_malformed(body: bytes, ctype: str, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        read(body, ctype=ctype)


def test_bad_content_length() -> None:
    with pytest.raises(BadRequest, match="Content-Length"):
        read(body_of([("bpf", "a.o", b"d")]), length="lots")
