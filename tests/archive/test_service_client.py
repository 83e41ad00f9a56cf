"""corebpf.archive.service.ServiceClient and `corebpf archive fetch`, against a real
`corebpf serve` on loopback (tests/archive/serve.py) whose archive holds this kernel's BTF
in BTFHub layout: list, download, customize (deciding every relocation as the whole BTF
does), check, bundle; the local cache (ETag revalidation, 304, a stale copy when the
service is gone); every failure a ServiceClientError that names the URL, the status and
the server's message. Answers that are not what the API promises come from a small
misbehaving HTTP peer in the test (garbage is not something the real server sends)."""

from __future__ import annotations

import http.server
import io
import os
import re
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.archive.bundle import Bundle, NoBTFError, select_core_btf
from corebpf.archive.check import relocate_object
from corebpf.archive.service import ServiceClient, ServiceClientError, default_cache_dir
from corebpf.archive.sources import normalize_arch
from corebpf.cli import main
from corebpf.core import Target
from corebpf.errors import ArchiveError
from tests.archive.serve import btfhub_archive, btfhub_tarball, free_port, serve
from tests.conftest import KERNEL_BTF, PROGS

RELEASE = os.uname().release
ARCH = normalize_arch(os.uname().machine)
KEY = ("debian", "12", ARCH, RELEASE)
OBJ = PROGS / "execsnoop.bpf.o"
GONE = ("debian", "12", ARCH, "0.0.0-corebpf-missing")


@pytest.fixture(scope="module")
def kernel_raw() -> bytes:
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel has no /sys/kernel/btf/vmlinux to serve")
    return btf.load(KERNEL_BTF).raw


