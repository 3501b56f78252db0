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
import pandas as pd
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


def staging_frame(records: list[dict[str, Any]], points: np.ndarray, districts: np.ndarray,
                  synthetic: bool) -> pd.DataFrame:
    """The batch as rows of the ``staging`` table (columns :data:`db.loading.STAGING_COLUMNS`).

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
    geoms = np.empty(len(records), dtype=object)
    geoms[:] = [r["geom"] for r in records]
    attrs = [r.get("attrs") for r in records]
    own_point = np.fromiter((g is not p for g, p in zip(geoms, points, strict=True)), dtype=bool, count=len(geoms))
    point_hex = np.full(len(records), None, dtype=object)
    if own_point.any():
        point_hex[own_point] = shapely.to_wkb(points[own_point], hex=True, include_srid=False)
    frame = pd.DataFrame({
        "row_number": [int(r.get("row") or 0) for r in records],
        "source_id": [str(r["source_id"]) for r in records],
        "kind": [r.get("kind") for r in records],
        "name": [r["name"] for r in records],
        "address": [r.get("address") for r in records],
        "phone": [r.get("phone") for r in records],
        "opening_hours": [r.get("opening_hours") for r in records],
        "capacity": pd.array([r.get("capacity") for r in records], dtype="Int64"),
        "opened_on": [r["opened_on"].isoformat() if r.get("opened_on") else None for r in records],
        "attrs": ["{}" if not a else json.dumps(a, ensure_ascii=False, default=str) for a in attrs],
        "district_adcode": districts,
        "geom": shapely.to_wkb(geoms, hex=True, include_srid=False),
        "point": point_hex,
        "synthetic": [synthetic or bool(a and a.get("synthetic")) for a in attrs],
    })
    return frame[list(STAGING_COLUMNS)]
