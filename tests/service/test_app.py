"""Every endpoint of a real ``corebpf serve``: btfhub-online's API through a client
written as btfhub-online's are, the customized BTF deciding every relocation as the full
kernel BTF does (x86_64 and arm64 kernels, several objects), check and bundle, ETag and
304, metrics, the OpenAPI document, and every bad input answered with a JSON message."""

from __future__ import annotations

import hashlib
import http.client
import json
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from corebpf.archive.bundle import Bundle
from corebpf.archive.check import relocate_object
from corebpf.archive.sources import entry_for, read_btf
from corebpf.btf import from_bytes
from corebpf.core import Target
from tests.conftest import PROGS, ROOT
from tests.service.conftest import (
    BROKEN,
    BROKEN_KEY,
    ESCAPE,
    OBJECTS,
    Served,
    error_of,
    first_regular_file,
    multipart,
    object_bytes,
    post_objects,
    query,
    regular_files,
    request,
)

#: objects customized for on every kernel: tools' and tests/progs'
COMMON = ["execsnoop.bpfel.o", "runqlat.bpfel.o", "core_kinds.bpf.o", "btfgen_cases.bpf.o"]
#: per-architecture objects (pt_regs reads)
PER_ARCH = {"x86_64": "tcpconnect.x86.bpfel.o", "arm64": "tcpconnect.arm64.bpfel.o"}


class BtfhubOnlineClient:
    """btfhub-online-go's Client, in Python: list, GetRawBTF, GetCustomBTF (the object in
    multipart field ``bpf`` under the file name ``from_memory``)."""

    def __init__(self, url: str):
        self.url = url

    def list(self) -> list[dict[str, str]]:
        status, _, body = request("GET", f"{self.url}/api/v1/list")
        assert status == 200, body
        out: list[dict[str, str]] = json.loads(body)
        return out

    def _query(self, ident: dict[str, str]) -> str:
        return urllib.parse.urlencode(ident)

    def get_raw_btf(self, ident: dict[str, str]) -> bytes:
        status, _, body = request("GET", f"{self.url}/api/v1/download?{self._query(ident)}")
        assert status == 200, body
        return body

    def get_custom_btf(self, ident: dict[str, str], bpf: bytes) -> bytes:
        body, ctype = multipart([("bpf", "from_memory", bpf)])
        status, _, data = request("POST", f"{self.url}/api/v1/customize?"
                                  f"{self._query(ident)}", body, {"Content-Type": ctype})
        assert status == 200, data
        return data


def archive_file(served: Served, key: tuple[str, str, str, str]) -> Any:
    for p in sorted(served.archive.rglob("*")):
        e = entry_for(p, served.archive) if p.is_file() and not p.is_symlink() else None
        if e is not None and e.key == key:
            return p
    raise AssertionError(f"{key} not in the archive")


