"""Check normalised records against the layer's rules and the city boundary.

:func:`validate` decides, row by row, what loads: geometry of the layer's
kind (polygons repaired with ``make_valid``), a non-empty name, text fields
no longer than the admin API allows (:data:`MAX_TEXT_CHARS`) and storable
(no NUL, no lone surrogate, no U+FFFD left by a failed decoding), a capacity
of 0 or more, a position inside the city (swapped lon/lat fixed when the swap
lands inside), and one record per ``source_id``. Every refusal is a
:class:`etl.errors.Reject` naming the row and the reason; every fix is a note.
Names are data and keep their text exactly: escaping is the web's job.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from etl.duplicates import collapse_duplicates, conflicts_of, row_label
from etl.errors import ETLError, Reject
from etl.normalise import without_gc
from geo.parse import parse_integer, polygonal_part, repair_polygon, swap_xy
from layers import Layer, get_layer

#: Longest name, address, phone, opening hours or kind, in characters: the
#: same for a loaded file and for an edit through the admin API.
MAX_TEXT_CHARS = 200
#: Longest source id, in characters (loads and the admin API).
MAX_SOURCE_ID_CHARS = 100
#: Text fields checked for length, with their limit.
TEXT_LIMITS = {"source_id": MAX_SOURCE_ID_CHARS, "name": MAX_TEXT_CHARS, "address": MAX_TEXT_CHARS,
               "phone": MAX_TEXT_CHARS, "opening_hours": MAX_TEXT_CHARS, "kind": MAX_TEXT_CHARS}
_UNSTORABLE = re.compile("[\x00\ud800-\udfff\ufffd]")
_POLYGONAL = ("Polygon", "MultiPolygon")
_TEXT_OR_NONE = {str, type(None)}


@dataclass
class Validated:
    """What loads, what does not and why, and what was fixed.

    Attributes
    ----------
    accepted : list of dict
        The records that load, each with ``point``: the representative point
        (shapely Point, WGS-84). A record with nothing to fix is the input
        dict itself, given that key; a fixed one is a copy with ``geom``
        fixed (swapped axes, repaired polygon, point of a polygon) and
        ``capacity`` as int or None.
    rejects : list of Reject
        One per refused row, in row order.
    notes : list of str
        One sentence per fix or collapsed duplicate.
    conflicts : dict
        Source id -> reason, for each id refused as conflicting records: a
        load read in pieces refuses that id's rows in the other pieces too.
    """

    accepted: list[dict]
    rejects: list[Reject]
    notes: list[str]
    conflicts: dict[str, str] = field(default_factory=dict)


def validate(records: list[dict], layer: str, city: BaseGeometry, *,
             city_name: str = "Zaozhuang", seen: dict | None = None) -> Validated:
    """Validate normalised records for ``layer`` against ``city``.

    Parameters
    ----------
    records : list of dict
        From :func:`etl.normalise.normalise`; ``geom`` in WGS-84 lon/lat degrees.
    layer : str
        A key of :data:`layers.registry.LAYERS`.
    city : shapely Polygon or MultiPolygon
        The whole city in WGS-84 lon/lat degrees.
    city_name : str
        Used in the "outside ..." reason.
    seen : dict, optional
        Source ids accepted by earlier calls for the same file (a file read in
        chunks): pass the same dict to every call so a repeat in a later chunk
        is collapsed or rejected like one in the same chunk. Updated in place.

    Raises
    ------
    ETLError
        When ``city`` is not a polygon in lon/lat degrees.
    """
    layer_rec = get_layer(layer)
    _check_city(city)
    with without_gc():
        return _validate(records, layer_rec, city, city_name, seen)


def _validate(records: list[dict], layer_rec: Layer, city: BaseGeometry, city_name: str,
              seen: dict | None) -> Validated:
    notes: list[str] = []
    rejects: list[Reject] = []
    candidates: list[dict] = []
    geoms = _fit_geometries(records, layer_rec, notes)
    points = _points(geoms)
    inside = _inside(city, geoms)
    texts = _text_suspects(records)
    for rec, (geom, geom_problem), point, ok, suspect in zip(records, geoms, points, inside, texts, strict=True):
        capacity = rec.get("capacity")
        if (ok and geom_problem is None and not suspect and _has_name(rec.get("name"))
                and (capacity is None or (type(capacity) is int and capacity >= 0))):
            rec["geom"], rec["point"] = geom, point  # the common case: nothing to say
            candidates.append(rec)
            continue
        problems = [geom_problem] if geom_problem else []
        if geom is not None and not ok:
            geom, point, problem = _unswap(rec, geom, city, city_name, notes)
            problems += [problem] if problem else []
        problems += [] if _has_name(rec.get("name")) else ["name is empty"]
        problems += text_problems(rec) if suspect else []
        capacity, problem = check_capacity(capacity)
        problems += [problem] if problem else []
        if problems:
            rejects.append(Reject(rec.get("row"), rec.get("source_id"), "; ".join(problems)))
        else:
            candidates.append({**rec, "geom": geom, "point": point, "capacity": capacity})
    accepted = collapse_duplicates(candidates, rejects, notes, seen)
    rejects.sort(key=lambda r: (r.row is None, r.row))
    return Validated(accepted=accepted, rejects=rejects, notes=notes, conflicts=conflicts_of(rejects))


def _has_name(name: object) -> bool:
    return name is not None and (name.strip() != "" if isinstance(name, str) else str(name).strip() != "")


def _text_suspects(records: list[dict]) -> np.ndarray:
    """Rows whose text fields need :func:`text_problems` row by row; the rest are known clean.

    Each field is checked for the whole batch at once: its longest value
    against its limit, and all its values joined for a character that must
    not be stored. Only a field that fails either is looked at per row.
    """
    suspects = np.zeros(len(records), dtype=bool)
    for name, limit in TEXT_LIMITS.items():
        values = [rec.get(name) for rec in records]
        if set(map(type, values)) <= _TEXT_OR_NONE:  # the usual case: the C loops of filter and join
            texts = list(filter(None, values))
        else:
            texts = [v if isinstance(v, str) else str(v) for v in values if v is not None]
        if texts and (max(map(len, texts)) > limit or _UNSTORABLE.search("\x1f".join(texts))):
            suspects |= np.array([v is not None and bool(_too_long_or_unstorable(v, limit)) for v in values])
    for i, rec in enumerate(records):
        attrs = rec.get("attrs")
        if attrs and _UNSTORABLE.search("\x1f".join(f"{k}\x1f{v}" for k, v in attrs.items())):
            suspects[i] = True
    return suspects


def _too_long_or_unstorable(value: object, limit: int) -> bool:
    text = value if isinstance(value, str) else str(value)
    return len(text) > limit or _UNSTORABLE.search(text) is not None


def _check_city(city: BaseGeometry) -> None:
    if not isinstance(city, BaseGeometry) or city.geom_type not in _POLYGONAL or city.is_empty:
        kind = getattr(city, "geom_type", type(city).__name__)
        raise ETLError(f"city was a {kind} but is expected to be a Polygon or MultiPolygon in WGS-84")
    minx, miny, maxx, maxy = city.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise ETLError(f"city bounds {city.bounds} are not lon/lat degrees; "
                       "convert the boundary to WGS-84 first")
    shapely.prepare(city)


# --- geometry --------------------------------------------------------------

def _fit_geometries(records: list[dict], layer: Layer, notes: list[str]) -> list[tuple]:
    """``(geometry or None, problem or None)`` per record, for the layer's kind.

    Valid points for a point layer and valid polygons for a polygon layer
    pass through untouched (the vectorised common case); the rest go
    through :func:`fit_geometry`.
    """
    geoms = np.empty(len(records), dtype=object)
    geoms[:] = [rec.get("geom") for rec in records]
    wanted = (0,) if layer.geometry_kind == "point" else (3, 6)
    fast = np.isin(shapely.get_type_id(geoms), wanted) & shapely.is_valid(geoms) & ~shapely.is_empty(geoms)
    out: list[tuple] = []
    for rec, geom, ok in zip(records, geoms, fast, strict=True):
        if ok:
            out.append((geom, None))
            continue
        geom, problem, note = fit_geometry(geom, layer)
        if note:
            notes.append(f"{row_label(rec)}: {note}")
        out.append((geom, problem))
    return out


def fit_geometry(geom: BaseGeometry | None, layer: Layer) -> tuple[BaseGeometry | None, str | None, str | None]:
    """Make ``geom`` fit ``layer.geometry_kind``: ``(geometry, problem, note)``.

    Point layers take the representative point of a polygon (with a note);
    polygon layers repair invalid polygons with ``make_valid`` and keep the
    polygonal part, and refuse points and lines.
    """
    if geom is None:
        return None, "geometry is null", None
    if geom.is_empty:
        return None, "geometry is empty", None
    kind = geom.geom_type
    if kind in _POLYGONAL or kind == "GeometryCollection":
        poly, note = _valid_polygon(geom)
        if poly is None:
            return None, note, None
        if layer.geometry_kind == "polygon":
            return poly, None, note
        point = poly.representative_point()
        where = f"({point.x:.6f}, {point.y:.6f})"
        return point, None, "; ".join(filter(None, [note, f"a {kind} for a point layer: "
                                                     f"its representative point {where} is used"]))
    if layer.geometry_kind == "polygon":
        return None, f"geometry is a {kind}; layer {layer.key} needs polygons", None
    if kind == "MultiPoint" and len(geom.geoms) == 1:
        return geom.geoms[0], None, None
    if kind != "Point":
        return None, f"geometry is a {kind}; layer {layer.key} needs one point (or a polygon)", None
    return geom, None, None


def _valid_polygon(geom: BaseGeometry) -> tuple[BaseGeometry | None, str | None]:
    """A valid polygonal geometry and a repair note, or ``(None, problem)``."""
    if geom.is_valid:
        poly = polygonal_part(geom)
        return (poly, None) if poly is not None else (None, f"geometry is a {geom.geom_type} "
                                                              "with no polygon in it")
    repaired, reason = repair_polygon(geom)
    if repaired is None:
        return None, f"polygon is invalid ({reason}) and nothing polygonal remains after make_valid"
    return repaired, f"polygon repaired with make_valid ({reason})"


def _points(fitted: list[tuple]) -> list:
    geoms = np.empty(len(fitted), dtype=object)
    geoms[:] = [g for g, _ in fitted]
    is_point = shapely.get_type_id(geoms) == 0
    points = geoms.copy()
    other = ~is_point & ~shapely.is_missing(geoms)
    points[other] = shapely.point_on_surface(geoms[other])
    return points.tolist()


def _inside(city: BaseGeometry, fitted: list[tuple]) -> np.ndarray:
    """Vectorised: whether each geometry meets the city (None counts as inside: no second reason)."""
    geoms = np.empty(len(fitted), dtype=object)
    geoms[:] = [g for g, _ in fitted]
    missing = shapely.is_missing(geoms)
    inside = np.ones(len(fitted), dtype=bool)
    inside[~missing] = shapely.intersects(city, geoms[~missing])
    return inside


def _unswap(rec: dict, geom: BaseGeometry, city: BaseGeometry, city_name: str,
            notes: list[str]) -> tuple[BaseGeometry, BaseGeometry, str | None]:
    """Swap lon/lat when that lands inside the city; else the "outside" problem."""
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    swapped = swap_xy(geom)
    if swapped.intersects(city):
        spoint = swapped if swapped.geom_type == "Point" else swapped.representative_point()
        notes.append(f"{row_label(rec)}: longitude and latitude were swapped ({point.x:.6f}, {point.y:.6f}); "
                     f"loaded at ({spoint.x:.6f}, {spoint.y:.6f})")
        return swapped, spoint, None
    return geom, point, (f"outside {city_name}: ({point.x:.6f}, {point.y:.6f}) is not inside "
                         f"the city boundary")


# --- attributes ------------------------------------------------------------

def text_problems(rec: dict) -> list[str]:
    """Text fields too long (:data:`TEXT_LIMITS`) or holding characters that cannot be stored.

    Checks the fields of :data:`TEXT_LIMITS` and every text key and value of
    ``attrs`` (the file's other columns, bounded in length by
    :data:`etl.limits.MAX_CELL_CHARS` when read).
    """
    problems = []
    for name, limit in TEXT_LIMITS.items():
        value = rec.get(name)
        if value is None:
            continue
        text = value if isinstance(value, str) else str(value)
        if len(text) > limit:
            problems.append(f"{name} is {len(text):,} characters long; at most {limit} are allowed")
        else:
            problems += _unstorable(name, text)
    for key, value in (rec.get("attrs") or {}).items():
        problems += _unstorable(f"column name {key!r}", str(key))
        if isinstance(value, str):
            problems += _unstorable(f"column {key!r}", value)
    return problems


def _unstorable(name: str, text: str) -> list[str]:
    """A problem naming the first character of ``text`` that must not be stored, if any."""
    if text.isascii() and "\x00" not in text:
        return []
    found = _UNSTORABLE.search(text)
    if found is None:
        return []
    char = found.group()
    what = ("a NUL character" if char == "\x00" else
            "U+FFFD, the mark left where text could not be decoded" if char == "\ufffd" else
            f"a lone surrogate U+{ord(char):04X} (broken UTF-16)")
    return [f"{name}: character {found.start() + 1} is {what}; such text is not loaded, fix it in the source"]


def check_capacity(value: object) -> tuple[int | None, str | None]:
    """Capacity as an int (or None when not given) and the problem, if any.

    Allowed: empty, or a whole number 0 or more (``12``, ``"12"``, ``12.0``).
    """
    if value is None:
        return None, None
    parsed = None if isinstance(value, bool) else parse_integer(value)
    if parsed is None:
        return None, f"capacity is {value!r}; must be a whole number, 0 or more"
    if parsed < 0:
        return None, f"capacity is {parsed}; must be 0 or more"
    return parsed, None
