"""``corebpf serve`` as a command: its options, and every start-up failure an error
message (exit status 1 or a usage error), never a traceback."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from corebpf.cli.serve import size_arg
from tests.conftest import ROOT, debian_files


def serve(*args: str, code: str = "") -> subprocess.CompletedProcess[str]:
    prog = (code + "\nfrom corebpf.cli import main\nimport sys\n"
            f"sys.exit(main(['serve', *{list(args)!r}]))")
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_sizes() -> None:
    assert size_arg("1048576") == 1 << 20
    assert size_arg("64K") == 64 << 10
    assert size_arg("16M") == size_arg("16MiB") == size_arg("16mb") == 16 << 20
    assert size_arg("1G") == 1 << 30
    for bad in ("lots", "-1", "0", "1.5M", "16X"):
        with pytest.raises(argparse.ArgumentTypeError):
            size_arg(bad)


def test_missing_extra_is_a_clean_error(tmp_path: Path) -> None:
    r = serve("--archive", str(tmp_path), code="import sys; sys.modules['fastapi'] = None")
    assert r.returncode == 1
    assert "pip install 'corebpf[service]'" in r.stderr and "Traceback" not in r.stderr


def test_missing_archive(tmp_path: Path) -> None:
    r = serve("--archive", str(tmp_path / "nope"), "--cache", str(tmp_path / "c"),
              "--port", "0", "--jobs", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{tmp_path / 'nope'}: no such file or directory" in r.stderr


def test_unusable_cache(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    r = serve("--archive", str(tmp_path), "--cache", str(tmp_path / "file"),
              "--port", "0", "--jobs", "1")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "cannot use as the cache" in r.stderr


def test_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = serve("--archive", str(tmp_path), "--port", str(port))
    assert r.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in r.stderr


def test_usage_errors(tmp_path: Path) -> None:
    r = serve("--archive", str(tmp_path), "--jobs", "2", "--scheduler", "tcp://x:1")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr
    r = serve("--archive", str(tmp_path), "--max-upload", "lots")
    assert r.returncode == 2 and "is not a size" in r.stderr
    r = serve("--archive", str(tmp_path), "--rescan", "-1")
    assert r.returncode == 2


def test_one_file_archive(tmp_path: Path) -> None:
    """--archive FILE serves that kernel alone."""
    if not debian_files():
        pytest.skip("tests/data/btf has no Debian kernels")
    from tests.service.conftest import Server, request

    one = tmp_path / debian_files()[0].name
    one.write_bytes(debian_files()[0].read_bytes())
    (tmp_path / "other.btf").write_bytes(debian_files()[1].read_bytes())
    with Server(one, tmp_path / "cache") as server:
        status, _, body = request("GET", f"{server.url}/api/v1/list")
        assert status == 200
        import json

        assert [r["kernel_version"] for r in json.loads(body)] == [
            one.name.removesuffix(".btf.xz")]


def test_one_server_per_cache(tmp_path: Path) -> None:
    if not debian_files():
        pytest.skip("tests/data/btf has no Debian kernels")
    from tests.service.conftest import Server

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / debian_files()[0].name).write_bytes(debian_files()[0].read_bytes())
    with Server(tmp_path / "a", tmp_path / "cache"):
        r = serve("--archive", str(tmp_path / "a"), "--cache", str(tmp_path / "cache"),
                  "--port", "0", "--jobs", "1")
        assert r.returncode == 1 and "another running corebpf serve" in r.stderr
        assert "sqlite" not in r.stderr
        assert "Traceback" not in r.stderr


def test_damaged_index_database(tmp_path: Path) -> None:
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "service.sqlite").write_bytes(b"not a database" * 100)
    r = serve("--archive", str(tmp_path), "--cache", str(tmp_path / "cache"), "--port", "0",
              "--jobs", "1")
    assert r.returncode == 1 and "service.sqlite" in r.stderr and "Traceback" not in r.stderr
