"""Archive jobs on a real dask.distributed cluster (a LocalCluster of two worker
processes): check, gen min-btf, archive bundle and archive index give the same output as
the local run, a corrupt kernel is a failed row there too, a worker that dies or a result
that cannot travel fails one kernel only, and a scheduler that cannot be used (none
listening, not Dask, the extra missing) is a clean corebpf error."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed", reason="the dask extra (distributed) is not installed")

from distributed import Client, LocalCluster

from corebpf.archive.check import FAILED, KernelCheck, check_archive, check_kernel
from corebpf.archive.index import build_index
from corebpf.archive.parallel import map_kernels, open_executor
from corebpf.archive.sources import discover
from corebpf.btfgen import ObjectBlob
from corebpf.errors import Error
from tests.archive.test_parallel import square_or_fail, unpicklable
from tests.conftest import CORPUS, PROGS, ROOT, debian_files

TOOLS = ROOT / "corebpf" / "tools" / "objects"
OBJECTS = [str(TOOLS / "execsnoop.bpfel.o"), str(TOOLS / "biolatency.bpfel.o"),
           str(PROGS / "core_kinds.bpf.o"), str(PROGS / "core_poison.bpf.o")]
BROKEN = "broken/1/x86_64/5.0.0-broken.btf.tar.xz"
MISSING_EXTRA = "pip install 'corebpf[dask]'"


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two worker processes of one thread each, as `dask worker --nthreads 1` runs them."""
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None,  # no dashboard; its HTTP server on any port:
                      scheduler_kwargs={"dashboard_address": ":0"}) as c:
        yield c.scheduler_address


