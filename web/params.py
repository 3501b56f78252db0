"""Request parameters, declared once: the views parse with them and ``/openapi.json`` is built from them.

A :class:`Param` states a parameter's name, type, bounds, allowed values and
default. :func:`parse` reads a list of them from the request and returns the
checked values; every failure raises :class:`~web.errors.BadParameter`
naming the parameter and what is allowed. :func:`operation` attaches the
same declarations to a view, and :mod:`web.openapi` turns them into the
published document, so the bounds a client reads are the bounds the view
enforces (a test compares the two).
"""
from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from flask import request

from layers import layer_keys
from layers.districts import DISTRICT_CODES, DISTRICTS
from web.errors import BadParameter

#: Longest free-text parameter, characters.
MAX_TEXT = 200

_TYPES = ("number", "integer", "string", "date", "date-time", "bbox", "numbers", "boolean")
#: What an empty value (``?limit=``) means: ``error`` (400 naming the parameter: every API route) or
#: ``absent`` (as if not given: HTML forms submit their empty fields, so page views pass this).
BLANK_RULES = ("error", "absent")


@dataclass(frozen=True)
class Param:
    """One request parameter: how it is parsed and how it is documented.

    ``type`` is one of number, integer, string, date, date-time, bbox
    (``minlon,minlat,maxlon,maxlat``), numbers (comma-separated, as many as
    ``min_length`` to ``max_length``: an OGC bbox of 4 or 6 whose axes its CRS
    decides) or boolean. ``enum`` may be a callable that gives the allowed
    values at request time. ``location`` is ``query``, ``path`` or
    ``header``. ``clamp`` serves a number above ``maximum`` at the maximum
    instead of refusing it (OGC API – Features' ``limit``).
    """

    name: str
    type: str
    description: str
    required: bool = False
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    enum: Sequence[str] | Callable[[], Sequence[str]] | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    location: str = "query"
    schema_extra: Mapping[str, Any] = field(default_factory=dict)
    clamp: bool = False

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise ValueError(f"Param {self.name}: type {self.type!r} is not one of {_TYPES}")

    @property
    def attr(self) -> str:
        """The Python name of the parsed value (``bbox-crs`` → ``bbox_crs``)."""
        return self.name.replace("-", "_")

    def allowed_values(self) -> list[str] | None:
        if self.enum is None:
            return None
        return list(self.enum() if callable(self.enum) else self.enum)

    def but(self, **changes: Any) -> Param:
        """A copy with some fields changed (e.g. ``LAYER.but(required=False)``)."""
        return replace(self, **changes)

    # ------------------------------------------------------------ parsing
    def read(self, args: Mapping[str, Any] | None = None, *, blank: str = "error") -> Any:
        """This parameter's checked value from the query string (or ``args``); the default when absent.

        An empty value (``?limit=``) is refused naming the parameter, unless
        ``blank="absent"`` (page views: HTML forms submit empty fields).
        """
        source = request.args if args is None else args
        values = source.getlist(self.name) if hasattr(source, "getlist") else (
            [source[self.name]] if self.name in source else [])
        if len(values) > 1:
            raise BadParameter(f"{self.name} was given {len(values)} times; give it once", parameter=self.name)
        raw = None if not values or values[0] is None else str(values[0]).strip()
        if raw == "" and blank == "error":
            hint = "it is required" if self.required else "give a value or leave the parameter out"
            raise BadParameter(f"{self.name} was empty; {hint}", parameter=self.name, allowed=self._allowed())
        if not raw:
            if self.required:
                raise BadParameter(f"{self.name} is required", parameter=self.name, allowed=self._allowed())
            return self.default
        return self.coerce(raw)

    def coerce(self, raw: str) -> Any:
        """Check and convert one raw string (path parameters call this directly)."""
        if "\x00" in raw:
            raise BadParameter(f"{self.name} must not contain NUL characters", parameter=self.name)
        return _COERCE[self.type](self, raw)

    def _allowed(self) -> Any:
        values = self.allowed_values()
        if values is not None:
            return values
        if self.minimum is not None or self.maximum is not None:
            return {"min": self.minimum, "max": self.maximum}
        return None

    def _range_error(self, raw: str, what: str) -> BadParameter:
        return BadParameter(f"{self.name} was {raw[:40]!r} but must be {what} from {self.minimum:g} to "
                            f"{self.maximum:g}", parameter=self.name,
                            allowed={"min": self.minimum, "max": self.maximum})

    # ------------------------------------------------------------ documenting
    def schema(self) -> dict[str, Any]:
        """The JSON schema of this parameter, with the same bounds :meth:`coerce` enforces."""
        s: dict[str, Any] = dict(_SCHEMA_BASE[self.type])
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        values = self.allowed_values()
        if values is not None:
            s["enum"] = values
        if self.type == "string":
            s["minLength"] = 1 if self.min_length is None else self.min_length
            s["maxLength"] = MAX_TEXT if self.max_length is None else self.max_length
        if self.type == "numbers":
            s["minItems"], s["maxItems"] = self._count_bounds()
        if self.pattern:
            s["pattern"] = self.pattern
        if self.default is not None:
            s["default"] = self.default.isoformat() if isinstance(self.default, dt.date) else self.default
        s.update(self.schema_extra)
        return s

    def openapi(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "in": self.location,
                               "required": self.required or self.location == "path",
                               "description": self.description, "schema": self.schema()}
        if self.type in ("bbox", "numbers"):
            doc.update(style="form", explode=False)
        if self.clamp:
            doc["description"] += f" Values above {self.maximum:g} are served at {self.maximum:g}."
        return doc

    def _count_bounds(self) -> tuple[int, int]:
        return (1 if self.min_length is None else self.min_length,
                MAX_TEXT if self.max_length is None else self.max_length)


