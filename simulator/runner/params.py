"""Typed experiment parameters, declared once: type, default, unit and allowed range.

An experiment's ``Params`` is a frozen dataclass decorated with :func:`parameters`, each
field declared with :func:`param`::

    @parameters
    class Params:
        duration_s: float = param(30.0, unit="s", gt=0, le=86_400, help="simulated time")
        loss: float = param(0.01, unit="probability", ge=0, le=1)
        ranges_ms: tuple[tuple[float, float], ...] = param(((150, 300),), unit="ms", ge=1)

The declaration is the single source for the CLI (``--param``, ``--grid``, config files),
``splitbrain show``, ``--help`` and the notebooks' widgets. Every value is checked when a
``Params`` is built — in Python as on the command line — so a bad value is refused with one
line naming the parameter, the value and the allowed range before any folder is made or any
simulation starts (resilience4j/attrs style: validated at the door). Floats refuse NaN and
±inf unless a field says ``finite=False``. Bounds of a tuple field apply to every element.
Cross-field rules (``partition_at < heal_at``) stay in the class's own ``__post_init__``,
which runs after the per-field checks.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


class ExperimentError(ValueError):
    """Bad experiment name, parameter, value or run folder (message lists what is allowed)."""


@dataclass(frozen=True)
class Spec:
    """What a field allows. Bounds are inclusive (``ge``/``le``) or strict (``gt``/``lt``)."""

    unit: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple | None = None
    finite: bool = True
    min_len: int = 1
    help: str = ""

    def range_text(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        lo = f"{_num(self.ge)} <=" if self.ge is not None else f"{_num(self.gt)} <" if self.gt is not None else ""
        hi = f"<= {_num(self.le)}" if self.le is not None else f"< {_num(self.lt)}" if self.lt is not None else ""
        if not lo and not hi:
            return "any finite value" if self.finite else "any value"
        return " ".join(x for x in (lo, "x", hi) if x)

    def allows(self, v: Any) -> bool:
        if self.choices is not None:
            return v in self.choices
        if isinstance(v, float) and math.isnan(v):
            return False
        if self.ge is not None and not v >= self.ge:
            return False
        if self.gt is not None and not v > self.gt:
            return False
        if self.le is not None and not v <= self.le:
            return False
        if self.lt is not None and not v < self.lt:
            return False
        return True


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else repr(x)


def param(default: Any, *, unit: str = "", ge: float | None = None, gt: float | None = None,
          le: float | None = None, lt: float | None = None, choices: Iterable | None = None,
          finite: bool = True, min_len: int = 1, help: str = "") -> Any:
    """A dataclass field carrying its unit and allowed range (see the module docstring)."""
    spec = Spec(unit, ge, gt, le, lt, tuple(choices) if choices is not None else None, finite, min_len, help)
    return dataclasses.field(default=default, metadata={"spec": spec})


def spec_of(f: dataclasses.Field) -> Spec:
    return f.metadata.get("spec", Spec())


def parameters(cls: type) -> type:
    """Make ``cls`` a frozen dataclass whose fields are checked against their :func:`param`
    declarations on construction, before the class's own ``__post_init__`` (if any)."""
    own = cls.__dict__.get("__post_init__")

    def __post_init__(self) -> None:
        check_fields(self)
        if own is not None:
            own(self)
        else:  # no rule of its own: a base class's cross-field rules still apply
            inherited = getattr(super(cls, self), "__post_init__", None)
            if inherited is not None:
                inherited()

    cls.__post_init__ = __post_init__
    return dataclass(frozen=True)(cls)


def field_types(params_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(params_cls)
    return {f.name: hints.get(f.name, str) for f in dataclasses.fields(params_cls)}


def check_fields(obj: Any) -> None:
    """Raise ``ValueError`` naming the first field whose value has the wrong type or range."""
    types = field_types(type(obj))
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        _check_value(f.name, v, types[f.name], spec_of(f), top=True)


def _check_value(name: str, v: Any, t: Any, spec: Spec, top: bool = False) -> None:
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Union or (origin is not None and type(None) in args):
        if v is None:
            return
        t = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Literal:
        if v not in args:
            raise ValueError(_msg(name, v, "one of " + ", ".join(map(str, args)), spec))
        return
    if origin in (tuple, list):
        if not isinstance(v, (tuple, list)):
            raise ValueError(f"parameter {name}={v!r}: expected a tuple ({_type_name(t)})")
        if top and len(v) < spec.min_len:
            raise ValueError(f"parameter {name}={v!r}: needs at least {spec.min_len} item(s)")
        inner = args if (args and args[-1] is not Ellipsis) else [args[0] if args else Any] * len(v)
        if len(inner) != len(v):
            raise ValueError(f"parameter {name}={v!r}: expected {len(inner)} items ({_type_name(t)})")
        for item, it in zip(v, inner):
            try:
                _check_value(name, item, it, spec)
            except ValueError as e:
                if not top:
                    raise
                detail = str(e).split(": need ", 1)[-1] if ": need " in str(e) else str(e)
                raise ValueError(f"parameter {name}={v!r} is not allowed: every item needs {detail}") from None
        return
    if t is bool:
        if not isinstance(v, (bool,)):
            raise ValueError(f"parameter {name}={v!r}: expected true or false")
        return
    if t is int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"parameter {name}={v!r}: expected an integer")
    elif t is float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"parameter {name}={v!r}: expected a number")
        if isinstance(v, float) and math.isnan(v):
            raise ValueError(_msg(name, v, spec.range_text() + " (NaN is not allowed)", spec))
        if isinstance(v, float) and math.isinf(v) and spec.finite:
            raise ValueError(_msg(name, v, spec.range_text() + " (must be finite)", spec))
    elif t is str and not isinstance(v, str):
        raise ValueError(f"parameter {name}={v!r}: expected text")
    if not spec.allows(v):
        raise ValueError(_msg(name, v, spec.range_text(), spec))


