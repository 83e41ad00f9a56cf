"""A real ``corebpf serve`` on loopback for the service tests, started as a user starts it
(a subprocess, ``--port 0``, the address read from its first line, then
/monitoring/health), over an archive of real kernels; and a small HTTP client written
with http.client, as a btfhub-online client would talk to it."""

from __future__ import annotations

import http.client
import io
import json
import lzma
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CORPUS, PROGS, ROOT, debian_files

pytest.importorskip("fastapi", reason="the service extra is not installed "
                    "(pip install 'corebpf[service]')")

OBJECTS = ROOT / "corebpf" / "tools" / "objects"
#: corpus kernels (arm64 and x86_64): (path in the corpus, arch as listed)
CORPUS_PICKS = [
    "android/12/arm64/a12-5.10-lts-arm64.btf.tar.xz",
    "centos/8/aarch64/4.18.0-147.5.1.el8_1.aarch64.btf.tar.xz",
    "kylin/V10/aarch64/4.19.90-24.4.v2101.ky10.aarch64.btf.tar.xz",
    "bclinux/21.10U3/x86_64/4.19.90-2107.6.0.0248.35.oe1.bclinux.x86_64.btf.tar.xz",
]
#: a truncated BTFHub file: corrupt, listed by nobody, reported when asked for
BROKEN = "broken/1/x86_64/5.0.0-broken.btf.tar.xz"
BROKEN_KEY = ("broken", "1", "x86_64", "5.0.0-broken")
#: a link out of the archive: never indexed, never read
ESCAPE = "escape/1/x86_64/6.6.6-escape.btf"
START_TIMEOUT = 120.0


def object_bytes(name: str) -> bytes:
    """An object by name: corebpf's tools' (``execsnoop.bpfel.o``) or tests/progs'."""
    path = OBJECTS / name if (OBJECTS / name).exists() else PROGS / name
    return path.read_bytes()


def build_archive(root: Path, *, corpus: bool = True, broken: bool = True,
                  escape: bool = True, debian: int = 2, vmlinux: bool = False,
                  package: bool = False) -> list[tuple[str, str, str, str]]:
    """A BTFHub-layout tree: corpus kernels (as BTFHub ships them), Debian kernels (raw
    .btf.xz, served as made tarballs), a vmlinux ELF file, a Debian kernel package, a
    corrupt file and a link leaving the tree. Returns the keys that should be served."""
    keys = []
    if package:  # a linux-image .deb as Debian lays it out, a real kernel's BTF inside
        from corebpf.archive.sources import entry_for, read_btf
        from corebpf.btf.vmlinux import vmlinux_elf
        from tests.archive.test_sources import deb

        src = debian_files()[2 % len(debian_files())]
        release = src.name.removesuffix(".btf.xz")
        dest = root / "pool" / f"linux-image-{release}-unsigned_6.1.158-1_amd64.deb"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(deb(release, vmlinux_elf(read_btf(src))))
        entry = entry_for(dest, root)
        assert entry is not None and entry.release == release, entry
        keys.append(entry.key)
    if vmlinux:  # another kind: an ELF with .BTF, named vmlinux-<release>
        from corebpf.archive.sources import read_btf
        from corebpf.btf.vmlinux import vmlinux_elf

        src = debian_files()[-1]
        release = src.name.removesuffix(".btf.xz")
        dest = root / "fedora" / "39" / "x86_64" / f"vmlinux-{release}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(vmlinux_elf(read_btf(src)))
        keys.append(("fedora", "39", "x86_64", release))
    for deb in debian_files()[:debian]:
        dest = root / "debian" / "12" / "x86_64" / deb.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(deb, dest)
        keys.append(("debian", "12", "x86_64", deb.name.removesuffix(".btf.xz")))
    if corpus and CORPUS.is_dir():
        for rel in CORPUS_PICKS:
            if (CORPUS / rel).exists():
                dest = root / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(CORPUS / rel, dest)
                d, v, a, name = rel.split("/")
                keys.append((d, v, "arm64" if a == "aarch64" else a,
                             name.removesuffix(".btf.tar.xz")))
    if broken:
        dest = root / BROKEN
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(lzma.compress(b"\0" * 100000)[:2000])
    if escape:
        dest = root / ESCAPE
        dest.parent.mkdir(parents=True, exist_ok=True)
        target = "/sys/kernel/btf/vmlinux" if os.path.exists("/sys/kernel/btf/vmlinux") \
            else str(debian_files()[0])
        os.symlink(target, dest)
    return sorted(keys)


