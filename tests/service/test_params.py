"""Query parameters: kernel keys, filters, object hashes, If-None-Match."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corebpf.service.errors import BadRequest
from corebpf.service.params import (
    VALUE_SCHEMA,
    check_value,
    etag_matches,
    filters,
    kernel_key,
    object_hashes,
)


class Q:
    """A multi-valued query as Starlette's QueryParams is."""

    def __init__(self, *pairs: tuple[str, str]):
        self.pairs = pairs

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self.pairs if k == key]


def key_query(**over: str) -> Q:
    base = {"distribution": "ubuntu", "distribution_version": "20.04", "arch": "x86_64",
            "kernel_version": "5.4.0-91-generic"} | over
    return Q(*base.items())


def test_kernel_key() -> None:
    assert kernel_key(key_query()) == ("ubuntu", "20.04", "x86_64", "5.4.0-91-generic")
    assert kernel_key(key_query(arch="aarch64"))[2] == "arm64"
    assert kernel_key(key_query(arch="ARM64"))[2] == "arm64"
    assert kernel_key(key_query(arch="amd64"))[2] == "x86_64"
    # distro and version may be empty (kernels found outside a BTFHub layout)
    assert kernel_key(key_query(distribution="", distribution_version=""))[:2] == ("", "")


@pytest.mark.parametrize("value", ["../x", "/etc/passwd", "a/b", "a\\b", "..", ".",
                                   "a\0b", "a\tb", "a\x1bb", "a\x7f", "x" * 129])
def test_path_shaped_values_are_refused(value: str) -> None:
    with pytest.raises(BadRequest, match="kernel_version"):
        kernel_key(key_query(kernel_version=value))


def test_plain_values_pass() -> None:
    for value in ("5.4.0-1.el8_1.x86_64", "6.12.117+deb12-amd64", "a" * 128, "...x",
                  "a..b", "5.10~rc1", "ünïcödé"):
        assert check_value("kernel_version", value) == value


def test_missing_empty_repeated() -> None:
    with pytest.raises(BadRequest, match="'arch' is missing"):
        kernel_key(Q(("distribution", "a"), ("distribution_version", "1"),
                     ("kernel_version", "5")))
    with pytest.raises(BadRequest, match="'kernel_version' is empty"):
        kernel_key(key_query(kernel_version=""))
    with pytest.raises(BadRequest, match="given 2 times"):
        kernel_key(Q(*key_query().pairs, ("arch", "arm64")))


def test_filters() -> None:
    assert filters(Q()) == {}
    assert filters(Q(("arch", "aarch64"), ("distribution", "centos"))) == {
        "arch": "arm64", "distro": "centos"}
    with pytest.raises(BadRequest):
        filters(Q(("distribution", "../..")))


def test_object_hashes() -> None:
    sha = "ab" * 32
    assert object_hashes(Q(("object", sha.upper()))) == [sha]
    for bad in ("ab" * 31, "zz" * 32, "../" + "a" * 61):
        with pytest.raises(BadRequest, match="object"):
            object_hashes(Q(("object", bad)))
    with pytest.raises(BadRequest, match="missing"):
        object_hashes(Q())
    with pytest.raises(BadRequest, match="65 values"):
        object_hashes(Q(*[("object", sha)] * 65))


def test_etag_matches() -> None:
    tag = "ab" * 32
    assert etag_matches(f'"{tag}"', tag)
    assert etag_matches(f'W/"{tag}"', tag)
    assert etag_matches(f'"x", "{tag}"', tag)
    assert etag_matches("*", tag)
    assert not etag_matches(None, tag)
    assert not etag_matches("", tag)
    assert not etag_matches('"other"', tag)


@given(st.one_of(st.text(max_size=140), st.sampled_from([".", "..", "...", "a/b", "\\",
                                                          "x" * 128, "x" * 129, ".a"])))
def test_the_openapi_pattern_says_what_check_value_accepts(value: str) -> None:
    """The document's pattern and maxLength (JSON Schema, read here as Python reads
    this pattern) accept exactly the values check_value does."""
    pattern = str(VALUE_SCHEMA["pattern"])
    by_schema = len(value) <= int(VALUE_SCHEMA["maxLength"]) and \
        re.search(pattern, value) is not None
    try:
        check_value("p", value)
        by_params = True
    except BadRequest:
        by_params = False
    assert by_schema == by_params, value
