"""Enums built the quick way (corebpf._enum.simple_enum) behave as the class statement
would build them: members, values, aliases, lookups, repr/str/format, methods, pickling."""

from __future__ import annotations

import enum
import pickle
from typing import Any

import pytest

from corebpf._enum import IntEnumBase, simple_enum, standard_enum
from corebpf.btf.types import FuncLinkage, Kind, VarLinkage
from corebpf.obj.btf_ext import RelocKind
from corebpf.obj.sections import AttachKind, AttachType, MapType, ProgramType
from corebpf.sys.calls import BPFCommand

QUICK = [MapType, ProgramType, AttachType, AttachKind, Kind, FuncLinkage, VarLinkage,
         RelocKind, BPFCommand]


def _rebuilt(quick: type[enum.Enum]) -> type[enum.Enum]:
    """The same body through the metaclass."""
    body: dict[str, Any] = {name: member._value_ for name, member in
                            quick.__members__.items()}
    for key, value in vars(quick).items():
        if callable(value) or isinstance(value, property | staticmethod | classmethod):
            if not key.startswith("_") or key in ("__str__", "__repr__", "__format__"):
                body.setdefault(key, value)
    body.update(__doc__=quick.__doc__, __module__=quick.__module__,
                __qualname__=quick.__qualname__)
    base = enum.IntEnum if issubclass(quick, int) else enum.Enum
    return standard_enum(base, type(quick.__name__, (), body))


@pytest.mark.parametrize("quick", QUICK, ids=lambda e: e.__name__)
def test_quick_enum_equals_the_class_statement(quick: type[enum.Enum]) -> None:
    std = _rebuilt(quick)
    assert type(quick) is type(std)
    assert quick.__mro__[1:] == std.__mro__[1:]
    assert list(quick.__members__) == list(std.__members__)  # aliases included
    assert [(m.name, m.value) for m in quick] == [(m.name, m.value) for m in std]
    assert quick.__doc__ == std.__doc__
    for q, s in zip(quick, std, strict=True):
        assert repr(q) == repr(s) and str(q) == str(s) and format(q) == format(s)
        assert f"{q:>12}" == f"{s:>12}"
        assert quick(q.value) is q and quick[q.name] is q
        assert hash(q) == hash(s)
        assert pickle.loads(pickle.dumps(q)) is q
        if issubclass(quick, int):
            assert q == q.value == s.value
    with pytest.raises(ValueError, match="is not a valid"):
        quick(10_000 if issubclass(quick, int) else "no such value")


def test_methods_and_properties_survive() -> None:
    assert RelocKind.FIELD_BYTE_OFFSET.libbpf_name == "byte_off"
    assert RelocKind.FIELD_EXISTS.is_field and not RelocKind.TYPE_SIZE.is_field
    assert MapType(27) is MapType.RINGBUF and MapType.RINGBUF.name.lower() == "ringbuf"
    assert AttachKind("xdp") is AttachKind.XDP
    assert isinstance(Kind.STRUCT, enum.IntEnum) and int(Kind.STRUCT) == 4


def test_fallback_without_the_private_helper(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Python without enum._simple_enum builds the same class the usual way."""
    monkeypatch.delattr(enum, "_simple_enum", raising=False)

    @simple_enum(enum.IntEnum)
    class Color(IntEnumBase):
        """Colors."""

        RED = 1
        GREEN = 2
        VERT = 2

        @property
        def lower(self) -> str:
            return self.name.lower()

    assert type(Color) is enum.EnumType and issubclass(Color, enum.IntEnum)
    assert list(Color.__members__) == ["RED", "GREEN", "VERT"]
    assert Color["VERT"] is Color.GREEN and Color(1).lower == "red"
    assert Color.__doc__ == "Colors."
