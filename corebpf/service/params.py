"""Query parameters as the service accepts them: a kernel key of four values, object
hashes, filters. Values only ever select rows of the index, never build a path; those
that look like paths (``../``, ``/etc``), carry NUL or control characters, or are
overlong are refused all the same, so that probing is answered with a 400 that says why."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from ..archive.sources import normalize_arch
from .errors import BadRequest

#: the longest value a parameter may have
MAX_VALUE = 128
#: btfhub-online's names for (distro, version, arch, release), in the key's order
KEY_PARAMS = ("distribution", "distribution_version", "arch", "kernel_version")
#: at most this many ``object=`` hashes in one request
MAX_OBJECTS = 64
#: check_value's rules in JSON Schema, for the OpenAPI document: at most MAX_VALUE
#: characters, no '/', '\\', NUL or control characters, not '.' or '..'
VALUE_SCHEMA: dict[str, int | str] = {
    "maxLength": MAX_VALUE, "pattern": r"^(?!\.\.?$)[^/\\\x00-\x1f\x7f]*$"}
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Query(Protocol):
    """What a query string is to these functions (Starlette's QueryParams is one)."""

    def getlist(self, key: str) -> list[str]: ...


def check_value(name: str, value: str) -> str:
    """``value`` when it is a plain name; BadRequest naming ``name`` otherwise."""
    if len(value) > MAX_VALUE:
        raise BadRequest(f"query parameter {name!r}: {len(value)} characters is more than "
                         f"the {MAX_VALUE} allowed")
    if "\0" in value:
        raise BadRequest(f"query parameter {name!r}: NUL character")
    if _CONTROL.search(value):
        raise BadRequest(f"query parameter {name!r}: control character")
    if "/" in value or "\\" in value:
        raise BadRequest(f"query parameter {name!r}: {value!r} looks like a path "
                         "(a name may not hold '/' or '\\')")
    if value in (".", ".."):
        raise BadRequest(f"query parameter {name!r}: {value!r} looks like a path")
    return value


def one(query: Query, name: str, *, required: bool = False) -> str | None:
    """The single value of ``name`` (checked), None when absent and not ``required``."""
    values = query.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"query parameter {name!r} is given {len(values)} times")
    if not values:
        if required:
            raise BadRequest(f"query parameter {name!r} is missing")
        return None
    return check_value(name, values[0])


def kernel_key(query: Query) -> tuple[str, str, str, str]:
    """(distro, version, arch, release) from btfhub-online's four parameters; all four
    must be present, ``arch`` and ``kernel_version`` not empty; ``aarch64`` is ``arm64``."""
    values = [one(query, name, required=True) or "" for name in KEY_PARAMS]
    for name, value in zip(KEY_PARAMS, values, strict=True):
        if not value and name in ("arch", "kernel_version"):
            raise BadRequest(f"query parameter {name!r} is empty")
    distro, version, arch, release = values
    return distro, version, normalize_arch(arch), release


def filters(query: Query) -> dict[str, str]:
    """Optional filters of check and bundle: distro, version, arch (normalized)."""
    out: dict[str, str] = {}
    for name, field in (("distribution", "distro"), ("distribution_version", "version"),
                        ("arch", "arch")):
        value = one(query, name)
        if value is not None:
            out[field] = normalize_arch(value) if field == "arch" else value
    return out


def object_hashes(query: Query) -> list[str]:
    """The ``object=<sha256>`` values (at least one, each 64 hex digits), lower-cased."""
    values = query.getlist("object")
    if not values:
        raise BadRequest("query parameter 'object' is missing (give the sha256 of an "
                         "uploaded object)")
    if len(values) > MAX_OBJECTS:
        raise BadRequest(f"query parameter 'object': {len(values)} values is more than "
                         f"the {MAX_OBJECTS} allowed")
    out = []
    for v in values:
        check_value("object", v)
        if not _SHA256.match(v):
            raise BadRequest(f"query parameter 'object': {v!r} is not a sha256 "
                             "(64 hex digits)")
        out.append(v.lower())
    return out


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (unquoted hex), or is ``*``."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        tag = tag.removeprefix("W/")
        if tag.strip('"') == etag:
            return True
    return False


def key_text(key: Sequence[str]) -> str:
    """How a kernel key reads in messages, in btfhub-online's parameter names."""
    return ", ".join(f"{n}={v!r}" for n, v in zip(KEY_PARAMS, key, strict=True))


__all__ = ["KEY_PARAMS", "MAX_OBJECTS", "MAX_VALUE", "VALUE_SCHEMA", "check_value",
           "etag_matches", "filters", "kernel_key", "key_text", "object_hashes", "one"]
