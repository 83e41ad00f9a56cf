"""``corebpf serve``: minimized BTF on demand over HTTP, btfhub-online compatible.

A thin HTTP layer (app.py) over the archive and BTFGen (backend.py, jobs.py), with a
store: the archive's index in SQLite (store.py) and content-addressed results on disk
(cache.py). Needs the optional extra ``corebpf[service]`` (FastAPI, uvicorn,
prometheus-client, python-multipart); importing this package does not import them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import Error
from .config import ServiceConfig, default_cache_dir
from .errors import BadRequest, NotFound, ServerFault, ServiceError, TooLarge

if TYPE_CHECKING:
    from fastapi import FastAPI

#: the extra's modules, by the distribution that provides each
_EXTRA = (("fastapi", "fastapi"), ("uvicorn", "uvicorn"),
          ("prometheus_client", "prometheus-client"), ("python_multipart", "python-multipart"))


def require_extra() -> None:
    """An Error saying what to install when the ``service`` extra is missing."""
    for module, dist in _EXTRA:
        try:
            importlib.import_module(module)
        except ImportError:
            raise Error(f"the BTF service needs {dist}, which is not installed: "
                        "pip install 'corebpf[service]'") from None


def create_app(config: ServiceConfig) -> FastAPI:
    """The service's ASGI application (run it with uvicorn, or ``corebpf serve``)."""
    require_extra()
    from .app import build_app

    return build_app(config)


__all__ = ["BadRequest", "NotFound", "ServerFault", "ServiceConfig", "ServiceError",
           "TooLarge", "create_app", "default_cache_dir", "require_extra"]
