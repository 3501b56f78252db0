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
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from etl.errors import ETLError, Reject
from etl.normalise import without_gc
from geo.parse import parse_integer, polygonal_part, repair_polygon, swap_xy
from layers import Layer, get_layer

#: Two records with one source_id further apart than this (metres, geodesic
#: on WGS-84) are different facilities, not a repeated row.
DUPLICATE_DISTANCE_M = 50.0
#: Longest name, address, phone, opening hours or kind, in characters: the
#: same for a loaded file and for an edit through the admin API.
MAX_TEXT_CHARS = 200
#: Longest source id, in characters (loads and the admin API).
MAX_SOURCE_ID_CHARS = 100
#: Text fields checked for length, with their limit.
TEXT_LIMITS = {"source_id": MAX_SOURCE_ID_CHARS, "name": MAX_TEXT_CHARS, "address": MAX_TEXT_CHARS,
               "phone": MAX_TEXT_CHARS, "opening_hours": MAX_TEXT_CHARS, "kind": MAX_TEXT_CHARS}
#: Fields compared when one source_id comes twice with one name (the position has its own rule).
COMPARED_FIELDS = ("address", "phone", "opening_hours", "capacity", "opened_on", "kind", "attrs")
#: Other columns left out of that comparison: running numbers that differ on every row.
ROW_COUNTER_COLUMNS = frozenset({"序号", "行号", "序", "no", "no.", "#", "index", "fid", "objectid", "ogc_fid"})
_UNSTORABLE = re.compile("[\x00\ud800-\udfff\ufffd]")
_GEOD = Geod(ellps="WGS84")
_POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass
class Validated:
    """What loads, what does not and why, and what was fixed.

    Attributes
    ----------
    accepted : list of dict
        Copies of the input records, with ``geom`` possibly fixed (swapped
        axes, repaired polygon, point of a polygon), ``capacity`` as int or
        None, and ``point``: the representative point (shapely Point, WGS-84).
    rejects : list of Reject
        One per refused row, in row order.
    notes : list of str
        One sentence per fix or collapsed duplicate.
    """

    accepted: list[dict]
    rejects: list[Reject]
    notes: list[str]


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
        return _validate(records, layer_rec, city, city_name, {} if seen is None else seen)


def _validate(records: list[dict], layer_rec: Layer, city: BaseGeometry, city_name: str,
              seen: dict) -> Validated:
    notes: list[str] = []
    rejects: list[Reject] = []
    candidates: list[dict] = []
    geoms = _fit_geometries(records, layer_rec, notes)
    points = _points(geoms)
    inside = _inside(city, geoms)
    for rec, (geom, geom_problem), point, ok in zip(records, geoms, points, inside, strict=True):
        problems = [geom_problem] if geom_problem else []
        if geom is not None and not ok:
            geom, point, problem = _unswap(rec, geom, city, city_name, notes)
            problems += [problem] if problem else []
        problems += _name_problems(rec.get("name"))
        problems += text_problems(rec)
        capacity, problem = check_capacity(rec.get("capacity"))
        problems += [problem] if problem else []
        if problems:
            rejects.append(Reject(rec.get("row"), rec.get("source_id"), "; ".join(problems)))
        else:
            candidates.append({**rec, "geom": geom, "point": point, "capacity": capacity})
    accepted = _collapse_duplicates(candidates, rejects, notes, seen)
    rejects.sort(key=lambda r: (r.row is None, r.row))
    return Validated(accepted=accepted, rejects=rejects, notes=notes)


def _label(rec: dict) -> str:
    sid = rec.get("source_id")
    return f"row {rec.get('row')}" + (f" ({sid})" if sid else "")


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
            notes.append(f"{_label(rec)}: {note}")
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
        notes.append(f"{_label(rec)}: longitude and latitude were swapped ({point.x:.6f}, {point.y:.6f}); "
                     f"loaded at ({spoint.x:.6f}, {spoint.y:.6f})")
        return swapped, spoint, None
    return geom, point, (f"outside {city_name}: ({point.x:.6f}, {point.y:.6f}) is not inside "
                         f"the city boundary")


# --- attributes ------------------------------------------------------------

def _name_problems(name: object) -> list[str]:
    if name is None or str(name).strip() == "":
        return ["name is empty"]
    return []


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


# --- duplicates ------------------------------------------------------------

@dataclass
class Seen:
    """The first record of a source_id (and whether the id turned out to be in conflict)."""

    row: int | None
    name: object
    lon: float
    lat: float
    values: tuple = ()
    conflict: str | None = None


