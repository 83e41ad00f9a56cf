"""The BTF service end to end, on a kernel without (visible) BTF: in the mount namespace of
tests/nobtf.py (os-release debian 12), a real `corebpf serve` on loopback whose archive
holds this kernel's BTF in BTFHub layout gives

- `corebpf tool execsnoop --btf-service URL` (whose embedded bundle has no entry for this
  machine) its CO-RE target, minimized for the tool's object, and exec rows come out;
  once cached, the tool runs again with the service stopped;
- `corebpf run OBJ --btf-service URL` (load(service=)) the same;
- `corebpf btf install --service URL` the file on which Debian's unmodified runqlat runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import corebpf.btf as btf
from corebpf.archive.bundle import Bundle
from corebpf.archive.sources import normalize_arch
from corebpf.tools.base import BUNDLE
from tests.archive.serve import btfhub_archive, free_port, serve
from tests.archive.test_install import run_runqlat_proof
from tests.archive.test_nobtf import _DRIVER as RUN_DRIVER
from tests.conftest import KERNEL_BTF, PROGS, ROOT
from tests.nobtf import os_release_text, require, run_without_btf

RELEASE = os.uname().release
ARCH = normalize_arch(os.uname().machine)
KEY = ("debian", "12", ARCH, RELEASE)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not KERNEL_BTF.exists():
        pytest.skip("this kernel has no /sys/kernel/btf/vmlinux to serve")
    return btfhub_archive(tmp_path_factory.mktemp("archive"), btf.load(KERNEL_BTF).raw,
                          arch=ARCH)


@pytest.fixture(scope="module")
def server(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(archive, tmp_path_factory.mktemp("serve") / "cache") as url:
        yield url


def _os_release(tmp_path: Path) -> Path:
    p = tmp_path / "os-release"
    p.write_text(os_release_text(*KEY[:2]))
    return p


def _env(cache: Path) -> dict[str, str]:
    return dict(os.environ, XDG_CACHE_HOME=str(cache))


def _execsnoop(url: str, tmp_path: Path, cache: Path) -> tuple[subprocess.CompletedProcess[
        str], str]:
    """`corebpf tool execsnoop -v --btf-service URL` in the namespace while this process
    runs tagged execs; (its result, the tag)."""
    tag = f"corebpf-{uuid.uuid4().hex[:8]}"
    result: dict[str, subprocess.CompletedProcess[str]] = {}

    def run() -> None:
        result["r"] = run_without_btf(
            [sys.executable, "-m", "corebpf", "tool", "execsnoop", "-v", "--btf-service", url,
             "--duration", "4"], _os_release(tmp_path), cwd=ROOT, env=_env(cache))

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 8
    while t.is_alive() and time.monotonic() < deadline:
        subprocess.run(["/bin/echo", tag], stdout=subprocess.DEVNULL)
        time.sleep(0.2)
    t.join(120)
    return result["r"], tag


def test_a_tool_relocates_against_the_services_btf(archive: Path, tmp_path: Path) -> None:
    require()
    if not os.path.exists(BUNDLE):
        pytest.skip("the tools' bundle is not built (scripts/build_tools_bundle.py)")
    b = Bundle.open(BUNDLE)
    assert b.lookup(distro=KEY[0], version=KEY[1], arch=ARCH, release=RELEASE) is None, \
        "the tools' bundle knows this machine: the service would not be asked"
    cache = tmp_path / "xdg"
    with serve(archive, tmp_path / "serve-cache") as url:
        r, tag = _execsnoop(url, tmp_path, cache)
        assert r.returncode == 0, r.stderr
        assert (f"BTF for CO-RE: service {url} entry {'/'.join(KEY)} (minimized for "
                in r.stderr), r.stderr
        assert "; fetched) (service)" in r.stderr, r.stderr
        rows = [ln for ln in r.stdout.splitlines() if tag in ln]
        assert rows and rows[0].split()[0] == "echo", r.stdout[-2000:]
        assert len(list((cache / "corebpf" / "service").iterdir())) == 1
    # the service is gone: the cached BTF is used, and said so
    r, tag = _execsnoop(url, tmp_path, cache)
    assert r.returncode == 0, r.stderr
    assert "cached copy: the service is unreachable" in r.stderr, r.stderr
    assert any(tag in ln for ln in r.stdout.splitlines()), r.stdout[-2000:]
    # no cache, no service, no bundle entry: an error naming all three, no traceback
    r = run_without_btf([sys.executable, "-m", "corebpf", "tool", "execsnoop", "--btf-service",
                         url, "--duration", "1"], _os_release(tmp_path), cwd=ROOT,
                        env=_env(tmp_path / "empty"))
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    for part in (f"release={RELEASE}", "nearest entries:", f"{url}: cannot reach the BTF "
                 "service"):
        assert part in r.stderr, (part, r.stderr)


def test_corebpf_run_with_load_service(server: str, tmp_path: Path) -> None:
    require()
    r = run_without_btf(
        [sys.executable, "-c", RUN_DRIVER, sys.executable, "-m", "corebpf", "run",
         str(PROGS / "execsnoop.bpf.o"), "--btf-service", server, "--duration", "2"],
        _os_release(tmp_path), cwd=ROOT, env=_env(tmp_path / "xdg"))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["rc"] == 0, res["stderr"]
    lines = [json.loads(line) for line in res["stdout"].splitlines()]
    mine = [rec["event"] for rec in lines[:-1]
            if rec.get("map") == "events" and rec["event"]["pid"] == res["child"]]
    assert mine and mine[0]["filename"] == "/bin/true", res["stdout"][-2000:]
    # another distribution version, the same kernel release: the archive's one BTF of
    # this release answers, as a bundle lookup would (an unknown kernel's 404 is
    # test_service_client's)
    osr = tmp_path / "other"
    osr.write_text(os_release_text("debian", "11"))
    r = run_without_btf([sys.executable, "-m", "corebpf", "run", str(PROGS / "execsnoop.bpf.o"),
                         "--btf-service", server, "--duration", "1"], osr, cwd=ROOT,
                        env=_env(tmp_path / "xdg2"))
    assert r.returncode == 0 and "1 program attached" in r.stderr, r.stderr


def test_runqlat_runs_on_what_btf_install_got_from_the_service(server: str,
                                                                tmp_path: Path) -> None:
    steps = run_runqlat_proof(tmp_path, ["--service", server], env=_env(tmp_path / "xdg"))
    assert f"from service {server} entry {'/'.join(KEY)}" in \
        steps["install"]["out"]  # type: ignore[index]


def test_btf_install_from_a_service_that_is_down(tmp_path: Path) -> None:
    require()
    url = f"http://127.0.0.1:{free_port()}"
    r = run_without_btf([sys.executable, "-m", "corebpf", "btf", "install", "--service", url],
                        _os_release(tmp_path), cwd=ROOT, env=_env(tmp_path / "xdg"),
                        tmpfs_size="64m")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"corebpf: error: {url}: cannot reach the BTF service")


_SKELETON = r"""
import json, os, sys
from corebpf.skeleton import Skeleton
with Skeleton.open_file(sys.argv[1], service=sys.argv[2]) as skel:
    skel.load()
    reports = skel.collection.core_reports
    print(json.dumps({"programs": sorted(p.name for p in skel.progs),
                      "relocations": len(reports),
                      "resolved": sum(1 for r in reports if not r.poisoned and not r.error),
                      "cached": os.listdir(os.path.join(os.environ["XDG_CACHE_HOME"],
                                                        "corebpf", "service"))}))
"""


def test_a_skeleton_loads_against_the_services_btf(server: str, tmp_path: Path) -> None:
    """Skeleton(service=) relocates every CO-RE relocation of its object against what the
    service minimized for it, and keeps it in the cache."""
    require()
    r = run_without_btf([sys.executable, "-c", _SKELETON, str(PROGS / "execsnoop.bpf.o"),
                         server], _os_release(tmp_path), cwd=ROOT, env=_env(tmp_path / "xdg"))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["programs"] and res["relocations"] > 0
    assert res["resolved"] == res["relocations"] and len(res["cached"]) == 1
