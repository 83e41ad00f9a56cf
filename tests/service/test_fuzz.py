"""Property: whatever a client sends as query string or upload, the answer is a 2xx, 304,
or a 400/404/413 with a JSON message; never a 500, never a dropped connection."""

from __future__ import annotations

import urllib.parse

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.service.conftest import Served, error_of, multipart, query, request

PARAMS = ("distribution", "distribution_version", "arch", "kernel_version", "object")
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
ROUTES = [("GET", "/api/v1/download"), ("POST", "/api/v1/customize"),
          ("GET", "/api/v1/bundle"), ("POST", "/api/v1/check"), ("GET", "/api/v1/list")]

values = st.one_of(
    st.text(max_size=140),
    st.sampled_from(["..", "../../etc/passwd", "/etc/passwd", "x86_64", "arm64", "aarch64",
                     "debian", "12", "a\0b", "%00", "\\..\\", "0" * 64]),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


def allowed(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status in (200, 304, 400, 404, 413), (status, body[:300])
    if status >= 400:
        error_of(status, headers, body)


@FUZZ
@given(route=st.sampled_from(ROUTES),
       pairs=st.lists(st.tuples(st.sampled_from(PARAMS), values), max_size=8))
def test_random_query_strings(served: Served, route: tuple[str, str],
                              pairs: list[tuple[str, str]]) -> None:
    method, path = route
    qs = urllib.parse.urlencode(pairs)
    body, ctype = multipart([("bpf", "x.o", b"\x7fELF" + bytes(60))])
    headers = {"Content-Type": ctype} if method == "POST" else {}
    allowed(*request(method, f"{served.url}{path}?{qs}",
                     body if method == "POST" else None, headers))


@FUZZ
@given(raw=st.binary(max_size=300))
def test_raw_query_bytes(served: Served, raw: bytes) -> None:
    qs = urllib.parse.quote_from_bytes(raw, safe="=&")
    allowed(*request("GET", f"{served.url}/api/v1/download?{qs}"))


@FUZZ
@given(data=st.binary(max_size=4096), name=st.text(max_size=40),
       route=st.sampled_from(["customize", "check", "bundle"]))
def test_random_bytes_as_bpf(served: Served, data: bytes, name: str, route: str) -> None:
    body, ctype = multipart([("bpf", name.replace('"', "").replace("\r", "")
                              .replace("\n", ""), data)])
    q = f"?{query(served.keys[0])}" if route == "customize" else ""
    status, headers, answer = request("POST", f"{served.url}/api/v1/{route}{q}", body,
                                      {"Content-Type": ctype})
    allowed(status, headers, answer)
    if data[:4] != b"\x7fELF":
        assert status == 400


@FUZZ
@given(st.data())
def test_mutated_objects(served: Served, data: st.DataObject) -> None:
    """A real object with bytes changed: read or refused, never a failure of ours."""
    from tests.service.conftest import object_bytes

    obj = bytearray(object_bytes(data.draw(st.sampled_from(
        ["core_poison.bpf.o", "syscount.bpfel.o"]))))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(obj) - 1))
        obj[at] = data.draw(st.integers(0, 255))
    body, ctype = multipart([("bpf", "m.o", bytes(obj))])
    allowed(*request("POST", f"{served.url}/api/v1/customize?{query(served.keys[-1])}",
                     body, {"Content-Type": ctype}))


@FUZZ
@given(body=st.binary(max_size=2000),
       ctype=st.one_of(st.just("multipart/form-data; boundary=b0"),
                       st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e),
                               max_size=60).map(str.strip),
                       st.text(max_size=40).map(lambda t: f"multipart/form-data; boundary="
                                                f"{t.encode('ascii', 'replace').decode()}")))
def test_random_bodies(served: Served, body: bytes, ctype: str) -> None:
    """Any body under any Content-Type that is a valid header value (a value HTTP itself
    forbids is refused by uvicorn before the application sees it)."""
    headers = {"Content-Type": "".join(c for c in ctype if " " <= c <= "~")}
    allowed(*request("POST", f"{served.url}/api/v1/customize?{query(served.keys[0])}",
                     body, headers))