class Server:
    """``corebpf serve`` in a subprocess; ``url`` once it answers /monitoring/health."""

    def __init__(self, archive: Path, cache: Path, *args: str):
        self.archive = archive
        self.cache = cache
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.stderr_path = cache.parent / f"{cache.name}-{uuid.uuid4().hex[:8]}.stderr"

    def start(self) -> Server:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._err = open(self.stderr_path, "w")
        script = Path(sys.executable).parent / "corebpf"  # the console script users run
        command = [str(script)] if script.exists() else [sys.executable, "-m", "corebpf"]
        jobs = () if "--scheduler" in self.args else ("--jobs", "2")
        self.proc = subprocess.Popen(
            [*command, "serve", "--archive", str(self.archive), "--cache", str(self.cache),
             "--port", "0", *jobs, *self.args],
            stdout=subprocess.PIPE, stderr=self._err, text=True, env=env, cwd=ROOT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "corebpf serve: http://127.0.0.1:PORT (...)"
        if not line:
            self.proc.wait(timeout=30)
            raise AssertionError(f"corebpf serve exited {self.proc.returncode}: "
                                 f"{self.stderr()}")
        self.url = line.split()[2]
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                status, _, body = request("GET", self.url + "/monitoring/health")
                if status == 200 and json.loads(body)["status"] == "ok":
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"corebpf serve did not come up: {self.stderr()}")
            time.sleep(0.05)

    def stderr(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit status."""
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._err.close()
        self.proc = None
        return code

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# -- a client in the standard library ------------------------------------------------------


def request(method: str, url: str, body: bytes | None = None,
            headers: Mapping[str, str] | None = None, timeout: float = 120.0
            ) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body); never raises for a status."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        path = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def multipart(files: Sequence[tuple[str, str, bytes]], boundary: str = ""
              ) -> tuple[bytes, str]:
    """A multipart/form-data body of (field, filename, bytes) parts and its
    Content-Type, as resty's SetFileReader (btfhub-online-go) builds one."""
    boundary = boundary or uuid.uuid4().hex
    out = io.BytesIO()
    for fieldname, filename, data in files:
        out.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{fieldname}\"; "
                  f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream"
                  "\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def query(key: Sequence[str]) -> str:
    """btfhub-online's four parameters for a (distro, version, arch, release) key."""
    names = ("distribution", "distribution_version", "arch", "kernel_version")
    return urllib.parse.urlencode(dict(zip(names, key, strict=True)))


def post_objects(url: str, objects: Sequence[tuple[str, bytes]],
                 headers: Mapping[str, str] | None = None
                 ) -> tuple[int, dict[str, str], bytes]:
    body, ctype = multipart([("bpf", name, data) for name, data in objects])
    return request("POST", url, body, {"Content-Type": ctype, **(headers or {})})


def first_regular_file(tar_xz: bytes) -> tuple[str, bytes]:
    """What btfhub-online's Go clients do with an answer: untar the .tar.xz and take its
    first regular file."""
    with tarfile.open(fileobj=io.BytesIO(tar_xz), mode="r:xz") as tar:
        for m in tar:
            if m.isreg():
                f = tar.extractfile(m)
                assert f is not None
                return m.name, f.read()
    raise AssertionError("no regular file in the tarball")


def regular_files(tar_xz: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(tar_xz), mode="r:xz") as tar:
        return [m.name for m in tar if m.isreg()]


def error_of(status: int, headers: Mapping[str, str], body: bytes) -> str:
    """The message of an error answer, checking it is ``{"error": str}`` JSON."""
    assert headers.get("content-type", "").startswith("application/json"), (status, body)
    doc: Any = json.loads(body)
    assert isinstance(doc, dict) and set(doc) == {"error"} and isinstance(doc["error"], str)
    assert doc["error"]
    return str(doc["error"])


# -- the shared server ---------------------------------------------------------------------


class Served:
    """The session's server and what its archive holds."""

    def __init__(self, server: Server, keys: list[tuple[str, str, str, str]]):
        self.server = server
        self.url = server.url
        self.keys = keys
        self.archive = server.archive


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for the tests that do not change its archive or need its own cache."""
    if not debian_files():
        pytest.skip("tests/data/btf has no Debian kernels")
    root = tmp_path_factory.mktemp("served")
    keys = build_archive(root / "archive", vmlinux=True, package=True)
    server = Server(root / "archive", root / "cache", "--max-upload", "1M")
    with server:
        yield Served(server, keys)