@pytest.fixture(scope="module")
def archive(kernel_raw: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return btfhub_archive(tmp_path_factory.mktemp("archive"), kernel_raw, arch=ARCH)


@pytest.fixture(scope="module")
def server(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(archive, tmp_path_factory.mktemp("serve") / "cache") as url:
        yield url


def _client(url: str, tmp_path: Path, **kw: object) -> ServiceClient:
    kw.setdefault("cache", tmp_path / "client-cache")
    return ServiceClient(url, **kw)  # type: ignore[arg-type]


# -- the API against the real server ------------------------------------------------------


def test_list_has_this_kernel(server: str, tmp_path: Path) -> None:
    c = _client(server, tmp_path)
    assert {"distribution": "debian", "distribution_version": "12",
            "kernel_version": RELEASE, "arch": ARCH} in c.list()
    assert KEY in c.kernels()
    assert c.health()["status"] == "ok"


def test_download_is_the_kernels_whole_btf(server: str, kernel_raw: bytes,
                                           tmp_path: Path) -> None:
    c = _client(server, tmp_path)
    assert c.download(KEY) == kernel_raw
    # aarch64 is arm64 everywhere; the client sends the normalized name
    assert c.fetch((KEY[0], KEY[1], os.uname().machine, RELEASE)).btf == kernel_raw


def _decisions(target: btf.Spec) -> list[tuple[object, ...]]:
    return [(r.key, r.result, r.local, r.target)
            for r in relocate_object(str(OBJ), Target(target))]


def test_customize_decides_every_relocation_as_the_whole_btf(server: str, kernel_raw: bytes,
                                                             tmp_path: Path) -> None:
    raw = _client(server, tmp_path).customize(KEY, [OBJ])
    assert len(raw) < len(kernel_raw) // 100
    got = _decisions(btf.from_bytes(raw))
    assert got and got == _decisions(btf.from_bytes(kernel_raw))


def test_objects_go_as_paths_bytes_or_parsed(server: str, tmp_path: Path) -> None:
    from corebpf.obj import ObjectSpec

    c = _client(server, tmp_path, cache=False)
    one = c.customize(KEY, [OBJ])
    assert c.customize(KEY, [OBJ.read_bytes()]) == one
    assert c.customize(KEY, [ObjectSpec.load(OBJ)]) == one


def test_answers_are_cached_and_revalidated(server: str, tmp_path: Path) -> None:
    c = _client(server, tmp_path)
    first = c.fetch(KEY, [OBJ])
    assert first.origin == "network" and first.etag
    files = sorted((tmp_path / "client-cache").iterdir())
    assert len(files) == 1 and not files[0].name.startswith(".")  # no temp file left
    again = _client(server, tmp_path).fetch(KEY, [OBJ])  # a new process, the same cache
    assert again.origin == "revalidated" and again.btf == first.btf
    assert again.etag == first.etag
    # a damaged cache file is not trusted: fetched anew and rewritten
    files[0].write_bytes(files[0].read_bytes()[:-10] + b"0123456789")
    assert _client(server, tmp_path).fetch(KEY, [OBJ]).origin == "network"
    assert _client(server, tmp_path).fetch(KEY, [OBJ]).origin == "revalidated"


def test_a_cached_answer_outlives_the_service(archive: Path, tmp_path: Path) -> None:
    with serve(archive, tmp_path / "serve-cache") as url:
        got = _client(url, tmp_path).fetch(KEY, [OBJ])
    stale = _client(url, tmp_path).fetch(KEY, [OBJ])
    assert stale.origin == "stale" and stale.btf == got.btf
    with pytest.raises(ServiceClientError, match="cannot reach the BTF service"):
        _client(url, tmp_path, cache=False).fetch(KEY, [OBJ])
    with pytest.raises(ServiceClientError, match="cannot reach"):  # never cached
        _client(url, tmp_path).fetch(KEY)


def test_default_cache_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == str(tmp_path / "corebpf" / "service")


def _matrix(doc: dict[str, object]) -> list[tuple[object, ...]]:
    """A check document's decisions, without file names (the server names its own
    archive's paths and its stored uploads)."""
    drop = {"object", "path"}
    return [(k["kernel"], k["status"],  # type: ignore[index]
             [sorted((n, v) for n, v in r.items() if n not in drop)
              for r in k["relocations"]])  # type: ignore[index]
            for k in doc["kernels"]]  # type: ignore[attr-defined]


def test_check_is_corebpf_checks_matrix(server: str, archive: Path, tmp_path: Path) -> None:
    from corebpf.archive.check import check_archive

    doc = _client(server, tmp_path).check([OBJ])
    local = check_archive([OBJ], archive, jobs=1, progress=False).to_json()
    assert set(doc) == set(local)
    assert _matrix(doc) == _matrix(local)
    assert doc["kernels"][0]["kernel"] == RELEASE and doc["kernels"][0]["status"] == "ok"


def test_bundle(server: str, tmp_path: Path) -> None:
    c = _client(server, tmp_path)
    out = tmp_path / "b.tar.xz"
    assert c.bundle([OBJ], out) == str(out)
    match = Bundle.open(out).lookup(distro=KEY[0], version=KEY[1], arch=ARCH,
                                    release=RELEASE)
    assert match is not None and match.btf == c.customize(KEY, [OBJ])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# -- errors from the real server ----------------------------------------------------------


def test_an_unknown_kernel_is_a_404_naming_the_key(server: str, tmp_path: Path) -> None:
    for objects in ((), (OBJ,)):
        with pytest.raises(ServiceClientError) as e:
            _client(server, tmp_path).fetch(GONE, objects)
        assert e.value.status == 404 and GONE[3] in str(e.value)
        assert e.value.server_message and server in str(e.value)


def test_a_non_bpf_object_is_a_400_with_the_servers_message(server: str,
                                                             tmp_path: Path) -> None:
    with pytest.raises(ServiceClientError) as e:
        _client(server, tmp_path).customize(KEY, [b"this is not an ELF object"])
    assert e.value.status == 400 and e.value.server_message
    assert e.value.server_message in str(e.value)


def test_a_service_that_is_down(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceClientError) as e:
        _client(url, tmp_path).list()
    assert str(e.value).startswith(f"{url}: cannot reach the BTF service")
    assert e.value.status is None


@pytest.mark.parametrize("url", ["ftp://example.org/", "localhost:8080", "http://", ""])
def test_a_url_that_is_no_service_url(url: str) -> None:
    with pytest.raises(ServiceClientError, match="not a BTF service URL"):
        ServiceClient(url)


# -- answers the API does not promise: a misbehaving peer ---------------------------------


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE
            ) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if kind == tarfile.SYMTYPE:
        info.linkname = "/etc/passwd"
    return info, data


class _Peer(http.server.BaseHTTPRequestHandler):
    #: path -> (status, headers, body)
    answers: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        status, headers, body = self.answers[self.path.split("?")[0]]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def peer() -> Iterator[tuple[str, Callable[..., None]]]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Peer)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()

    def answer(path: str, body: bytes, status: int = 200,
               headers: dict[str, str] | None = None) -> None:
        _Peer.answers[path] = (status, headers or {}, body)

    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", answer
    finally:
        srv.shutdown()
        srv.server_close()
        _Peer.answers = {}


