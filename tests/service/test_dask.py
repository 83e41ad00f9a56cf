"""``corebpf serve --scheduler``: the jobs on a real dask.distributed cluster (a
LocalCluster of worker processes) give the same answers as the local pool's server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

pytest.importorskip("distributed", reason="the dask extra (distributed) is not installed")

from distributed import LocalCluster

from tests.service.conftest import (
    BROKEN_KEY,
    Served,
    Server,
    error_of,
    object_bytes,
    post_objects,
    query,
    request,
)

NAMES = ["tcpstates.bpfel.o", "core_targets.bpf.o"]


@pytest.fixture(scope="module")
def on_dask(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A second server over the shared server's archive, its jobs on two Dask workers
    (one thread each, as `dask worker --nthreads 1` runs them)."""
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None,
                      scheduler_kwargs={"dashboard_address": ":0"}) as cluster, \
            Server(served.archive, tmp_path_factory.mktemp("dask") / "cache",
                   "--scheduler", cluster.scheduler_address) as server:
        yield server


def test_same_answers_as_the_local_pool(served: Served, on_dask: Server) -> None:
    objs = [(n, object_bytes(n)) for n in NAMES]
    for key in (served.keys[0], served.keys[-1]):
        local = post_objects(f"{served.url}/api/v1/customize?{query(key)}", objs)
        dask = post_objects(f"{on_dask.url}/api/v1/customize?{query(key)}", objs)
        assert local[0] == dask[0] == 200
        assert dask[1]["x-corebpf-cache"] == "miss"
        assert dask[2] == local[2] and dask[1]["etag"] == local[1]["etag"]
        dl = request("GET", f"{on_dask.url}/api/v1/download?{query(key)}")
        assert dl[0] == 200
        assert dl[2] == request("GET", f"{served.url}/api/v1/download?{query(key)}")[2]
    check = [post_objects(f"{url}/api/v1/check", objs) for url in (served.url, on_dask.url)]
    assert check[0][0] == check[1][0] == 200
    assert json.loads(check[0][2]) == json.loads(check[1][2])
    bundle = [post_objects(f"{url}/api/v1/bundle", objs) for url in (served.url, on_dask.url)]
    assert bundle[0][0] == bundle[1][0] == 200 and bundle[0][2] == bundle[1][2]
    _, _, text = request("GET", f"{on_dask.url}/monitoring/metrics")
    m = re.search(rb'corebpf_job_duration_seconds_count\{job="customize"\} (\S+)', text)
    assert m is not None and float(m[1]) == 2


def test_errors_as_on_the_local_pool(served: Served, on_dask: Server) -> None:
    status, h, body = post_objects(f"{on_dask.url}/api/v1/customize?{query(BROKEN_KEY)}",
                                   [("x.o", object_bytes("syscount.bpfel.o"))])
    assert status == 500 and "corrupt" in error_of(status, h, body)
    status, h, body = post_objects(f"{on_dask.url}/api/v1/customize?"
                                   f"{query(served.keys[0])}", [("ls", open("/bin/ls",
                                                                            "rb").read())])
    assert status == 400 and "not a BPF object" in error_of(status, h, body)
