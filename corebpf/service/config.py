"""What ``corebpf serve`` is told: the archive, the cache, limits and where work runs."""

from __future__ import annotations

import os

from .._record import record

#: defaults of ``corebpf serve``
MAX_UPLOAD = 16 << 20
CACHE_SIZE = 1 << 30
RESCAN_INTERVAL = 60.0
MISS_RESCAN_INTERVAL = 1.0


def default_cache_dir() -> str:
    """``serve`` under corebpf's cache root (``$COREBPF_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/corebpf``, else ``~/.cache/corebpf``): a directory of its own,
    apart from the client's answers (``service``, which ``corebpf cache`` bounds); this
    store is bounded by ``--cache-size``."""
    from ..cache import root

    return os.path.join(root(), "serve")


@record
class ServiceConfig:
    """One service instance's settings."""

    #: the archive: a directory in any layout ``corebpf archive`` reads, or one file
    archive: str
    #: results, uploaded objects and the SQLite index live here
    cache_dir: str = ""
    #: worker processes (default: one per CPU)
    jobs: int | None = None
    #: a dask.distributed scheduler to run jobs on instead of local workers
    scheduler: str | None = None
    #: bytes an upload (the whole request body) may weigh
    max_upload: int = MAX_UPLOAD
    #: bytes the cache may hold (least recently used entries go first)
    cache_size: int = CACHE_SIZE
    #: seconds between walks of the archive (0: only at start and on a miss)
    rescan_interval: float = RESCAN_INTERVAL
    #: an unknown kernel walks the archive again, at most once per this many seconds
    miss_rescan_interval: float = MISS_RESCAN_INTERVAL

    def resolved_cache_dir(self) -> str:
        return os.path.abspath(self.cache_dir or default_cache_dir())


__all__ = ["CACHE_SIZE", "MAX_UPLOAD", "ServiceConfig", "default_cache_dir"]
