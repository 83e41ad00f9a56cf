"""The HTTP layer: btfhub-online's routes and corebpf's own, each parsing its request,
calling the backend and formatting its reply. No logic lives here."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import Error
from . import params
from .backend import Backend, Reply
from .config import ServiceConfig
from .errors import ServiceError
from .uploads import FIELD, read_objects

DESCRIPTION = """\
Minimized BTF on demand for kernels without BTF, from a BTF archive (BTFHub layout,
Debian/Ubuntu packages, vmlinux or raw BTF files).

btfhub-online's API (`/api/v1/list`, `/api/v1/download`, `/api/v1/customize`,
`/monitoring/health`, `/monitoring/metrics`), so its clients work unchanged, plus
`/api/v1/check` and `/api/v1/bundle`. Errors are JSON: `{"error": "<message>"}`.
"""


class ErrorBody(BaseModel):
    """Every error's body."""

    error: str = Field(description="What went wrong, naming the parameter, object, "
                                   "kernel key or archive file involved")


class Kernel(BaseModel):
    """One kernel of the archive, in btfhub-online's names."""

    distribution: str = Field(examples=["ubuntu"])
    distribution_version: str = Field(examples=["20.04"])
    kernel_version: str = Field(examples=["5.4.0-91-generic"])
    arch: str = Field(description="x86_64 or arm64 (aarch64 is arm64)", examples=["x86_64"])


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    kernels: int = Field(description="kernels the service answers for")


def _q(description: str, example: str, *, required: bool = False) -> Any:
    # Only the document carries the rules (json_schema_extra): params checks the values
    # itself, with messages that say which rule a value broke.
    extra = params.VALUE_SCHEMA | ({"minLength": 1} if required else {})
    return Query(description=description + f" At most {params.MAX_VALUE} characters; no "
                 "'/', '\\', NUL or control characters.", examples=[example],
                 json_schema_extra=extra)


Distribution = Annotated[str, _q("The distribution, as /etc/os-release's ID.", "ubuntu")]
DistributionVersion = Annotated[str, _q("The distribution's version, as /etc/os-release's "
                                        "VERSION_ID.", "20.04")]
KernelVersion = Annotated[str, _q("The kernel release, as `uname -r` prints it.",
                                  "5.4.0-91-generic", required=True)]
Arch = Annotated[str, _q("The architecture, as `uname -m` prints it: x86_64, or arm64 "
                         "(aarch64 is the same).", "x86_64", required=True)]
FilterDistribution = Annotated[str | None, _q("Only kernels of this distribution.",
                                              "ubuntu")]
FilterVersion = Annotated[str | None, _q("Only kernels of this distribution version.",
                                         "20.04")]
FilterArch = Annotated[str | None, _q("Only kernels of this architecture.", "arm64")]
ObjectHashes = Annotated[list[str], Query(
    description="The sha256 of an object uploaded before (to /api/v1/customize, "
    "/api/v1/check or /api/v1/bundle); repeat for several objects.",
    examples=[["0" * 64]],
    json_schema_extra={"minItems": 1, "maxItems": params.MAX_OBJECTS,
                       "items": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}})]

_UPLOAD: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": [FIELD],
        "properties": {FIELD: {
            "type": "array", "minItems": 1,
            "items": {"type": "string", "format": "binary"},
            "description": "A clang-built BPF object (ELF with .BTF and .BTF.ext); "
                           f"several '{FIELD}' fields give several objects. The "
                           "whole body may weigh at most the server's --max-upload."}}}}}}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A bad or path-shaped parameter, or an "
          "upload that is not a BPF object corebpf can read"},
    404: {"model": ErrorBody, "description": "No such kernel (the message names the "
          "key) or stored object"},
    500: {"model": ErrorBody, "description": "A corrupt archive file (named) or a "
          "server failure"},
}
_UPLOAD_ERRORS = _ERRORS | {413: {"model": ErrorBody,
                                  "description": "The upload is over the server's limit"}}