def customize(served: Served, key: tuple[str, str, str, str], names: list[str],
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return post_objects(f"{served.url}/api/v1/customize?{query(key)}",
                        [(n, object_bytes(n)) for n in names], headers)


# -- btfhub-online's API -------------------------------------------------------------------


def test_health(served: Served) -> None:
    status, _, body = request("GET", f"{served.url}/monitoring/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "kernels": len(served.keys)}


def test_list(served: Served) -> None:
    rows = BtfhubOnlineClient(served.url).list()
    assert {(r["distribution"], r["distribution_version"], r["arch"], r["kernel_version"])
            for r in rows} == set(served.keys)
    assert all(set(r) == {"distribution", "distribution_version", "kernel_version", "arch"}
               for r in rows)
    assert {r["arch"] for r in rows} <= {"x86_64", "arm64"}
    assert not any(r["distribution"] in ("broken", "escape") for r in rows)
    # every kind is served: BTFHub tarballs, raw .btf.xz, a vmlinux, a kernel package
    kinds = {archive_file(served, k).name.rsplit(".", 1)[-1] for k in served.keys}
    assert {"xz", "deb"} <= kinds and any(k[3] and archive_file(served, k).name.startswith(
        "vmlinux-") for k in served.keys), kinds


def test_btfhub_online_client(served: Served) -> None:
    """List, then download and customize every kernel, untarring each answer as the Go
    client's users do: the first regular file is the BTF."""
    client = BtfhubOnlineClient(served.url)
    bpf = object_bytes("execsnoop.bpfel.o")
    for ident in client.list():
        key = (ident["distribution"], ident["distribution_version"], ident["arch"],
               ident["kernel_version"])
        path = archive_file(served, key)
        raw_tar = client.get_raw_btf(ident)
        _, raw = first_regular_file(raw_tar)
        assert raw == read_btf(path)
        if path.name.endswith(".btf.tar.xz"):
            assert raw_tar == path.read_bytes()  # BTFHub's file as it is
        else:  # made: exactly one regular file <kernel_version>.btf
            assert regular_files(raw_tar) == [f"{ident['kernel_version']}.btf"]
        custom = client.get_custom_btf(ident, bpf)
        assert regular_files(custom) == [f"{ident['kernel_version']}.btf"]
        _, small = first_regular_file(custom)
        assert small[:2] in (b"\x9f\xeb", b"\xeb\x9f") and len(small) < len(raw) // 20


def decisions(obj: str, raw_btf: bytes) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    """Each relocation's outcome; type ids of target_type_id relocations are left out
    (minimized BTF renumbers types by design)."""
    out = {}
    for r in relocate_object(obj, Target(from_bytes(raw_btf))):
        target = None if r.kind == "target_type_id" else r.target
        out[r.program, r.section, r.index] = (r.kind, r.result, r.local, target)
    return out


def object_path(name: str) -> str:
    return str(OBJECTS / name if (OBJECTS / name).exists() else PROGS / name)


@pytest.fixture(scope="module")
def kernel_keys(served: Served) -> list[tuple[str, str, str, str]]:
    return served.keys


def test_both_architectures(served: Served) -> None:
    arches = {k[2] for k in served.keys}
    assert "x86_64" in arches
    if any(k[0] == "android" for k in served.keys):
        assert "arm64" in arches


@pytest.mark.parametrize("index", range(8))  # 4 corpus, 2 Debian, 1 vmlinux, 1 .deb
def test_customized_btf_decides_as_the_full_btf(served: Served, index: int) -> None:
    """For each kernel: every relocation of every object, against the customized BTF
    (one object per request, and all together), is decided as against the whole BTF."""
    if index >= len(served.keys):
        pytest.skip("fewer kernels without the corpus")
    key = served.keys[index]
    full = read_btf(archive_file(served, key))
    names = [*COMMON, PER_ARCH[key[2]]]
    status, _, together = customize(served, key, names)
    assert status == 200, together
    _, together_btf = first_regular_file(together)
    for name in names:
        status, _, alone = customize(served, key, [name])
        assert status == 200, alone
        _, alone_btf = first_regular_file(alone)
        want = decisions(object_path(name), full)
        assert want, name
        assert decisions(object_path(name), alone_btf) == want, f"{name} on {key}"
        assert decisions(object_path(name), together_btf) == want, f"{name} (all) on {key}"


def test_arm64_is_aarch64(served: Served) -> None:
    arm = [k for k in served.keys if k[2] == "arm64"]
    if not arm:
        pytest.skip("no arm64 kernel without the corpus")
    key = arm[0]
    one = customize(served, key, ["execsnoop.bpfel.o"])
    other = customize(served, (*key[:2], "aarch64", key[3]), ["execsnoop.bpfel.o"])
    assert one[0] == other[0] == 200
    assert one[1]["etag"] == other[1]["etag"] and one[2] == other[2]
    status, _, body = request("GET", f"{served.url}/api/v1/download?"
                              f"{query((*key[:2], 'AArch64', key[3]))}")
    assert status == 200 and body == archive_file(served, key).read_bytes()


def test_a_kernel_filed_without_a_version_is_found_by_release(served: Served) -> None:
    """A btfhub-online client sends its os-release version; a kernel package found
    outside a BTFHub layout has none. The one BTF of that arch and release answers, as a
    bundle lookup decides, and says so; an exact match says exact."""
    unversioned = [k for k in served.keys if not k[1]]
    if not unversioned:
        pytest.skip("no kernel package in the archive (tests/data/btf has no kernels)")
    key = unversioned[0]
    asked = (key[0], "12", key[2], key[3])
    status, h, body = request("GET", f"{served.url}/api/v1/download?{query(asked)}")
    assert status == 200 and h["x-corebpf-match"] == "release"
    assert first_regular_file(body)[1] == read_btf(archive_file(served, key))
    status, h, body = customize(served, asked, ["execsnoop.bpfel.o"])
    assert status == 200 and h["x-corebpf-match"] == "release"
    assert customize(served, key, ["execsnoop.bpfel.o"])[2] == body
    status, h, _ = request("GET", f"{served.url}/api/v1/download?{query(served.keys[-1])}")
    assert status == 200 and h["x-corebpf-match"] == "exact"


# -- caching headers -----------------------------------------------------------------------


def test_cache_header_etag_and_304(served: Served) -> None:
    key = served.keys[0]
    names = ["syscount.bpfel.o"]
    status, h1, b1 = customize(served, key, names)
    assert status == 200 and h1["x-corebpf-cache"] == "miss"
    etag = h1["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) == 66
    status, h2, b2 = customize(served, key, names)
    assert status == 200 and h2["x-corebpf-cache"] == "hit" and h2["etag"] == etag
    assert b2 == b1
    for inm in (etag, f"W/{etag}", f'"{"0" * 64}", {etag}', "*"):
        status, h3, b3 = customize(served, key, names, {"If-None-Match": inm})
        assert status == 304 and b3 == b"" and h3["etag"] == etag, inm
    status, _, b4 = customize(served, key, names, {"If-None-Match": f'"{"0" * 64}"'})
    assert status == 200 and b4 == b1
    # the order of several objects does not matter; the set does
    both = customize(served, key, ["syscount.bpfel.o", "exitsnoop.bpfel.o"])
    again = customize(served, key, ["exitsnoop.bpfel.o", "syscount.bpfel.o"])
    assert both[1]["etag"] == again[1]["etag"] != etag
    assert again[1]["x-corebpf-cache"] == "hit"


def test_download_etag(served: Served) -> None:
    for key in served.keys[:1] + served.keys[-1:]:
        status, h, body = request("GET", f"{served.url}/api/v1/download?{query(key)}")
        assert status == 200 and h["content-type"] == "application/octet-stream"
        assert int(h["content-length"]) == len(body)
        status, _, body2 = request("GET", f"{served.url}/api/v1/download?{query(key)}",
                                    headers={"If-None-Match": h["etag"]})
        assert status == 304 and body2 == b""


# -- check and bundle ----------------------------------------------------------------------


def test_check_is_corebpf_check_json(served: Served) -> None:
    names = ["execsnoop.bpfel.o", "core_kinds.bpf.o"]
    status, h, body = post_objects(f"{served.url}/api/v1/check",
                                   [(n, object_bytes(n)) for n in names])
    assert status == 200 and h["content-type"].startswith("application/json")
    got = json.loads(body)
    cli = subprocess.run(
        [sys.executable, "-m", "corebpf", "check", "--json", "--jobs", "1", "--archive",
         str(served.archive), *(object_path(n) for n in names)],
        capture_output=True, text=True, cwd=ROOT)
    want = json.loads(cli.stdout)
    rows = {}
    for k in want["kernels"]:
        k["path"] = str(k["path"]).removeprefix(str(served.archive) + "/")
        for r in k["relocations"]:
            r["object"] = r["object"].rsplit("/", 1)[-1]
        rows[k["path"]] = k
    # the CLI reports the corrupt file too; the service serves only usable kernels
    assert rows.pop(BROKEN)["status"] == "failed"
    assert {k["path"]: k for k in got["kernels"]} == rows
    assert set(got) == {"kernels"}


def test_check_filters(served: Served) -> None:
    status, _, body = post_objects(f"{served.url}/api/v1/check?arch=x86_64",
                                   [("a.o", object_bytes("execsnoop.bpfel.o"))])
    assert status == 200
    kernels = json.loads(body)["kernels"]
    assert len(kernels) == sum(1 for k in served.keys if k[2] == "x86_64")
    status, h, body = post_objects(f"{served.url}/api/v1/check?distribution=nope",
                                   [("a.o", object_bytes("execsnoop.bpfel.o"))])
    assert status == 404 and "nope" in error_of(status, h, body)


def test_bundle(served: Served) -> None:
    names = ["opensnoop.bpfel.o", "core_arrays.bpf.o"]
    status, h, body = post_objects(f"{served.url}/api/v1/bundle",
                                   [(n, object_bytes(n)) for n in names])
    assert status == 200, body
    b = Bundle.from_bytes(body)
    assert sorted(k.key for k in b.kernels) == served.keys
    shas = [hashlib.sha256(object_bytes(n)).hexdigest() for n in names]
    assert [o["sha256"] for o in b.index["objects"]] == shas
    for key in served.keys[:2]:
        match = b.lookup(distro=key[0], version=key[1], arch=key[2], release=key[3])
        assert match is not None and match.rule == "exact"
        status, _, custom = customize(served, key, names)
        assert first_regular_file(custom)[1] == match.btf  # the same minimization
    # the same objects by hash, uploaded before: the same bundle
    q = "&".join(f"object={s}" for s in shas)
    status, h2, body2 = request("GET", f"{served.url}/api/v1/bundle?{q}")
    assert status == 200 and body2 == body and h2["etag"] == h["etag"]
    assert h2["x-corebpf-cache"] == "hit"
    status, _, _ = request("GET", f"{served.url}/api/v1/bundle?{q}",
                           headers={"If-None-Match": h["etag"]})
    assert status == 304
    status, _, arm = request("GET", f"{served.url}/api/v1/bundle?{q}&arch=aarch64")
    if any(k[2] == "arm64" for k in served.keys):
        assert status == 200
        assert {k.arch for k in Bundle.from_bytes(arm).kernels} == {"arm64"}


def test_bundle_unknown_or_bad_object_hash(served: Served) -> None:
    sha = hashlib.sha256(b"never uploaded").hexdigest()
    status, h, body = request("GET", f"{served.url}/api/v1/bundle?object={sha}")
    assert status == 404 and sha in error_of(status, h, body)
    for bad in ("xyz", "../" + "0" * 61, "0" * 65):
        status, h, body = request("GET", f"{served.url}/api/v1/bundle?"
                                  f"{urllib.parse.urlencode({'object': bad})}")
        assert status == 400 and "object" in error_of(status, h, body)
    status, h, body = request("GET", f"{served.url}/api/v1/bundle")
    assert status == 400 and "object" in error_of(status, h, body)


# -- monitoring and OpenAPI ----------------------------------------------------------------


def test_metrics(served: Served) -> None:
    key = served.keys[0]
    customize(served, key, ["execsnoop.bpfel.o"])
    customize(served, key, ["execsnoop.bpfel.o"])
    status, h, body = request("GET", f"{served.url}/monitoring/metrics")
    assert status == 200 and h["content-type"].startswith("text/plain")
    text = body.decode()
    for want in ('corebpf_requests_total{method="POST",route="/api/v1/customize",'
                 'status="200"}',
                 'corebpf_request_duration_seconds_bucket{le="0.01",route="/api/v1/customize"}',
                 'corebpf_cache_hits_total{kind="customize"}',
                 'corebpf_cache_misses_total{kind="customize"}',
                 'corebpf_job_duration_seconds_count{job="customize"}',
                 'corebpf_job_duration_seconds_count{job="index"}',
                 "corebpf_cache_bytes ", "corebpf_cache_entries ",
                 f"corebpf_kernels {float(len(served.keys))}",
                 "corebpf_index_problems 2.0",  # the corrupt file and the link out
                 "corebpf_jobs_coalesced_total "):
        assert want in text, want


def test_openapi(served: Served) -> None:
    status, _, body = request("GET", f"{served.url}/openapi.json")
    assert status == 200
    doc = json.loads(body)
    paths = doc["paths"]
    assert {"/api/v1/list", "/api/v1/download", "/api/v1/customize", "/api/v1/check",
            "/api/v1/bundle", "/monitoring/health", "/monitoring/metrics"} <= set(paths)
    op = paths["/api/v1/customize"]["post"]
    got = {p["name"]: p for p in op["parameters"]}
    assert set(got) == {"distribution", "distribution_version", "kernel_version", "arch"}
    for p in got.values():
        assert p["in"] == "query" and p["required"] and p["description"]
    body_schema = op["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body_schema["required"] == ["bpf"] and "bpf" in body_schema["properties"]
    assert {"200", "304", "400", "404", "413"} <= set(op["responses"])
    assert "object" in {p["name"] for p in paths["/api/v1/bundle"]["get"]["parameters"]}
    # the document carries the rules params enforces, so generated clients know them
    for name, p in got.items():
        assert p["schema"]["maxLength"] == 128 and p["schema"]["pattern"]
        assert p["schema"].get("minLength") == (1 if name in ("arch", "kernel_version")
                                                else None)
    (obj,) = [p for p in paths["/api/v1/bundle"]["get"]["parameters"]
              if p["name"] == "object"]
    assert obj["schema"]["items"]["pattern"] == "^[0-9a-fA-F]{64}$"
    assert (obj["schema"]["minItems"], obj["schema"]["maxItems"]) == (1, 64)
    assert body_schema["properties"]["bpf"]["minItems"] == 1
    status, _, page = request("GET", f"{served.url}/docs")
    assert status == 200 and b"swagger" in page.lower()


# -- bad input -----------------------------------------------------------------------------

TRAVERSAL = ["../../etc/passwd", "/etc/passwd", "..", "a\\..\\b", "a\0b", "a\x01b",
             "a\nb", "x" * 129, "a\x7fb"]


@pytest.mark.parametrize("param", range(4))
@pytest.mark.parametrize("value", TRAVERSAL, ids=lambda v: repr(v)[:12])
def test_traversal_shaped_parameters(served: Served, param: int, value: str) -> None:
    key = list(served.keys[0])
    key[param] = value
    name = ("distribution", "distribution_version", "arch", "kernel_version")[param]
    for method in ("GET", "POST"):
        if method == "GET":
            status, h, body = request("GET", f"{served.url}/api/v1/download?{query(key)}")
        else:
            status, h, body = post_objects(f"{served.url}/api/v1/customize?{query(key)}",
                                           [("x.o", object_bytes("execsnoop.bpfel.o"))])
        assert status == 400, (value, body)
        assert name in error_of(status, h, body)


def test_missing_empty_and_repeated_parameters(served: Served) -> None:
    key = served.keys[0]
    q = dict(zip(("distribution", "distribution_version", "arch", "kernel_version"), key,
                 strict=True))
    for name in q:
        rest = urllib.parse.urlencode({k: v for k, v in q.items() if k != name})
        status, h, body = request("GET", f"{served.url}/api/v1/download?{rest}")
        assert status == 400 and f"'{name}' is missing" in error_of(status, h, body)
    for name in ("arch", "kernel_version"):
        empty = urllib.parse.urlencode(q | {name: ""})
        status, h, body = request("GET", f"{served.url}/api/v1/download?{empty}")
        assert status == 400 and name in error_of(status, h, body)
    twice = urllib.parse.urlencode(q) + "&arch=arm64"
    status, h, body = request("GET", f"{served.url}/api/v1/download?{twice}")
    assert status == 400 and "2 times" in error_of(status, h, body)


def test_unknown_kernel_is_404_naming_the_key(served: Served) -> None:
    key = ("ubuntu", "99.04", "x86_64", "9.9.9-1-generic")
    for status, h, body in (
            request("GET", f"{served.url}/api/v1/download?{query(key)}"),
            customize(served, key, ["execsnoop.bpfel.o"])):
        assert status == 404
        text = error_of(status, h, body)
        assert all(part in text for part in key), text


def test_link_out_of_the_archive_is_never_served(served: Served) -> None:
    assert (served.archive / ESCAPE).is_symlink()
    key = ("escape", "1", "x86_64", "6.6.6-escape")
    status, h, body = request("GET", f"{served.url}/api/v1/download?{query(key)}")
    assert status == 404 and "6.6.6-escape" in error_of(status, h, body)
    status, h, body = customize(served, key, ["execsnoop.bpfel.o"])
    assert status == 404


def test_corrupt_archive_file_is_reported(served: Served) -> None:
    for status, h, body in (
            request("GET", f"{served.url}/api/v1/download?{query(BROKEN_KEY)}"),
            customize(served, BROKEN_KEY, ["execsnoop.bpfel.o"])):
        assert status == 500
        text = error_of(status, h, body)
        assert BROKEN in text and "corrupt" in text and str(served.archive) not in text


def elf_objects() -> Iterator[tuple[str, bytes, str]]:
    """(name, bytes, what corebpf's message says) of uploads that are not BPF objects."""
    real = object_bytes("execsnoop.bpfel.o")
    yield "ls", open("/bin/ls", "rb").read(), "not a BPF object"
    yield "text.o", b"hello, world\n" * 10, "not an ELF file"
    yield "cut.o", real[: len(real) // 3], "cut.o"
    yield "zeros.o", bytes(4096), "not an ELF file"


@pytest.mark.parametrize("case", list(elf_objects()), ids=lambda c: c[0])
def test_non_bpf_object_is_400_with_corebpf_message(served: Served,
                                                     case: tuple[str, bytes, str]) -> None:
    name, data, says = case
    for route in ("customize?" + query(served.keys[0]), "check", "bundle"):
        status, h, body = post_objects(f"{served.url}/api/v1/{route}", [(name, data)])
        assert status == 400, (route, body)
        text = error_of(status, h, body)
        assert says in text and name in text, text
        assert "/cache/" not in text and str(served.server.cache) not in text
    # not kept: it cannot be bundled by hash
    sha = hashlib.sha256(data).hexdigest()
    status, _, _ = request("GET", f"{served.url}/api/v1/bundle?object={sha}")
    assert status == 404


def test_bad_bodies(served: Served) -> None:
    url = f"{served.url}/api/v1/customize?{query(served.keys[0])}"
    real = object_bytes("execsnoop.bpfel.o")
    cases = [
        (real, {"Content-Type": "application/octet-stream"}, "multipart/form-data"),
        (real, {}, "multipart/form-data"),
        (b"--x\r\n", {"Content-Type": "multipart/form-data"}, "boundary"),
        (multipart([("file", "a.o", real)], "b0")[0],
         {"Content-Type": "multipart/form-data; boundary=b0"}, "no field 'bpf'"),
        (b"garbage", {"Content-Type": "multipart/form-data; boundary=b0"}, "multipart"),
        (multipart([("bpf", "a.o", real)], "b0")[0][:-20],
         {"Content-Type": "multipart/form-data; boundary=b0"}, "closing boundary"),
        (multipart([("bpf", "a.o", b"")], "b0")[0],
         {"Content-Type": "multipart/form-data; boundary=b0"}, "empty"),
    ]
    for body, headers, says in cases:
        status, h, answer = request("POST", url, body, headers)
        assert status == 400, (says, answer)
        assert says in error_of(status, h, answer), says


def test_upload_over_the_limit_is_413(served: Served) -> None:
    """The server runs with --max-upload 1M: a declared length over it, and a chunked
    body that grows over it."""
    url = f"{served.url}/api/v1/customize?{query(served.keys[0])}"
    big = object_bytes("execsnoop.bpfel.o") + bytes((1 << 20) + 1)
    status, h, body = post_objects(url, [("big.o", big)])
    assert status == 413 and "1048576" in error_of(status, h, body)
    payload, ctype = multipart([("bpf", "big.o", big)])
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    try:
        def chunks() -> Iterator[bytes]:
            for i in range(0, len(payload), 65536):
                yield payload[i:i + 65536]

        conn.request("POST", f"{u.path}?{u.query}", body=chunks(),
                     headers={"Content-Type": ctype}, encode_chunked=True)
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 413
        assert "1048576" in error_of(resp.status, {k.lower(): v for k, v in
                                                   resp.getheaders()}, data)
    finally:
        conn.close()
    # just under the limit is fine
    ok = object_bytes("execsnoop.bpfel.o")
    assert post_objects(url, [("ok.o", ok)])[0] == 200


def test_unknown_route_and_method(served: Served) -> None:
    status, h, body = request("GET", f"{served.url}/api/v1/nothing")
    assert status == 404 and "/api/v1/nothing" in error_of(status, h, body)
    status, h, body = request("DELETE", f"{served.url}/api/v1/list")
    assert status == 405 and "DELETE" in error_of(status, h, body)
    assert h["allow"] == "GET"  # RFC 9110: a 405 lists what the resource takes
    status, h, body = request("GET", f"{served.url}/api/v1/customize?{query(served.keys[0])}")
    assert status == 405 and h["allow"] == "POST"
    status, h, body = request("OPTIONS", f"{served.url}/api/v1/bundle")
    assert status == 405 and h["allow"] == "GET, POST"  # two routes, one path


def test_object_whose_btf_is_corrupt_is_400(served: Served) -> None:
    """An object whose ELF parses but whose BTF strings are damaged (found by the fuzz
    test: the kernel's read named the object's BTF error, answered as a corrupt kernel)."""
    obj = bytearray(object_bytes("core_poison.bpf.o"))
    obj[1209] = 1
    for route in ("customize?" + query(served.keys[-1]), "check", "bundle"):
        status, h, body = post_objects(f"{served.url}/api/v1/{route}", [("m.o", bytes(obj))])
        assert status == 400, (route, body)
        text = error_of(status, h, body)
        assert "m.o" in text and "string offset" in text and "archive" not in text
