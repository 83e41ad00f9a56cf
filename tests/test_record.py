"""corebpf._record: slotted records whose __init__ is compiled on the first instance."""

from __future__ import annotations

import pickle

import pytest

from corebpf._record import field, record


@record
class Point:
    x: int
    y: int = 0
    tags: list[str] = field(default_factory=list)


@record(frozen=True)
class Frozen:
    a: int
    b: str = "b"


class Plain(Point):
    """Not a record: inherits Point's __init__."""


class Calls(Point):
    def __init__(self, x: int) -> None:
        super().__init__(x, 7)


def test_fields_defaults_and_factories() -> None:
    p = Point(1)
    assert (p.x, p.y, p.tags) == (1, 0, [])
    assert Point(1).tags is not p.tags
    assert Point(1, 2, ["t"]) == Point(x=1, y=2, tags=["t"])
    assert repr(Point(1, 2)) == "Point(x=1, y=2, tags=[])"
    assert Point.__match_args__ == ("x", "y", "tags")
    assert getattr(Point, "__slots__") == ("x", "y", "tags")  # noqa: B009
    with pytest.raises(AttributeError):
        p.w = 1  # type: ignore[attr-defined]
    match p:
        case Point(1, 0):
            pass
        case _:
            pytest.fail("no match")


def test_the_compiled_init_replaces_the_stub() -> None:
    @record
    class Once:
        v: int

    stub = Once.__init__
    Once(1)
    assert Once.__init__ is not stub
    assert Once.__init__.__qualname__.endswith("Once.__init__")
    assert Once(2).v == 2


def test_wrong_arguments_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'x'"):
        Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'w'"):
        Point(1, w=2)  # type: ignore[call-arg]
    assert Point(3).x == 3  # the first call that failed left a working class


def test_frozen_hash_and_eq() -> None:
    f = Frozen(1)
    assert f == Frozen(1, "b") and hash(f) == hash(Frozen(1))
    with pytest.raises(AttributeError, match="frozen"):
        f.a = 2  # type: ignore[misc]
    assert Point.__hash__ is None


def test_subclasses() -> None:
    q = Plain(5, 6)
    assert (q.x, q.y) == (5, 6) and Plain(4).x == 4
    assert Calls(1).y == 7


def test_pickle_round_trip() -> None:
    assert pickle.loads(pickle.dumps(Point(1, 2, ["a"]))) == Point(1, 2, ["a"])
