"""Hostile target BTF for CO-RE: archive kernels are untrusted input, and matching reads
their records raw (no decoded types). A mutated kernel BTF must relocate and minimize, or
end in corebpf's own errors: never IndexError, KeyError, RecursionError, ..."""

from __future__ import annotations

import struct
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import corebpf.btf as btf
from corebpf.btfgen import minimize
from corebpf.btfgen.minimize import Minimizer
from corebpf.core import relocate
from corebpf.errors import BTFError, Error
from corebpf.obj.object import ObjectSpec
from tests.btf.test_fuzz import INTERESTING_U32, mutate, mutation
from tests.conftest import PROGS, debian_files

OBJECTS = ("core_kinds", "core_arrays", "execsnoop", "btfgen_cases")


@cache
def objects() -> tuple[ObjectSpec, ...]:
    return tuple(ObjectSpec.load(PROGS / f"{n}.bpf.o") for n in OBJECTS)


@cache
def seed() -> bytes:
    """What the objects need of a real kernel: small enough that most mutations land on
    the records matching reads."""
    return minimize(list(objects()), btf.load(debian_files()[0], index_cache=False))


def test_seed_relocates() -> None:
    spec = btf.from_bytes(seed())
    reports, _ = relocate(objects()[0], spec)
    assert reports and len(seed()) < 20_000


#: words of the type section rewritten: type ids (small numbers), kinds, vlens, offsets
type_word = st.tuples(st.just("u32"), st.integers(0, 1 << 12),
                      st.one_of(st.sampled_from(INTERESTING_U32), st.integers(0, 160)))


def _in_types(muts: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """Word-sized mutations moved into the type section (24-byte header first)."""
    size = struct.unpack_from("<I", seed(), 12)[0]
    return [(w, 24 + 4 * (pos % (size // 4)), v) for w, pos, v in muts]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.lists(mutation, min_size=1, max_size=6),
                 st.lists(type_word, min_size=1, max_size=4).map(_in_types)))
def test_mutated_target_raises_only_corebpf_errors(muts: list[tuple[str, int, int]]) -> None:
    try:
        spec = btf.from_bytes(mutate(seed(), muts), source="fuzz.btf")
    except BTFError:
        return
    for obj in objects():
        try:
            relocate(obj, spec)
        except Error:
            pass
    try:
        m = Minimizer(spec)
        m.add_objects(objects())
        m.to_bytes()
    except Error:
        pass