_TARBALL = {"content": {"application/octet-stream": _BINARY},
            "headers": {"ETag": {"description": "The result's cache key",
                                 "schema": {"type": "string"}},
                        "X-Corebpf-Cache": {"description": "Whether the answer was made "
                                            "before (hit) or for this request (miss)",
                                            "schema": {"enum": ["hit", "miss"]}},
                        "X-Corebpf-Match": {"description": "How the kernel was found "
                                            "(customize, download): exact, or release "
                                            "(the one BTF of that arch and "
                                            "kernel_version, filed under another "
                                            "distribution or version)",
                                            "schema": {"enum": ["exact", "release"]}}}}
_NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "If-None-Match named this ETag"}}

#: routes as metric labels (anything else is "other": no label per random path)
ROUTES = frozenset({"/api/v1/list", "/api/v1/download", "/api/v1/customize",
                    "/api/v1/check", "/api/v1/bundle", "/monitoring/health",
                    "/monitoring/metrics", "/openapi.json", "/docs"})


def respond(reply: Reply) -> Response:
    """A backend reply as a Starlette response (files streamed, then closed)."""
    if reply.status == 304:
        return Response(status_code=304, headers=reply.headers)
    if reply.file is not None:
        f = reply.file

        def chunks() -> Iterator[bytes]:
            with f:
                while data := f.read(1 << 16):
                    yield data

        return StreamingResponse(chunks(), status_code=reply.status,
                                 media_type=reply.media_type,
                                 headers=reply.headers | {"Content-Length": str(reply.size)})
    return Response(reply.body, status_code=reply.status, media_type=reply.media_type,
                    headers=reply.headers)