def _collapse_duplicates(candidates: list[dict], rejects: list[Reject], notes: list[str],
                         first: dict[str, Seen]) -> list[dict]:
    """One record per source_id: repeats collapse, conflicts are rejected.

    A later record with the same source_id, the same name, a position within
    :data:`DUPLICATE_DISTANCE_M` and the same :data:`COMPARED_FIELDS` is the
    same facility typed twice (a note). Another name or a position farther
    away is another facility reusing the id: the later row is rejected,
    naming the earlier one. The same name and place with other values is a
    conflict nobody can settle here: both rows (and any later one with that
    id) are rejected, naming both lines and the fields that differ, so no
    guess is loaded. The first row is withdrawn only from this call's
    records; an earlier call's records are the caller's. ``first`` maps each
    source_id seen so far to its :class:`Seen`.
    """
    kept: list[dict | None] = []
    here: dict[str, int] = {}  # source_id -> index in kept, for ids first seen in this call
    for rec in candidates:
        sid = rec.get("source_id")
        earlier = first.get(sid) if sid is not None else None
        if earlier is None:
            if sid is not None:
                first[sid] = Seen(rec.get("row"), rec.get("name"), rec["point"].x, rec["point"].y, _values(rec))
                here[sid] = len(kept)
            kept.append(rec)
            continue
        problem = earlier.conflict or duplicate_conflict(earlier, rec)
        if problem is None:
            problem = _differing(earlier, rec)
            if problem is not None:  # no guess: the first row goes too
                earlier.conflict = problem
                index = here.pop(str(sid), None)
                if index is not None:
                    kept[index] = None
                    rejects.append(Reject(earlier.row, sid, problem))
        if problem is None:
            notes.append(f"{_label(rec)} repeats row {earlier.row}; loaded once")
        else:
            rejects.append(Reject(rec.get("row"), sid, problem))
    return [rec for rec in kept if rec is not None]


def collapse_repeats(records: list[dict]) -> tuple[list[dict], list[Reject], list[str]]:
    """The duplicate rule of :func:`validate` on records that share source ids, in row order.

    Each record needs ``row``, ``source_id``, ``name``, ``point`` (shapely,
    WGS-84) and the :data:`COMPARED_FIELDS`. Returns the records kept, the
    rejects and the notes, as :func:`validate` decides them within one call:
    the way a load read in pieces settles ids repeated across pieces.
    """
    rejects: list[Reject] = []
    notes: list[str] = []
    kept = _collapse_duplicates(records, rejects, notes, {})
    return kept, rejects, notes


def _values(rec: dict) -> tuple:
    attrs = {k: v for k, v in (rec.get("attrs") or {}).items() if str(k).strip().lower() not in ROW_COUNTER_COLUMNS}
    return tuple(attrs if name == "attrs" else rec.get(name) for name in COMPARED_FIELDS)


def _differing(earlier: Seen, later: dict) -> str | None:
    """The conflict of two records with one source_id, one name and one place, but other values."""
    differ = [f"{name} ({_short(a)} on row {earlier.row}, {_short(b)} on row {later.get('row')})"
              for name, a, b in zip(COMPARED_FIELDS, earlier.values, _values(later), strict=True) if a != b]
    if not differ:
        return None
    return (f"conflicting records: rows {earlier.row} and {later.get('row')} both have source_id "
            f"{later.get('source_id')} and name {later.get('name')!r} but differ in {'; '.join(differ)}. "
            "Neither is loaded: keep the right one in the file")


def _short(value: object) -> str:
    text = repr(value.isoformat() if hasattr(value, "isoformat") else value)
    return text if len(text) <= 40 else text[:37] + "..."


def duplicate_conflict(earlier: Seen, later: dict) -> str | None:
    """Why ``later`` cannot be a repeat of ``earlier`` (the first record with its source_id), or None.

    Another facility reuses a source_id when the name differs or the place is
    farther than :data:`DUPLICATE_DISTANCE_M` (geodesic metres on the WGS-84
    ellipsoid). The one duplicate rule: loads read in pieces use it too.
    """
    sid = later.get("source_id")
    row, name, lon, lat = earlier.row, earlier.name, earlier.lon, earlier.lat
    if name != later.get("name"):
        return (f"source_id {sid} is already used by row {row} with another name "
                f"({name!r}, here {later.get('name')!r})")
    b = later["point"]
    distance = _GEOD.inv(lon, lat, b.x, b.y)[2]
    if distance > DUPLICATE_DISTANCE_M:
        return (f"source_id {sid} is already used by row {row}, {distance:.0f} m away "
                f"(more than {DUPLICATE_DISTANCE_M:.0f} m: a different place)")
    return None
