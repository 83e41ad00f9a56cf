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
    """A frozen record with default factories compiles its __init__ on its first
    instance."""
    @record(frozen=True)
    class Once:
        v: int
        items: list[int] = field(default_factory=list)

    stub = Once.__init__
    Once(1)
    assert Once.__init__ is not stub
    assert Once.__init__.__qualname__.endswith("Once.__init__")
    assert Once(2).v == 2 and Once(2).items == []


def test_template_inits_need_no_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without factories, up to MAX_FIELDS fields: the template of the arity, renamed."""
    import builtins

    from corebpf import _record_inits

    def no_exec(*args: object, **kwargs: object) -> None:
        raise AssertionError("compiled")

    monkeypatch.setattr(builtins, "exec", no_exec)

    @record
    class Swapped:  # field names that are the templates' own, in another order
        f1: int
        f0: str = "zero"

    assert Swapped.__init__.__code__.co_varnames == ("self", "f1", "f0")
    s = Swapped(1)
    assert (s.f1, s.f0) == (1, "zero") and Swapped(f0="a", f1=2) == Swapped(2, "a")

    @record(frozen=True)
    class Key:
        a: int
        b: str
        c: tuple[int, ...] = ()

    k = Key(1, "x")
    assert (k.a, k.b, k.c) == (1, "x", ()) and hash(k) == hash(Key(1, "x", ()))
    with pytest.raises(AttributeError, match="frozen"):
        k.a = 2  # type: ignore[misc]

    p = Point(1)  # default factories, not frozen: the checking template
    assert p.tags == [] and p.tags is not Point(1).tags and Point(1, 2, ["a"]).tags == ["a"]
    assert Point.__init__.__code__.co_varnames == ("self", "x", "y", "tags")

    n = _record_inits.MAX_FIELDS
    wide = record(type("Wide", (), {"__annotations__": {f"x{i}": "int" for i in range(n)}}))
    assert [getattr(wide(*range(n)), f"x{i}") for i in range(n)] == list(range(n))


def test_too_many_fields_compile_lazily() -> None:
    from corebpf import _record_inits

    n = _record_inits.MAX_FIELDS + 1
    wider = record(type("Wider", (), {"__annotations__": {f"x{i}": "int" for i in range(n)}}))
    stub = wider.__init__
    assert [getattr(wider(*range(n)), f"x{i}") for i in range(n)] == list(range(n))
    assert wider.__init__ is not stub


def test_a_default_before_a_field_without_is_refused() -> None:
    with pytest.raises(TypeError, match="without a default follows"):
        @record
        class Bad:
            a: int = 0
            b: int  # type: ignore[misc]


def test_templates_are_current() -> None:
    """corebpf/_record_inits.py is what scripts/gen_record_inits.py writes."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("gen", root / "scripts" /
                                                  "gen_record_inits.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert (root / "corebpf" / "_record_inits.py").read_text() == gen.generate()


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
