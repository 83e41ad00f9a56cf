from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.inspect.loaded import Loaded, loaded_object


@pytest.fixture(scope="session")
def loaded() -> Iterator[Loaded]:
    import os

    if os.geteuid() != 0:
        pytest.skip("loading BPF programs needs root")
    with loaded_object() as obj:
        yield obj
