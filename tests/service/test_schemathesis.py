"""schemathesis against the running server and its own OpenAPI document: every answer
conforms to the document (status codes, content types, headers, schemas), a 405 lists
what the path allows, and no generated request, valid or not, gets a 500.

The one check left out is positive_data_acceptance: the document can say that an
upload is a binary file, not that it is a BPF object, so a schema-valid PNG is a 400
carrying corebpf's error, as the service means it to be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.conftest import Served

pytest.importorskip("schemathesis", reason="schemathesis is not installed "
                    "(pip install -e '.[test]')")


def test_schemathesis_finds_nothing(served: Served, tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "schemathesis"
    # the examples phase is left out: schemathesis 4.32 can fail in its own example
    # generation ("Inconsistent results" inside hypothesis), which says nothing of ours
    p = subprocess.run(
        [str(cli), "run", f"{served.url}/openapi.json", "--checks", "all",
         "--exclude-checks", "positive_data_acceptance", "--phases", "coverage,fuzzing",
         "--max-examples", "40", "--workers", "2", "--seed", "1",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-2000:]
    assert " passed" in p.stdout and "failed" not in p.stdout.split("SUMMARY")[-1]
