"""The service's errors: corebpf errors that carry the HTTP status they answer with, so
that every failure reaches the client as ``{"error": message}`` with the right code."""

from __future__ import annotations

from ..errors import Error


class ServiceError(Error):
    """A request the service cannot answer; ``status`` is the HTTP status it maps to."""

    status = 500


class BadRequest(ServiceError):
    """A bad or traversal-shaped parameter, a malformed upload, a non-BPF object."""

    status = 400


class NotFound(ServiceError):
    """An unknown kernel or stored object (the message names the key)."""

    status = 404


class TooLarge(ServiceError):
    """An upload over the configured limit."""

    status = 413


class ServerFault(ServiceError):
    """The server's side failed: a corrupt archive file, a worker that died."""

    status = 500


__all__ = ["BadRequest", "NotFound", "ServerFault", "ServiceError", "TooLarge"]
