"""Request parameter parsing. Every helper raises BadParameter naming the
parameter and what is allowed; views never see an unchecked value."""
from __future__ import annotations

import datetime as dt
import math
from typing import Iterable

from flask import request

from layers import LAYER_KEYS
from web.errors import BadParameter

MAX_TEXT = 200


def _raw(name: str, required: bool):
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadParameter(f"{name} was given {len(values)} times; give it once", parameter=name)
    value = values[0] if values else None
    if value is None or value.strip() == "":
        if required:
            raise BadParameter(f"{name} is required", parameter=name)
        return None
    return value.strip()


def number(name: str, *, lo: float, hi: float, default: float | None = None, required: bool = False) -> float | None:
    raw = _raw(name, required)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(f"{name} was {raw[:40]!r} but must be a number from {lo:g} to {hi:g}",
                           parameter=name, allowed={"min": lo, "max": hi}) from None
    if not math.isfinite(value) or not (lo <= value <= hi):
        raise BadParameter(f"{name} was {raw[:40]!r} but must be from {lo:g} to {hi:g}",
                           parameter=name, allowed={"min": lo, "max": hi})
    return value


def integer(name: str, *, lo: int, hi: int, default: int | None = None, required: bool = False) -> int | None:
    raw = _raw(name, required)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name} was {raw[:40]!r} but must be a whole number from {lo} to {hi}",
                           parameter=name, allowed={"min": lo, "max": hi}) from None
    if not (lo <= value <= hi):
        raise BadParameter(f"{name} was {value} but must be from {lo} to {hi}", parameter=name,
                           allowed={"min": lo, "max": hi})
    return value


def choice(name: str, allowed: Iterable[str], *, default: str | None = None, required: bool = False) -> str | None:
    allowed = list(allowed)
    raw = _raw(name, required)
    if raw is None:
        return default
    if raw not in allowed:
        raise BadParameter(f"{name} was {raw[:40]!r} but is expected to be one of {', '.join(allowed)}",
                           parameter=name, allowed=allowed)
    return raw


def layer(name: str = "layer", *, allow_all: bool = False, default: str | None = None,
          required: bool = True) -> str | None:
    allowed = list(LAYER_KEYS) + (["all"] if allow_all else [])
    return choice(name, allowed, default=default, required=required and default is None)


def text_param(name: str, *, max_len: int = MAX_TEXT, min_len: int = 1, default: str | None = None,
               required: bool = False) -> str | None:
    raw = _raw(name, required)
    if raw is None:
        return default
    if len(raw) < min_len or len(raw) > max_len:
        raise BadParameter(f"{name} must be {min_len} to {max_len} characters long (it was {len(raw)})",
                           parameter=name, allowed={"min_length": min_len, "max_length": max_len})
    if "\x00" in raw:
        raise BadParameter(f"{name} must not contain NUL characters", parameter=name)
    return raw


def date(name: str, *, default: dt.date | None = None, required: bool = False) -> dt.date | None:
    raw = _raw(name, required)
    if raw is None:
        return default
    try:
        return dt.date.fromisoformat(raw[:10]) if len(raw) in (10,) else dt.date.fromisoformat(raw)
    except ValueError:
        raise BadParameter(f"{name} was {raw[:40]!r} but must be a date like 2022-06-30", parameter=name,
                           allowed="YYYY-MM-DD") from None


def timestamp(name: str, *, required: bool = False) -> dt.datetime | None:
    raw = _raw(name, required)
    if raw is None:
        return None
    try:
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadParameter(f"{name} was {raw[:40]!r} but must be an ISO 8601 date or time, "
                           "e.g. 2022-06-30 or 2022-06-30T12:00:00Z", parameter=name) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


#: Longest side of a bbox in degrees (about 220 km): bounds the work a request can ask for.
MAX_BBOX_SIDE_DEG = 2.0


def bbox(name: str = "bbox", *, required: bool = False) -> tuple[float, float, float, float] | None:
    raw = _raw(name, required)
    if raw is None:
        return None
    parts = raw.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise BadParameter(f"{name} was {raw[:60]!r} but must be four numbers minlon,minlat,maxlon,maxlat",
                           parameter=name)
    x1, y1, x2, y2 = values
    if not (-180 <= x1 < x2 <= 180 and -90 <= y1 < y2 <= 90):
        raise BadParameter(f"{name} must have minlon < maxlon within ±180 and minlat < maxlat within ±90",
                           parameter=name)
    if (x2 - x1) > MAX_BBOX_SIDE_DEG * 4 or (y2 - y1) > MAX_BBOX_SIDE_DEG * 4:
        raise BadParameter(f"{name} is too large: each side must be at most {MAX_BBOX_SIDE_DEG * 4:g} degrees",
                           parameter=name, allowed={"max_side_deg": MAX_BBOX_SIDE_DEG * 4})
    return x1, y1, x2, y2


def district(name: str = "district", *, required: bool = False) -> str | None:
    from layers.districts import DISTRICT_CODES

    return choice(name, DISTRICT_CODES, required=required)


def lang() -> str:
    value = request.args.get("lang", "zh")
    return "en" if value == "en" else "zh"
