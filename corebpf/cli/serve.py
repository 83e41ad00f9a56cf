"""``corebpf serve``: the BTF service (btfhub-online's API and corebpf's own) over an
archive. Needs the optional extra ``corebpf[service]``."""

from __future__ import annotations

import argparse
import re
import sys

from . import seconds_arg
from ._pool import positive

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def size_arg(text: str) -> int:
    """A byte count: ``1048576``, ``64K``, ``16M``, ``1G`` (powers of 1024, ``iB``/``B``
    suffixes allowed)."""
    m = re.fullmatch(r"\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 1048576, 64K, 16M)")
    value = int(m[1]) * _UNITS[m[2].lower()]
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1 byte")
    return value


def register(sub: Any) -> None:
    from ..service.config import CACHE_SIZE, MAX_UPLOAD, RESCAN_INTERVAL

    p = sub.add_parser(
        "serve", help="serve minimized BTF over HTTP (btfhub-online compatible)",
        description="An HTTP service over a BTF archive: btfhub-online's /api/v1/list, "
        "/api/v1/download and /api/v1/customize (minimized BTF for uploaded objects, "
        "cached), corebpf's /api/v1/check and /api/v1/bundle, /monitoring/health and "
        "/monitoring/metrics (Prometheus), the OpenAPI document at /openapi.json and "
        "/docs. Needs: pip install 'corebpf[service]'.")
    p.add_argument("--archive", required=True, metavar="DIR",
                   help="BTFHub-layout tree, .deb/vmlinux/raw BTF files (or one file)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on "
                   "(default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080,
                   help="port to listen on (default: 8080; 0: any free port, printed)")
    p.add_argument("--cache", metavar="DIR", help="results, uploaded objects and the "
                   "archive's SQLite index (default: ~/.cache/corebpf/service)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=positive, metavar="N",
                       help="worker processes (default: one per CPU); not with --scheduler")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="run jobs on this dask.distributed scheduler (tcp://host:8786); "
                       "its workers must see the archive at the same path")
    p.add_argument("--max-upload", type=size_arg, default=MAX_UPLOAD, metavar="BYTES",
                   help=f"largest request body accepted (default: {MAX_UPLOAD >> 20}M); "
                   "larger ones are answered 413")
    p.add_argument("--cache-size", type=size_arg, default=CACHE_SIZE, metavar="BYTES",
                   help=f"bytes the cache may hold, least recently used entries evicted "
                   f"first (default: {CACHE_SIZE >> 30}G)")
    p.add_argument("--rescan", type=seconds_arg, default=RESCAN_INTERVAL, metavar="SECONDS",
                   help="seconds between walks of the archive for added, changed and "
                   f"removed kernels (default: {RESCAN_INTERVAL:g}; 0: only at start and "
                   "when a request names an unknown kernel)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import signal
    import socket
    from collections.abc import Iterator

    from ..errors import Error
    from ..service import ServiceConfig, create_app, require_extra

    require_extra()
    import uvicorn

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and without it a kept-alive client waits 40 ms (Nagle against delayed ACKs)
    # for the body written after the headers
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((args.host, args.port))
        sock.listen(1024)
    except OSError as e:
        sock.close()
        raise Error(f"cannot listen on {args.host}:{args.port}: "
                    f"{e.strerror or e}") from None
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if family == socket.AF_INET6 else args.host
    config = ServiceConfig(archive=args.archive, cache_dir=args.cache or "", jobs=args.jobs,
                           scheduler=args.scheduler, max_upload=args.max_upload,
                           cache_size=args.cache_size, rescan_interval=args.rescan)
    app = create_app(config)
    backend = app.state.backend
    class Server(uvicorn.Server):
        """uvicorn's server with its own signal handling: SIGTERM and SIGINT end serve()
        and the backend's shutdown runs (uvicorn's would re-raise the signal after
        serve(), killing the process before the cache's last-use times are written)."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.handle_exit, sig, None)
            try:
                yield
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    server = Server(uvicorn.Config(app, log_level="info" if args.access_log else "warning",
                                   access_log=args.access_log))

    async def main() -> None:
        await backend.start()  # here, so that a bad archive or cache is an error message
        try:
            for path, why in backend.index.errors():
                print(f"corebpf serve: not served: {path}: {why}", file=sys.stderr)
            print(f"corebpf serve: http://{host}:{port} ({len(backend.index.usable())} "
                  f"kernels from {backend.archive}; cache {backend.cache_dir})", flush=True)
            await server.serve(sockets=[sock])
        finally:
            await backend.stop()

    try:
        asyncio.run(main())
    finally:
        sock.close()
    return 0
