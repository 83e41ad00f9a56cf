"""A small stand-in for ``@dataclass(slots=True)``.

The standard decorator imports ``inspect`` (and with it ``dis``, ``ast``, ...) and costs
tens of milliseconds at start-up, which every ``corebpf`` command pays. Records here get
``__slots__``, ``__init__``, ``__repr__``, ``__eq__`` and ``__match_args__`` from their
annotations; type checkers see them through ``dataclass_transform``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import FunctionType

TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform


    _T = TypeVar("_T")
else:
    def dataclass_transform(**_: object) -> object:
        return lambda f: f

class _Factory:
    __slots__ = ("factory",)

    def __init__(self, factory: Callable[[], Any]):
        self.factory = factory


def field(*, default_factory: Callable[[], _T]) -> _T:
    """A default built anew for each instance (``field(default_factory=list)``)."""
    return _Factory(default_factory)  # type: ignore[return-value]


_MISSING = object()


def _from_template(names: list[str], defaults: dict[str, Any], frozen: bool,
                   glb: dict[str, Any], qual: str) -> Callable[..., None] | None:
    """The __init__ of these fields made from the precompiled template of their arity
    (corebpf._record_inits) with their names put in: no compile. None for frozen records
    with default factories and records with more fields than the templates have."""
    from . import _record_inits

    factories = any(isinstance(d, _Factory) for d in defaults.values())
    if len(names) > _record_inits.MAX_FIELDS or (factories and frozen):
        return None
    argdefs = tuple(_MISSING if isinstance(defaults[n], _Factory) else defaults[n]
                    for n in names if n in defaults)
    if any(n not in defaults for n in names[len(names) - len(argdefs):]):
        raise TypeError(f"{qual}: a field without a default follows one with a default")
    family = "z" if frozen else "c" if factories else "p"
    template = getattr(_record_inits, f"{family}{len(names)}").__code__
    # _f<k>: field k's factory (glb holds _f_<name> for those that have one; the others'
    # never run: their value is never _MISSING)
    rename = {f"f{k}": name for k, name in enumerate(names)}
    rename.update({f"_f{k}": f"_f_{name}" for k, name in enumerate(names)})
    code = template.replace(
        co_varnames=tuple(rename.get(v, v) for v in template.co_varnames),
        co_names=tuple(rename.get(v, v) for v in template.co_names),
        co_consts=tuple(rename.get(c, c) if isinstance(c, str) else c
                        for c in template.co_consts),
        co_name="__init__", co_qualname=f"{qual}.__init__")
    return FunctionType(code, glb, "__init__", argdefs or None)


def _build(cls: type[_T], frozen: bool) -> type[_T]:
    names: list[str] = []
    defaults: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        annotations = klass.__dict__.get("__annotations__", {})  # noqa: RUF063
        for name, ann in annotations.items():
            if isinstance(ann, str) and ann.startswith(("ClassVar", "typing.ClassVar")):
                continue
            if name not in names:
                names.append(name)
            if name in klass.__dict__:
                defaults[name] = klass.__dict__[name]
    ns = {k: v for k, v in cls.__dict__.items()
          if k not in names and k not in ("__dict__", "__weakref__")}
    ns["__slots__"] = tuple(names)
    ns["__match_args__"] = tuple(names)
    args, body, glb = [], [], {"_MISSING": _MISSING}
    for name in names:
        d = defaults.get(name, _MISSING)
        if d is _MISSING:
            args.append(name)
        elif isinstance(d, _Factory):
            glb[f"_f_{name}"] = d.factory
            args.append(f"{name}=_MISSING")
        else:
            glb[f"_d_{name}"] = d
            args.append(f"{name}=_d_{name}")
        value = (f"_f_{name}() if {name} is _MISSING else {name}"
                 if isinstance(d, _Factory) else name)
        if frozen:
            body.append(f"  _set(self, {name!r}, {value})")
        else:
            body.append(f"  self.{name} = {value}")
    glb["_set"] = object.__setattr__
    qual = cls.__qualname__
    built: list[type[_T]] = []
    init = _from_template(names, defaults, frozen, glb, qual)
    if init is None:  # default factories, or more fields than the templates have
        src = f"def __init__(self, {', '.join(args)}):\n" + ("\n".join(body) or "  pass")

        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            # compiled on the first instance: most commands make none of most records,
            # and a compile is most of what such a record costs at import
            local: dict[str, Any] = {}
            exec(src, glb, local)
            real = local["__init__"]
            real.__qualname__ = f"{qual}.__init__"
            built[0].__init__ = real  # type: ignore[method-assign]
            real(self, *args, **kwargs)

    ns["__init__"] = init

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{qual}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    ns["__repr__"] = __repr__
    ns["__eq__"] = __eq__
    if frozen:
        def __setattr__(self: Any, name: str, value: Any) -> None:
            raise AttributeError(f"{qual} is frozen: cannot set {name!r}")

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in names))

        ns["__setattr__"] = __setattr__
        ns["__hash__"] = __hash__
    else:
        ns["__hash__"] = None
    meta: Any = type(cls)
    new: type[_T] = meta(cls.__name__, cls.__bases__, ns)
    new.__qualname__ = qual
    built.append(new)
    return new


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[_T] | None = None, /, *, frozen: bool = False) -> Any:
    """Class decorator: a slotted record (``frozen=True`` forbids assignment)."""
    if cls is None:
        return lambda c: _build(c, frozen)
    return _build(cls, frozen)