def _number(p: Param, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise p._range_error(raw, "a number") from None
    if not math.isfinite(value) or (p.minimum is not None and value < p.minimum) or (
            p.maximum is not None and value > p.maximum):
        raise p._range_error(raw, "a number")
    return value


def _integer(p: Param, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise p._range_error(raw, "a whole number") from None
    if p.clamp and p.maximum is not None and value > p.maximum:
        return int(p.maximum)
    if (p.minimum is not None and value < p.minimum) or (p.maximum is not None and value > p.maximum):
        raise p._range_error(raw, "a whole number")
    return value


def _string(p: Param, raw: str) -> str:
    values = p.allowed_values()
    if values is not None:
        if raw not in values:
            shown = ", ".join(values) if len(values) <= 30 else ", ".join(values[:30]) + ", …"
            raise BadParameter(f"{p.name} was {raw[:40]!r} but is expected to be one of {shown}",
                               parameter=p.name, allowed=values)
        return raw
    lo = 1 if p.min_length is None else p.min_length
    hi = MAX_TEXT if p.max_length is None else p.max_length
    if not lo <= len(raw) <= hi:
        raise BadParameter(f"{p.name} must be {lo} to {hi} characters long (it was {len(raw)})",
                           parameter=p.name, allowed={"min_length": lo, "max_length": hi})
    if p.pattern is not None and not re.fullmatch(p.pattern, raw):
        raise BadParameter(f"{p.name} was {raw[:40]!r} but must match {p.pattern}", parameter=p.name,
                           allowed={"pattern": p.pattern})
    return raw


def _date(p: Param, raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(f"{p.name} was {raw[:40]!r} but must be a date like 2022-06-30", parameter=p.name,
                           allowed="YYYY-MM-DD") from None


def _timestamp(p: Param, raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(f"{p.name} was {raw[:40]!r} but must be an ISO 8601 date or time, "
                           "e.g. 2022-06-30 or 2022-06-30T12:00:00Z", parameter=p.name) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _bbox(p: Param, raw: str) -> tuple[float, float, float, float]:
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise BadParameter(f"{p.name} was {raw[:60]!r} but must be four numbers minlon,minlat,maxlon,maxlat",
                           parameter=p.name)
    x1, y1, x2, y2 = values
    if not (-180 <= x1 < x2 <= 180 and -90 <= y1 < y2 <= 90):
        raise BadParameter(f"{p.name} must have minlon < maxlon within ±180 and minlat < maxlat within ±90",
                           parameter=p.name)
    return x1, y1, x2, y2


def _numbers(p: Param, raw: str) -> tuple[float, ...]:
    lo, hi = p._count_bounds()
    try:
        values = tuple(float(v) for v in raw.split(","))
    except ValueError:
        values = ()
    if not lo <= len(values) <= hi or not all(math.isfinite(v) for v in values):
        counts = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise BadParameter(f"{p.name} was {raw[:60]!r} but must be {counts} comma-separated numbers",
                           parameter=p.name, allowed={"min_items": lo, "max_items": hi})
    return values


def _boolean(p: Param, raw: str) -> bool:
    low = raw.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise BadParameter(f"{p.name} was {raw[:20]!r} but must be true or false", parameter=p.name,
                       allowed=["true", "false"])


_COERCE: dict[str, Callable[[Param, str], Any]] = {
    "number": _number, "integer": _integer, "string": _string, "date": _date, "date-time": _timestamp,
    "bbox": _bbox, "numbers": _numbers, "boolean": _boolean}

_SCHEMA_BASE: dict[str, dict[str, Any]] = {
    "number": {"type": "number"}, "integer": {"type": "integer"}, "string": {"type": "string"},
    "date": {"type": "string", "format": "date"}, "date-time": {"type": "string", "format": "date-time"},
    "bbox": {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "number"}},
    "numbers": {"type": "array", "items": {"type": "number"}}, "boolean": {"type": "boolean"}}


class Args(dict[str, Any]):
    """Parsed parameters by Python name, readable as attributes (``args.radius_m``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def parse(declared: Iterable[Param], args: Mapping[str, Any] | None = None, *, blank: str = "error",
          unknown: str = "ignore") -> Args:
    """Every declared query parameter, checked; raises BadParameter on the first bad one.

    Parameters
    ----------
    declared : iterable of Param
        The view's declarations (path and header ones are skipped).
    args : mapping, optional
        The query (default: the request's).
    blank : {"error", "absent"}
        ``error``: an empty value is a 400 naming the parameter (the API).
        ``absent``: an empty value counts as not given (page views: forms
        submit their empty fields).
    unknown : {"ignore", "refuse"}
        ``refuse``: a parameter that is not declared is a 400 naming it and
        the declared ones (OGC API – Features ``/req/core/query-param-unknown``).
    """
    if blank not in BLANK_RULES:
        raise ValueError(f"blank was {blank!r} but is expected to be one of {', '.join(BLANK_RULES)}")
    declared = [p for p in declared if p.location == "query"]
    source = request.args if args is None else args
    if unknown == "refuse":
        names = {p.name for p in declared}
        strangers = sorted(k for k in source if k not in names)
        if strangers:
            raise BadParameter(f"unknown query parameter {strangers[0][:40]!r}; this resource takes "
                               f"{', '.join(sorted(names))}", parameter=strangers[0][:40], allowed=sorted(names))
    return Args({p.attr: p.read(source, blank=blank) for p in declared})


# ------------------------------------------------------------------ operations
@dataclass(frozen=True)
class Operation:
    """What ``/openapi.json`` says of one view: its parameters, responses and body."""

    summary: str
    tag: str
    params: tuple[Param, ...] = ()
    responses: Mapping[str, Any] = field(default_factory=dict)
    request_body: Mapping[str, Any] | None = None
    security: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


def operation(summary: str, tag: str, params: Iterable[Param] = (), *, responses: Mapping[str, Any] | None = None,
              request_body: Mapping[str, Any] | None = None, security: bool = False,
              **extra: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach the view's declaration (read by :mod:`web.openapi`)."""
    op = Operation(summary, tag, tuple(params), responses or {}, request_body, security, extra)

    def attach(view: Callable[..., Any]) -> Callable[..., Any]:
        view.openapi = op  # type: ignore[attr-defined]
        return view

    return attach


# ------------------------------------------------------------------ shared declarations
LAYER = Param("layer", "string", "Facility layer key.", required=True, enum=layer_keys)
LAYER_OR_ALL = Param("layer", "string", "Facility layer key, or all layers.", enum=lambda: (*layer_keys(), "all"),
                     default="all")
DISTRICT = Param("district", "string", "District adcode: " + ", ".join(f"{c} {n[0]} {n[1]}"
                                                                       for c, n in DISTRICTS.items()),
                 enum=DISTRICT_CODES)
LANG = Param("lang", "string", "Language of labels.", enum=("zh", "en"), default="zh")


# ------------------------------------------------------------------ the earlier helpers
# Views not yet moved to declarations call these; each builds a Param, so the rules are the same.
def number(name: str, *, lo: float, hi: float, default: float | None = None, required: bool = False) -> Any:
    return Param(name, "number", name, required, default, lo, hi).read()


def integer(name: str, *, lo: int, hi: int, default: int | None = None, required: bool = False) -> Any:
    return Param(name, "integer", name, required, default, lo, hi).read()


def choice(name: str, allowed: Iterable[str], *, default: str | None = None, required: bool = False) -> Any:
    return Param(name, "string", name, required, default, enum=tuple(allowed)).read()


def layer(name: str = "layer", *, allow_all: bool = False, default: str | None = None,
          required: bool = True) -> Any:
    allowed = (*layer_keys(), "all") if allow_all else layer_keys()
    return choice(name, allowed, default=default, required=required and default is None)


def text_param(name: str, *, max_len: int = MAX_TEXT, min_len: int = 1, default: str | None = None,
               required: bool = False) -> Any:
    return Param(name, "string", name, required, default, min_length=min_len, max_length=max_len).read()


def date(name: str, *, default: dt.date | None = None, required: bool = False) -> Any:
    return Param(name, "date", name, required, default).read()


def timestamp(name: str, *, required: bool = False) -> Any:
    return Param(name, "date-time", name, required).read()


def bbox(name: str = "bbox", *, required: bool = False) -> Any:
    return Param(name, "bbox", name, required).read()


def district(name: str = "district", *, required: bool = False) -> Any:
    return DISTRICT.but(name=name, required=required).read()


def lang() -> str:
    value = request.args.get("lang", "zh")
    return "en" if value == "en" else "zh"