@pytest.fixture(scope="module")
def client(cluster: str) -> Iterator[Client]:
    with Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole corpus (when present), the Debian kernels and a truncated kernel."""
    if not debian_files():
        pytest.skip("tests/data/btf has no Debian kernels")
    root = tmp_path_factory.mktemp("archive")
    if CORPUS.is_dir():
        shutil.copytree(CORPUS, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md"))
    for deb in debian_files():
        dest = root / "debian" / "12" / "x86_64" / deb.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(deb, dest)
    broken = root / BROKEN
    broken.parent.mkdir(parents=True)
    broken.write_bytes(debian_files()[0].read_bytes()[:4096])
    return root


def corebpf(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corebpf", *args], capture_output=True,
                          text=True, check=False, timeout=timeout)


def both(*args: str, scheduler: str) -> tuple[subprocess.CompletedProcess[str],
                                              subprocess.CompletedProcess[str]]:
    """The same command on the cluster and in one local process."""
    return (corebpf(*args, "--scheduler", scheduler, "--no-progress"),
            corebpf(*args, "--jobs", "1", "--no-progress"))


def skipped_lines(stderr: str) -> list[str]:
    return sorted(line for line in stderr.splitlines() if line.startswith("corebpf: skipped"))


# -- the same output as the local run ------------------------------------------------------


def test_check_archive_on_a_client_and_its_executor(archive: Path, client: Client) -> None:
    local = check_archive(OBJECTS, archive, jobs=1, progress=False)
    on_client = check_archive(OBJECTS, archive, executor=client, progress=False)
    on_executor = check_archive(OBJECTS, archive, executor=client.get_executor(),
                                progress=False)
    assert on_client.to_json() == local.to_json() == on_executor.to_json()
    assert len(local.kernels) == len(list(archive.rglob("*.xz")))
    rows = {Path(k.path).relative_to(archive).as_posix(): k for k in on_client.kernels}
    broken = rows.pop(BROKEN)  # a corrupt kernel is a failed row naming its file
    assert broken.status == FAILED and broken.error and BROKEN in broken.error
    assert rows and all(k.error is None and k.relocations for k in rows.values())


def test_check_cli(archive: Path, cluster: str) -> None:
    dask, local = both("check", *OBJECTS, "--archive", str(archive), "--json",
                       scheduler=cluster)
    assert dask.stdout == local.stdout and dask.returncode == local.returncode
    assert json.loads(dask.stdout)["kernels"]
    assert skipped_lines(dask.stderr) == skipped_lines(local.stderr)
    assert [BROKEN in line for line in skipped_lines(dask.stderr)] == [True]


def test_gen_min_btf_cli(archive: Path, cluster: str, tmp_path: Path) -> None:
    objects = [a for o in OBJECTS[:2] for a in ("--object", o)]
    dask, local = (corebpf("gen", "min-btf", str(archive), *objects, "-o", str(tmp_path / d),
                           *where, "--no-progress")
                   for d, where in (("dask", ("--scheduler", cluster)),
                                    ("local", ("--jobs", "1"))))
    assert dask.returncode == local.returncode == 1  # the broken kernel
    assert dask.stdout.replace("/dask/", "/local/") == local.stdout
    files = sorted(p.relative_to(tmp_path / "local")
                   for p in (tmp_path / "local").rglob("*") if p.is_file())
    assert len(files) == len(list(archive.rglob("*.xz"))) - 1
    assert files == sorted(p.relative_to(tmp_path / "dask")
                           for p in (tmp_path / "dask").rglob("*") if p.is_file())
    for rel in files:
        assert (tmp_path / "dask" / rel).read_bytes() == (tmp_path / "local" / rel).read_bytes()


def test_archive_bundle_cli(archive: Path, cluster: str, tmp_path: Path) -> None:
    objects = [a for o in OBJECTS[:2] for a in ("--object", o)]
    dask = corebpf("archive", "bundle", str(archive), *objects, "-o",
                   str(tmp_path / "dask.tar.xz"), "--scheduler", cluster, "--no-progress")
    local = corebpf("archive", "bundle", str(archive), *objects, "-o",
                    str(tmp_path / "local.tar.xz"), "--jobs", "1", "--no-progress")
    assert dask.returncode == local.returncode == 1, dask.stderr
    assert skipped_lines(dask.stderr) == skipped_lines(local.stderr)
    assert (tmp_path / "dask.tar.xz").read_bytes() == (tmp_path / "local.tar.xz").read_bytes()


def test_archive_index_cli(archive: Path, cluster: str, tmp_path: Path) -> None:
    dask, local = both("archive", "index", str(archive), "--json", scheduler=cluster)
    assert dask.returncode == local.returncode == 1
    assert json.loads(dask.stdout) == json.loads(local.stdout)
    assert [BROKEN in line for line in skipped_lines(dask.stderr)] == [True]


def test_index_library_errors_name_the_corrupt_file(archive: Path, client: Client) -> None:
    index = build_index(archive, executor=client, progress=False)
    assert [Path(p).relative_to(archive).as_posix() for p, _ in index.errors] == [BROKEN]
    assert len(index.kernels) == len(list(archive.rglob("*.xz"))) - 1


# -- what crosses to the workers -----------------------------------------------------------


def test_workers_get_the_objects_bytes_not_their_paths(archive: Path, client: Client) -> None:
    """A KernelEntry and a partial of check_kernel holding ObjectBlobs named by a path no
    worker can open: the rows name that path and relocate as the real file does."""
    entries = [e for e in discover(archive) if "broken" not in e.path][:3]
    real = OBJECTS[0]
    blob = ObjectBlob("/nowhere/execsnoop.bpfel.o", Path(real).read_bytes())
    got = map_kernels(functools.partial(check_kernel, objects=(blob,)), entries,
                      executor=client)
    want = [check_kernel(e, [real]) for e in entries]
    for outcome, row in zip(got, want, strict=True):
        assert isinstance(outcome.value, KernelCheck), outcome.error
        assert {r.object for r in outcome.value.relocations} == {blob.name}
        assert [(r.key[1:], r.result, r.target) for r in outcome.value.relocations] == \
            [(r.key[1:], r.result, r.target) for r in row.relocations]


def test_a_result_that_cannot_be_pickled_fails_its_kernel(client: Client) -> None:
    """(Dask leaves the future of a result its worker cannot serialize pending.)"""
    out = map_kernels(unpicklable, ["/k/1.btf", "/k/2.btf"], executor=client)
    assert [o.ok for o in out] == [False, False]
    assert all(o.error and o.error.startswith(o.path) and "pickle" in o.error for o in out)


def test_errors_and_order_as_locally(client: Client) -> None:
    items = [f"/k/{n}.btf" for n in range(1, 9)]
    remote = map_kernels(square_or_fail, items, executor=client)
    local = map_kernels(square_or_fail, items, jobs=1)
    assert [(o.path, o.value, o.error) for o in remote] == \
        [(o.path, o.value, o.error) for o in local]
    assert remote[2].error == "/k/3.btf: bad magic"


# -- schedulers that cannot be used ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_scheduler_is_a_clean_error(archive: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    r = corebpf("check", OBJECTS[0], "--archive", str(archive), "--scheduler", address,
                timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("corebpf: error: ") and address in r.stderr
    assert "Connection refused" in r.stderr and "Traceback" not in r.stderr


def test_a_peer_that_is_not_dask_is_a_clean_error() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"

    def answer() -> None:  # one connection: a line of text, as a web server might
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 8)

    t = threading.Thread(target=answer, daemon=True)
    t.start()
    try:
        with pytest.raises(Error, match=f"{address} does not answer as a Dask scheduler"), \
                open_executor(address, None, timeout=5):
            pass
    finally:
        server.close()
        t.join(10)


def test_bad_addresses() -> None:
    for address, match in (("inproc://x", "tcp:// or tls://"),
                           ("tcp://127.0.0.1:port", "not a Dask scheduler address")):
        with pytest.raises(Error, match=match), open_executor(address, None):
            pass


def test_workers_without_corebpf_are_a_clean_error(tmp_path: Path) -> None:
    """A cluster whose workers cannot import corebpf (a preload hides it) is refused when
    connecting, not with a failure per kernel."""
    hide = tmp_path / "hide_corebpf.py"
    hide.write_text("import sys\nsys.modules['corebpf'] = None\n")
    with LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                      dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                      preload=[str(hide)]) as other:
        with pytest.raises(Error, match=r"cannot run corebpf .*install corebpf"), \
                open_executor(other.scheduler_address, None):
            pass


def test_no_scheduler_is_the_local_pool() -> None:
    with open_executor(None, 2) as ex:
        assert ex is None


def test_jobs_with_scheduler_is_refused(archive: Path) -> None:
    r = corebpf("check", OBJECTS[0], "--archive", str(archive), "--jobs", "2",
                "--scheduler", "tcp://127.0.0.1:1")
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_missing_extra_is_a_clean_error(archive: Path) -> None:
    """distributed made unimportable (as when the extra is not installed)."""
    code = ("import sys; sys.modules['distributed'] = None\n"
            "from corebpf.cli import main\n"
            f"sys.exit(main(['check', {OBJECTS[0]!r}, '--archive', {str(archive)!r}, "
            "'--scheduler', 'tcp://127.0.0.1:8786']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=False, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert MISSING_EXTRA in r.stderr and r.stderr.startswith("corebpf: error: ")


# -- last: it kills workers (the nannies restart them) -------------------------------------


def exit_on_3(path: str) -> str:
    """Module level, so that the workers import it; ends the worker process itself."""
    if os.path.basename(path) == "3.btf":
        os._exit(3)
    return path


def test_a_kernel_that_kills_its_worker_fails_alone(client: Client) -> None:
    items = [f"/k/{n}.btf" for n in range(1, 7)]
    out: list[Any] = map_kernels(exit_on_3, items, executor=client)
    assert [o.value for o in out] == [p if not p.endswith("/3.btf") else None for p in items]
    assert out[2].error.startswith("/k/3.btf: KilledWorker")