@pytest.mark.parametrize(("body", "message"), [
    (b"garbage", "not an xz-compressed BTF tarball"),
    (b"\xfd7zXZ\x00" + b"\0" * 40, "not an xz-compressed BTF tarball"),
    ("symlink", "is not a regular file"),
    ("traversal", "leaves the tarball"),
    ("two", "expected one .btf file in the tarball, found"),
    ("notbtf", "not BTF (magic"),
    ("badheader", "corrupt BTF header"),
])
def test_a_download_that_is_not_a_btf_tarball(peer: tuple[str, Callable[..., None]],
                                              tmp_path: Path, body: object,
                                              message: str) -> None:
    url, answer = peer
    small = btf.load(OBJ).raw
    bodies = {
        "symlink": lambda: _tar([_member("x.btf", kind=tarfile.SYMTYPE)]),
        "traversal": lambda: _tar([_member("../x.btf", small)]),
        "two": lambda: _tar([_member("a.btf", small), _member("b.btf", small)]),
        "notbtf": lambda: btfhub_tarball(b"hello, world, not BTF at all", "x"),
        "badheader": lambda: btfhub_tarball(small[:24] + b"\0" * 4, "x"),
    }
    answer("/api/v1/download", bodies[body]() if isinstance(body, str) else body)
    with pytest.raises(ArchiveError, match=re.escape(message)) as e:
        _client(url, tmp_path).download(KEY)
    assert url in str(e.value)
    assert not (tmp_path / "client-cache").exists()  # nothing cached


def test_json_that_is_not_the_apis(peer: tuple[str, Callable[..., None]],
                                   tmp_path: Path) -> None:
    url, answer = peer
    c = _client(url, tmp_path)
    answer("/api/v1/list", b"<html>hello</html>")
    with pytest.raises(ServiceClientError, match="the answer is not JSON"):
        c.list()
    answer("/api/v1/list", b'{"kernels": []}')
    with pytest.raises(ServiceClientError, match="not a JSON list"):
        c.list()
    answer("/api/v1/list", b'[{"distribution": "debian"}]')
    with pytest.raises(ServiceClientError, match="row #0 is not a kernel"):
        c.list()
    answer("/api/v1/check", b"[]")
    with pytest.raises(ServiceClientError, match="not a JSON object"):
        c.check([OBJ])
    answer("/api/v1/bundle", b"garbage")
    with pytest.raises(ArchiveError, match="not an xz-compressed bundle"):
        c.bundle([OBJ], tmp_path / "b.tar.xz")
    assert not (tmp_path / "b.tar.xz").exists()


