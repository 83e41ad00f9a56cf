"""Enum classes built the quick way at import.

``class X(enum.IntEnum)`` costs about 13 µs a member on CPython 3.11-3.13 (the metaclass
checks each one in turn); the standard library builds its own large enums with
``enum._simple_enum``, about 3x faster. corebpf's tables that every command imports (map,
program and attach types, BTF kinds: some 150 members) are built so. Where that helper is
missing, the class is built by the metaclass as usual::

    @simple_enum(enum.IntEnum)
    class MapType(IntEnumBase):
        HASH = 1

Type checkers see an ordinary ``enum.IntEnum`` subclass.
"""

from __future__ import annotations

import enum

TYPE_CHECKING = False

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    _T = TypeVar("_T")
    IntEnumBase = enum.IntEnum
    EnumBase = enum.Enum
else:
    # at run time the class body is a plain class; simple_enum makes the enum of it
    IntEnumBase = EnumBase = object


def standard_enum(etype: type[enum.Enum], cls: type[Any]) -> type[Any]:
    """``cls``'s body made an ``etype`` subclass by the metaclass, as a class statement
    would (the fallback, and what tests compare the quick way with)."""
    meta: Any = type(etype)
    namespace = meta.__prepare__(cls.__name__, (etype,))
    for key, value in cls.__dict__.items():
        if key not in ("__dict__", "__weakref__"):
            namespace[key] = value
    return meta(cls.__name__, (etype,), namespace)  # type: ignore[no-any-return]


def simple_enum(etype: type[enum.Enum]) -> Callable[[type[_T]], type[_T]]:
    """Class decorator: the class's body as an ``etype`` (enum.IntEnum, enum.Enum)."""
    quick = getattr(enum, "_simple_enum", None)

    def convert(cls: type[_T]) -> type[_T]:
        if quick is not None:
            return quick(etype)(cls)  # type: ignore[no-any-return]
        return standard_enum(etype, cls)

    return convert


__all__ = ["EnumBase", "IntEnumBase", "simple_enum", "standard_enum"]
