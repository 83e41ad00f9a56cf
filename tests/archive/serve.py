"""A real `corebpf serve` for client tests: started as a user starts it (a subprocess on
loopback), over an archive in BTFHub layout that holds this kernel's BTF, and stopped
with SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT

RELEASE = os.uname().release


def btfhub_tarball(raw: bytes, release: str) -> bytes:
    """A BTFHub ``<release>.btf.tar.xz``: one regular file ``<release>.btf``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        info = tarfile.TarInfo(f"{release}.btf")
        info.size = len(raw)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def btfhub_archive(root: Path, raw: bytes, *, distro: str = "debian", version: str = "12",
                   arch: str = "x86_64", release: str = RELEASE) -> Path:
    """``root/<distro>/<version>/<arch>/<release>.btf.tar.xz`` holding ``raw``."""
    path = root / distro / version / arch / f"{release}.btf.tar.xz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(btfhub_tarball(raw, release))
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/monitoring/health", timeout=2) as r:
            return r.status == 200 and json.loads(r.read()).get("status") == "ok"
    except (OSError, ValueError):
        return False


@contextmanager
def serve(archive: Path, cache: Path, *args: str, port: int | None = None,
          timeout: float = 120) -> Iterator[str]:
    """`corebpf serve --archive ARCHIVE --cache CACHE ARGS` on 127.0.0.1; yields its URL
    once /monitoring/health answers; SIGTERM on the way out."""
    from corebpf.errors import Error
    from corebpf.service import require_extra

    try:
        require_extra()
    except Error as e:
        pytest.skip(str(e))
    port = free_port() if port is None else port
    url = f"http://127.0.0.1:{port}"
    log = cache.parent / f"serve-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "corebpf", "serve", "--archive", str(archive), "--host",
             "127.0.0.1", "--port", str(port), "--cache", str(cache), "--jobs", "1", *args],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(url):
            if proc.poll() is not None:
                raise AssertionError(f"corebpf serve exited {proc.returncode}:\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"corebpf serve not ready in {timeout} s:\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