def test_errors_without_json_and_oversized_answers(peer: tuple[str, Callable[..., None]],
                                                   tmp_path: Path) -> None:
    url, answer = peer
    c = _client(url, tmp_path)
    answer("/api/v1/list", b"upstream exploded", status=502)
    with pytest.raises(ServiceClientError, match="HTTP 502: upstream exploded") as e:
        c.list()
    assert e.value.status == 502
    answer("/api/v1/list", b'{"error": "the archive is being reindexed"}', status=503)
    with pytest.raises(ServiceClientError, match="HTTP 503: the archive is being reindexed"):
        c.list()
    answer("/api/v1/download", b"x", headers={"Content-Length": str(1 << 40)})
    with pytest.raises(ServiceClientError, match=r"more than the \d+ accepted"):
        c.download(KEY)
    answer("/api/v1/customize", b"", status=304)
    with pytest.raises(ServiceClientError, match="304 Not Modified without a cached copy"):
        c.customize(KEY, [OBJ])


def test_a_peer_that_does_not_speak_http(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        port = s.getsockname()[1]

        def talk() -> None:
            conn, _ = s.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        t = threading.Thread(target=talk, daemon=True)
        t.start()
        with pytest.raises(ServiceClientError, match="no valid HTTP answer"):
            _client(f"http://127.0.0.1:{port}", tmp_path).list()
        t.join(10)


# -- select_core_btf: the service comes last, and only when asked -------------------------


def test_select_core_btf_asks_the_service_last(server: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    nothing = dict(kernel_btf="/nonexistent/vmlinux", vmlinux_paths=(), distro=KEY[0],
                   version=KEY[1])
    choice = select_core_btf(service=server, objects=[OBJ], **nothing)  # type: ignore[arg-type]
    assert choice.kind == "service" and choice.key == KEY
    assert choice.source.startswith(f"service {server} entry {'/'.join(KEY)} (minimized "
                                    "for execsnoop.bpf.o; fetched)")
    assert (tmp_path / "corebpf" / "service").is_dir()
    with pytest.raises(NoBTFError) as e:
        select_core_btf(service=server, objects=[OBJ], **{**nothing,  # type: ignore[arg-type]
                                                          "release": GONE[3]})
    assert f"service {server}" in str(e.value) or server in str(e.value)
    assert "HTTP 404" in str(e.value)
    # the kernel's own BTF wins; the service is not even asked
    assert select_core_btf(service=f"http://127.0.0.1:{free_port()}").kind == "kernel"


def test_load_asks_no_service_on_a_kernel_with_btf(tmp_path: Path) -> None:
    """Opt-in and last: with the kernel's BTF in sight, a service that is down is never
    contacted."""
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel has no /sys/kernel/btf/vmlinux")
    from corebpf.loader import load

    with load(OBJ, service=f"http://127.0.0.1:{free_port()}") as coll:
        assert coll.programs


# -- corebpf archive fetch ----------------------------------------------------------------


def test_cli_fetch(server: str, kernel_raw: bytes, tmp_path: Path,
                   capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    key = ["--distro", "debian", "--distro-version", "12"]
    whole = tmp_path / "whole.btf"
    assert main(["archive", "fetch", "--service", server, *key, "-o", str(whole)]) == 0
    assert whole.read_bytes() == kernel_raw
    out = capsys.readouterr().out
    assert out.startswith(f"{whole}: {len(kernel_raw)} bytes of raw BTF of "
                          f"{'/'.join(KEY)} (whole) from {server}")
    mini = tmp_path / "mini.btf"
    args = ["archive", "fetch", "--service", server, *key, "--object", str(OBJ), "-o",
            str(mini)]
    assert main(args) == 0
    assert "(minimized for 1 object)" in capsys.readouterr().out
    assert _decisions(btf.load(mini, index_cache=False)) == \
        _decisions(btf.from_bytes(kernel_raw))
    assert main(args) == 0
    assert "(cached copy, current)" in capsys.readouterr().out
    assert main(["archive", "fetch", "--service", server, *key, "--release", GONE[3],
                 "-o", str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("corebpf: error: ") and GONE[3] in err and "404" in err
    down = f"http://127.0.0.1:{free_port()}"
    assert main(["archive", "fetch", "--service", down, *key, "-o", str(tmp_path / "x")]) == 1
    assert f"{down}: cannot reach the BTF service" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
