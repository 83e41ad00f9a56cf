"""Generated skeleton modules for the test objects, imported under unique names."""

from __future__ import annotations

import importlib.util
import itertools
import sys
from pathlib import Path
from types import ModuleType

from corebpf.skeleton.generate import generate
from tests.conftest import PROGS

_counter = itertools.count()


def import_module(path: Path) -> ModuleType:
    """``path`` imported under a name no other test uses (generated modules differ)."""
    name = f"_skel_test_{path.stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def generate_module(tmp_path: Path, obj: str | dict[str, str], *, name: str | None = None,
                    extra_types: list[str] | None = None, embed: bool = True
                    ) -> tuple[Path, ModuleType]:
    """A skeleton module for ``obj`` (a tests/progs stem, or variant -> path) written to
    ``tmp_path`` and imported."""
    objects = obj if isinstance(obj, dict) else {"bpfel": str(PROGS / f"{obj}.bpf.o")}
    stem = name or Path(next(iter(objects.values()))).name.split(".")[0]
    text = generate(objects, embed=embed, module_dir=str(tmp_path), extra_types=extra_types)
    path = tmp_path / f"{stem}_skel.py"
    path.write_text(text)
    return path, import_module(path)
