"""A bounded storm: a few hundred requests from 16 client threads, mixing list, download
and customize (cached, and cold ones asked several times at once). Every answer is
correct, none is an error, and each cold result is computed exactly once."""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import debian_files
from tests.service.conftest import (
    Server,
    build_archive,
    first_regular_file,
    object_bytes,
    post_objects,
    query,
    regular_files,
    request,
)

CLIENTS = 16
WARM = ["execsnoop.bpfel.o", "syscount.bpfel.o"]
COLD = ["runqlat.bpfel.o", "opensnoop.bpfel.o", "exitsnoop.bpfel.o", "sigsnoop.bpfel.o",
        "core_kinds.bpf.o", "btfgen_cases.bpf.o"]

Key = tuple[str, str, str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, list[Key]]]:
    if not debian_files():
        pytest.skip("tests/data/btf has no Debian kernels")
    root = tmp_path_factory.mktemp("storm")
    keys = build_archive(root / "archive", broken=False, escape=False)
    with Server(root / "archive", root / "cache") as s:
        yield s, keys  # type: ignore[misc]


def jobs_done(url: str) -> float:
    _, _, body = request("GET", f"{url}/monitoring/metrics")
    m = re.search(r'^corebpf_job_duration_seconds_count\{job="customize"\} (\S+)$',
                  body.decode(), re.MULTILINE)
    return float(m[1]) if m else 0.0


def test_sixteen_clients(server: tuple[Server, list[Key]]) -> None:
    s, keys = server
    url = s.url
    rng = random.Random(12)

    def customize(key: Key, name: str) -> tuple[int, dict[str, str], bytes]:
        return post_objects(f"{url}/api/v1/customize?{query(key)}",
                            [(name, object_bytes(name))])

    # references, asked one at a time
    listing = request("GET", f"{url}/api/v1/list")[2]
    downloads = {k: request("GET", f"{url}/api/v1/download?{query(k)}")[2] for k in keys}
    warm = {}
    for k in keys:
        for n in WARM:
            status, _, body = customize(k, n)
            assert status == 200
            warm[k, n] = body
    cold = [(k, n) for k in keys for n in COLD]
    before = jobs_done(url)

    work: list[tuple[str, Key | None, str]] = []
    work += [("list", None, "")] * 48
    work += [("download", rng.choice(keys), "") for _ in range(48)]
    work += [("warm", *rng.choice(list(warm))) for _ in range(112)]
    for k, n in cold:  # each cold result asked 2 to 5 times
        work += [("cold", k, n)] * rng.randint(2, 5)
    while len(work) < 300:  # fewer kernels (no corpus): more cached answers
        work.append(("warm", *rng.choice(list(warm))))
    rng.shuffle(work)
    assert len(work) >= 300

    def run(item: tuple[str, Key | None, str]) -> tuple[int, dict[str, str], bytes]:
        kind, key, name = item
        if kind == "list":
            return request("GET", f"{url}/api/v1/list")
        assert key is not None
        if kind == "download":
            return request("GET", f"{url}/api/v1/download?{query(key)}")
        return customize(key, name)

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(run, work))

    cold_answers: dict[tuple[Key, str], set[bytes]] = defaultdict(set)
    for (kind, key, name), (status, headers, body) in zip(work, answers, strict=True):
        assert status == 200, (kind, key, name, body[:300])
        if kind == "list":
            assert json.loads(body) == json.loads(listing)
        elif kind == "download":
            assert key is not None and body == downloads[key]
        elif kind == "warm":
            assert headers["x-corebpf-cache"] == "hit" and body == warm[key, name]  # type: ignore[index]
        else:
            assert key is not None
            assert regular_files(body) == [f"{key[3]}.btf"]
            cold_answers[key, name].add(body)
    # one answer per cold result, computed once however many asked at the same time
    assert all(len(v) == 1 for v in cold_answers.values())
    assert jobs_done(url) - before == len(cold)
    for (k, n), bodies in cold_answers.items():
        status, h, again = customize(k, n)
        assert status == 200 and h["x-corebpf-cache"] == "hit" and {again} == bodies
        assert first_regular_file(again)[1][:2] in (b"\x9f\xeb", b"\xeb\x9f")
    assert Path(s.stderr_path).read_text().count("Traceback") == 0