def _msg(name: str, v: Any, allowed: str, spec: Spec) -> str:
    unit = f" ({spec.unit})" if spec.unit else ""
    return f"parameter {name}={v!r} is not allowed: need {allowed.replace('x', name, 1)}{unit}"


def _type_name(t: Any) -> str:
    if typing.get_origin(t) in (tuple, list):
        args = typing.get_args(t)
        if len(args) == 2 and args[1] is Ellipsis:
            inner = args[0]
            sep = "-" if typing.get_origin(inner) in (tuple, list) else ""
            return f"{_type_name(inner)}:{_type_name(inner)}:…" if not sep else f"{_type_name(inner)}:…"
        return "-".join(_type_name(a) for a in args)
    if typing.get_origin(t) is typing.Literal:
        return "|".join(map(str, typing.get_args(t)))
    return getattr(t, "__name__", None) or str(t).replace("typing.", "")


# -- reading values from text (CLI, config files) ---------------------------------------------------
TUPLE_SYNTAX = ("tuple parameters are written with ':' between items, e.g. clients=10:50:100; "
                "a tuple of pairs with '-' inside each pair, e.g. ranges_ms=150-151:150-300")


def coerce(name: str, raw: Any, t: Any) -> Any:
    """Turn ``raw`` (command-line text, or a TOML value) into a value of type ``t``."""
    if not isinstance(raw, str):
        return _from_toml(name, raw, t)
    origin, args = typing.get_origin(t), typing.get_args(t)
    try:
        if origin is typing.Union or (origin is not None and type(None) in args and len(args) == 2):
            if raw.lower() in ("none", "null", ""):
                return None
            return coerce(name, raw, next(a for a in args if a is not type(None)))
        if origin is typing.Literal:
            if raw not in [str(a) for a in args]:
                raise ValueError
            return next(a for a in args if str(a) == raw)
        if origin in (tuple, list):
            if args and args[-1] is not Ellipsis:  # a fixed-length tuple: "lo-hi"
                parts = [x.strip() for x in raw.split("-")]
                if len(parts) != len(args):
                    raise ValueError
                return tuple(coerce(name, x, a) for x, a in zip(parts, args))
            inner = args[0] if args else str
            items = [coerce(name, x.strip(), inner) for x in raw.split(":") if x.strip()]
            return tuple(items) if origin is tuple else items
        if t is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if t is int:
            return int(raw)
        if t is float:
            return float(raw)
        if t is str:
            return raw
    except ValueError:
        hint = f"; {TUPLE_SYNTAX}" if origin in (tuple, list) else ""
        raise ExperimentError(f"parameter {name}: cannot read {raw!r} as {_type_name(t)}{hint}") from None
    raise ExperimentError(f"parameter {name}: type {_type_name(t)} cannot be set from the command line")


def _from_toml(name: str, raw: Any, t: Any) -> Any:
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin in (tuple, list) and isinstance(raw, list):
        if args and args[-1] is not Ellipsis:
            return tuple(_from_toml(name, x, a) for x, a in zip(raw, args))
        return tuple(_from_toml(name, x, args[0] if args else str) for x in raw)
    if t is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    return raw  # the type check at construction names anything else that is wrong


def describe(params_cls: type, base: Any) -> list[dict[str, str]]:
    """One row per field: name, type, default (from ``base``), unit, allowed range, help."""
    rows = []
    for f in dataclasses.fields(params_cls):
        s, t = spec_of(f), field_types(params_cls)[f.name]
        rng = "any text" if t is str and s.choices is None else s.range_text()
        rows.append({"name": f.name, "type": _type_name(t), "default": _show(getattr(base, f.name)),
                     "unit": s.unit, "range": rng, "help": s.help})
    return rows


def _show(v: Any) -> str:
    if isinstance(v, tuple):
        return ":".join("-".join(map(_show, x)) if isinstance(x, tuple) else _show(x) for x in v)
    return repr(v) if isinstance(v, str) else str(v)
