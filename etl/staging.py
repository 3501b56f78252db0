"""Accepted records as the database and the report take them: the staging frame and the report rows.

Both are built column by column from the batch (a file may have millions
of rows): positions come out of the shapely arrays at once, text columns in
one pass each. Geometries go to PostgreSQL as WKB hex in WGS-84 lon/lat
(EPSG:4326); a point layer's representative point is its geometry, sent
once (``point`` NULL means "the geometry itself").
"""
from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from db.loading import STAGING_COLUMNS


@dataclass
class AcceptedRows:
    """What the report says of each accepted row, kept compact (a file may have millions)."""

    row: array[int] = field(default_factory=lambda: array("q"))
    source_id: list[str] = field(default_factory=list)
    lon: array[float] = field(default_factory=lambda: array("d"))
    lat: array[float] = field(default_factory=lambda: array("d"))
    district: list[str | None] = field(default_factory=list)

    def add(self, records: list[dict[str, Any]], points: np.ndarray, districts: np.ndarray) -> None:
        """Append a batch: its records, their points (shapely, WGS-84) and district codes."""
        self.row.extend(int(r.get("row") or 0) for r in records)
        self.source_id.extend(r["source_id"] for r in records)
        self.lon.extend(np.round(shapely.get_x(points), 7).tolist())
        self.lat.extend(np.round(shapely.get_y(points), 7).tolist())
        self.district.extend(districts.tolist())

    def drop(self, source_rows: set[int]) -> None:
        """Forget rows (by file row number) that a later check turned away."""
        keep = [i for i, r in enumerate(self.row) if r not in source_rows]
        self.row = array("q", (self.row[i] for i in keep))
        self.source_id = [self.source_id[i] for i in keep]
        self.lon = array("d", (self.lon[i] for i in keep))
        self.lat = array("d", (self.lat[i] for i in keep))
        self.district = [self.district[i] for i in keep]

    def __len__(self) -> int:
        return len(self.row)

    def as_dicts(self) -> list[dict[str, Any]]:
        return [{"row": r, "source_id": i, "lon": x, "lat": y, "district": d}
                for r, i, x, y, d in zip(self.row, self.source_id, self.lon, self.lat, self.district, strict=True)]


def staging_copy(records: list[dict[str, Any]], points: np.ndarray, districts: np.ndarray,
                 synthetic: bool) -> str:
    """The batch as COPY text for ``staging`` (columns :data:`db.loading.STAGING_COLUMNS`).

    PostgreSQL's text format (:func:`db.loading.copy_rows`): tab between
    columns, NULL as ``\\N``, and a backslash, tab, newline or carriage
    return in a value escaped. Built column by column: a column without any
    of those characters (the usual case) is taken as it is.

    Parameters
    ----------
    records : list of dict
        Accepted records (:func:`etl.validate.validate`), ``geom`` in WGS-84.
    points : numpy.ndarray
        Their representative points (shapely, WGS-84), in the same order.
    districts : numpy.ndarray
        Their district codes (``None`` outside all), in the same order.
    synthetic : bool
        Every row is synthetic (the demo city); else a row is when its
        ``attrs`` say so.
    """
    if not records:
        return ""
    geoms = np.empty(len(records), dtype=object)
    geoms[:] = [r["geom"] for r in records]
    attrs = [r.get("attrs") for r in records]
    own_point = np.fromiter((g is not p for g, p in zip(geoms, points, strict=True)), dtype=bool, count=len(geoms))
    point_hex: list[str] = [NULL] * len(records)
    if own_point.any():
        for i, h in zip(np.flatnonzero(own_point), wkb_hex(points[own_point]), strict=True):
            point_hex[i] = h
    columns = {
        "row_number": [str(int(r.get("row") or 0)) for r in records],
        "source_id": _text([str(r["source_id"]) for r in records]),
        "kind": _text([r.get("kind") for r in records]),
        "name": _text([r["name"] for r in records]),
        "address": _text([r.get("address") for r in records]),
        "phone": _text([r.get("phone") for r in records]),
        "opening_hours": _text([r.get("opening_hours") for r in records]),
        "capacity": [_integer(r.get("capacity")) for r in records],
        "opened_on": [r["opened_on"].isoformat() if r.get("opened_on") else NULL for r in records],
        "attrs": _text(["{}" if not a else json.dumps(a, ensure_ascii=False, default=str) for a in attrs]),
        "district_adcode": _text(districts.tolist()),
        "geom": wkb_hex(geoms),
        "point": point_hex,
        "synthetic": ["t" if synthetic or (a and a.get("synthetic")) else "f" for a in attrs],
    }
    return "\n".join(map("\t".join, zip(*(columns[c] for c in STAGING_COLUMNS), strict=True))) + "\n"


#: NULL in COPY's text format.
NULL = "\\N"
#: A 2-D point as WKB: byte order (little-endian), type 1, x, y.
_POINT_WKB = np.dtype([("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
#: What COPY's text format escapes, and how (the backslash first).
_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


def _integer(value: Any) -> str:
    """A whole number as COPY text; ``None`` or NaN as :data:`NULL`."""
    return NULL if value is None or value != value else str(int(value))


def _text(values: list[Any]) -> list[str]:
    """Text values as COPY text: ``None`` as :data:`NULL`, special characters escaped."""
    nulls = values.count(None)
    out = [NULL if v is None else v if type(v) is str else str(v) for v in values]
    together = "".join(out)  # one backslash per NULL; any other, or a tab or line break, needs escaping
    if together.count("\\") > nulls or "\t" in together or "\n" in together or "\r" in together:
        for char, escaped in _ESCAPES:
            out = [v if v is NULL else v.replace(char, escaped) for v in out]
    return out


def wkb_hex(geoms: np.ndarray) -> list[str]:
    """Each geometry (shapely) as hex WKB without SRID, as ``shapely.to_wkb(..., hex=True)`` writes it.

    Non-empty 2-D points, the usual batch, are packed with numpy at once;
    any other batch goes to shapely.
    """
    if len(geoms) == 0:
        return []
    types = shapely.get_type_id(geoms)
    if not ((types == 0).all() and not shapely.has_z(geoms).any() and not shapely.is_empty(geoms).any()):
        return list(shapely.to_wkb(geoms, hex=True, include_srid=False))
    packed = np.empty(len(geoms), dtype=_POINT_WKB)
    packed["order"], packed["type"] = 1, 1
    packed["x"], packed["y"] = shapely.get_x(geoms), shapely.get_y(geoms)
    text = packed.tobytes().hex().upper()
    width = 2 * _POINT_WKB.itemsize
    return [text[i:i + width] for i in range(0, len(text), width)]