def _error(status: int, message: str,
           headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_text(exc: RequestValidationError) -> str:
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        where = f"{loc[0]} parameter {loc[-1]!r}" if len(loc) >= 2 else "request"
        if err.get("type") == "missing":
            out.append(f"{where} is missing")
        else:
            out.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(out) or "invalid request"


class _Observe:
    """Counts and times every request by route, method and status."""

    def __init__(self, app: ASGIApp, backend: Backend):
        self.app = app
        self.backend = backend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            path = scope.get("path", "")
            route = path if path in ROUTES else "other"
            m = self.backend.metrics
            m.requests.labels(route, scope.get("method", ""), str(status)).inc()
            m.latency.labels(route).observe(time.perf_counter() - start)


def build_app(config: ServiceConfig) -> FastAPI:
    """The ASGI application of one service instance (its lifespan starts the workers
    and indexes the archive)."""
    backend = Backend(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if backend.started:  # corebpf serve started it, to report errors as errors
            yield
            return
        await backend.start()
        try:
            yield
        finally:
            await backend.stop()

    app = FastAPI(title="corebpf BTF service", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.backend = backend
    app.add_middleware(_Observe, backend=backend)

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, exc: ServiceError) -> Response:
        return _error(exc.status, str(exc))

    @app.exception_handler(Error)
    async def corebpf_error(_: Request, exc: Error) -> Response:
        return _error(500, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        return _error(400, _validation_text(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            text = f"no such endpoint: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            text = f"{request.method} is not allowed on {request.url.path}"
            # Starlette's Allow names the first route of the path only; /api/v1/bundle
            # has a GET and a POST route
            allowed = sorted({m for r in app.routes if isinstance(r, APIRoute)
                              and r.matches(request.scope)[0] is Match.PARTIAL
                              for m in r.methods or ()})
            return _error(405, text, {"Allow": ", ".join(allowed)})
        else:
            text = str(exc.detail)
        return _error(exc.status_code, text, exc.headers)

    @app.exception_handler(Exception)
    async def internal(_: Request, exc: Exception) -> Response:
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    async def uploads(request: Request) -> list[Any]:
        return await read_objects(request.stream(), request.headers.get("content-type"),
                                  request.headers.get("content-length"), config.max_upload)

    @app.get("/api/v1/list", response_model=list[Kernel], tags=["btfhub-online"],
             summary="Every kernel of the archive")
    async def list_kernels() -> Response:
        return respond(backend.kernels())

    @app.get("/api/v1/download", tags=["btfhub-online"],
             summary="A kernel's BTF as BTFHub's .btf.tar.xz",
             description="A BTFHub kernel's file as it is in the archive; any other kind "
             "(package, vmlinux, raw BTF) as a tar.xz holding one regular file "
             "`<kernel_version>.btf`, made once and cached.",
             response_class=Response,
             responses={200: _TARBALL, **_NOT_MODIFIED, **_ERRORS})
    async def download(request: Request, distribution: Distribution,
                       distribution_version: DistributionVersion, kernel_version: KernelVersion,
                       arch: Arch) -> Response:
        key = params.kernel_key(request.query_params)
        return respond(await backend.download(key, request.headers.get("if-none-match")))

    @app.post("/api/v1/customize", tags=["btfhub-online"],
              summary="A kernel's BTF minimized for BPF objects",
              description="A tar.xz holding exactly one regular file "
              "`<kernel_version>.btf`: the kernel's BTF reduced to what the objects' CO-RE "
              "relocations use. Results are cached by (objects' sha256, kernel BTF sha256): "
              "`X-Corebpf-Cache: hit|miss`, and `If-None-Match` with the `ETag` answers 304.",
              response_class=Response, openapi_extra=_UPLOAD,
              responses={200: _TARBALL, **_NOT_MODIFIED, **_UPLOAD_ERRORS})
    async def customize(request: Request, distribution: Distribution,
                        distribution_version: DistributionVersion,
                        kernel_version: KernelVersion, arch: Arch) -> Response:
        key = params.kernel_key(request.query_params)
        objects = await uploads(request)
        return respond(await backend.customize(key, objects,
                                               request.headers.get("if-none-match")))

    @app.post("/api/v1/check", tags=["corebpf"],
              summary="The objects' CO-RE relocations on every kernel",
              description="The compatibility matrix, exactly as `corebpf check --json` "
              "prints it: one row per kernel (`path` relative to the archive), each "
              "relocation resolved, poisoned or failed.",
              openapi_extra=_UPLOAD, responses=_UPLOAD_ERRORS)
    async def check(request: Request, distribution: FilterDistribution = None,
                    distribution_version: FilterVersion = None,
                    arch: FilterArch = None) -> Response:
        filters = params.filters(request.query_params)
        objects = await uploads(request)
        return respond(await backend.check(objects, filters))

    @app.post("/api/v1/bundle", tags=["corebpf"],
              summary="A BTF bundle of the archive for the uploaded objects",
              description="A corebpf bundle (.tar.xz), as `corebpf archive bundle` writes "
              "it, of every kernel (or those the filters select).",
              response_class=Response, openapi_extra=_UPLOAD,
              responses={200: _TARBALL, **_NOT_MODIFIED, **_UPLOAD_ERRORS})
    async def bundle_upload(request: Request, distribution: FilterDistribution = None,
                            distribution_version: FilterVersion = None,
                            arch: FilterArch = None) -> Response:
        filters = params.filters(request.query_params)
        objects = await uploads(request)
        return respond(await backend.bundle(objects, (), filters,
                                            request.headers.get("if-none-match")))

    @app.get("/api/v1/bundle", tags=["corebpf"],
             summary="A BTF bundle for objects uploaded before",
             description="As POST /api/v1/bundle, for objects the server holds (every "
             "uploaded object is stored by its sha256).",
             response_class=Response,
             responses={200: _TARBALL, **_NOT_MODIFIED, **_ERRORS})
    async def bundle_stored(request: Request, object: ObjectHashes,
                            distribution: FilterDistribution = None,
                            distribution_version: FilterVersion = None,
                            arch: FilterArch = None) -> Response:
        q = request.query_params
        return respond(await backend.bundle((), params.object_hashes(q), params.filters(q),
                                            request.headers.get("if-none-match")))

    @app.get("/monitoring/health", response_model=Health, tags=["monitoring"],
             summary="Whether the service is up, and how many kernels it serves")
    async def health() -> Response:
        return respond(backend.health())

    @app.get("/monitoring/metrics", tags=["monitoring"], response_class=Response,
             summary="Prometheus metrics",
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def metrics() -> Response:
        return respond(backend.render_metrics())

    return app


__all__ = ["build_app", "respond"]
