"""The workers' jobs called directly (their outcomes for good and bad inputs), and a
running server whose worker processes are killed: the pool is replaced and the next
requests are answered."""

from __future__ import annotations

import hashlib
import io
import os
import signal
import tarfile
from pathlib import Path

import pytest

from corebpf.archive.sources import entry_for, read_btf
from corebpf.btfgen import ObjectBlob
from corebpf.service import jobs
from tests.conftest import debian_files
from tests.service.conftest import (
    Server,
    build_archive,
    error_of,
    object_bytes,
    post_objects,
    query,
)


def kernel(tmp_path: Path) -> tuple[Path, Path]:
    if not debian_files():
        pytest.skip("tests/data/btf has no Debian kernels")
    root = tmp_path / "archive"
    root.mkdir()
    dest = root / debian_files()[0].name
    dest.write_bytes(debian_files()[0].read_bytes())
    return root, dest


def test_btf_tarball_is_one_regular_file_and_reproducible() -> None:
    a = jobs.btf_tarball("5.4.0-1.btf", b"\x9f\xeb" + bytes(100))
    assert a == jobs.btf_tarball("5.4.0-1.btf", b"\x9f\xeb" + bytes(100))
    with tarfile.open(fileobj=io.BytesIO(a), mode="r:xz") as tar:
        members = tar.getmembers()
        assert [(m.name, m.isreg(), m.size, m.mode) for m in members] == [
            ("5.4.0-1.btf", True, 102, 0o644)]


def test_index_kernel(tmp_path: Path) -> None:
    root, path = kernel(tmp_path)
    entry = entry_for(path, root)
    assert entry is not None
    sha, bsha, size, error = jobs.index_kernel(entry, str(root))
    raw = read_btf(path)
    assert (sha, bsha, size, error) == (hashlib.sha256(path.read_bytes()).hexdigest(),
                                        hashlib.sha256(raw).hexdigest(), len(raw), "")
    cut = root / "cut.btf.xz"
    cut.write_bytes(path.read_bytes()[:5000])
    entry = entry_for(cut, root)
    assert entry is not None
    sha, bsha, size, error = jobs.index_kernel(entry, str(root))
    assert sha and not bsha and str(cut) in error
    # a file outside the root is not read
    assert "outside the archive" in jobs.index_kernel(entry, str(tmp_path / "else"))[3]


def test_customize_outcomes(tmp_path: Path) -> None:
    root, path = kernel(tmp_path)
    entry = entry_for(path, root)
    assert entry is not None
    good = ObjectBlob("/stored/a", object_bytes("execsnoop.bpfel.o"))
    got = jobs.customize([good], entry, str(root), "k.btf")
    assert got.status == jobs.OK and got.btf_sha256 == hashlib.sha256(
        read_btf(path)).hexdigest()
    bad = jobs.customize([good, ObjectBlob("/stored/b", b"\x7fELF" + bytes(40))], entry,
                         str(root), "k.btf")
    assert bad.status == jobs.BAD_OBJECT and "/stored/b" in bad.message
    outside = jobs.customize([good], entry, str(tmp_path / "else"), "k.btf")
    assert outside.status == jobs.BAD_KERNEL and "outside the archive" in outside.message
    made = jobs.download_tarball(entry, str(root), "k.btf")
    assert made.status == jobs.OK and made.size == len(made.data)


def children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def test_killed_workers_are_replaced(tmp_path: Path) -> None:
    if not debian_files():
        pytest.skip("tests/data/btf has no Debian kernels")
    keys = build_archive(tmp_path / "archive", corpus=False, broken=False, escape=False)
    with Server(tmp_path / "archive", tmp_path / "cache") as server:
        assert server.proc is not None
        workers = [c for c in children(server.proc.pid)
                   if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(workers) == 2
        for w in workers:
            os.kill(w, signal.SIGKILL)
        url = f"{server.url}/api/v1/customize?{query(keys[0])}"
        # the pool may learn of the deaths with this job (a 500 that says so) or before
        status, h, body = post_objects(url, [("a.o", object_bytes("syscount.bpfel.o"))])
        if status != 200:
            assert status == 500 and "worker process died" in error_of(status, h, body)
        status, _, body = post_objects(url, [("b.o", object_bytes("exitsnoop.bpfel.o"))])
        assert status == 200, body
        assert server.stop() == 0
