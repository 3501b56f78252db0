"""SQL of planners' zones: named sets of areas (townships, community grids, planning units).

Each function takes a :class:`~sqlalchemy.engine.Connection`. Zones are
WGS-84 (EPSG:4326) multipolygons; a demand cell belongs to the zone that
contains its centre (the first by ``zone.id`` where zones overlap). SQL is
static with bound parameters.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Zone:
    """One zone of a set: its id in the set, its name, and whether it is synthetic (demo)."""

    zone_id: str
    name: str
    synthetic: bool


_SET_NAMES = text("SELECT DISTINCT set_name FROM zone ORDER BY set_name")
_ZONES = text("SELECT zone_id, name, synthetic FROM zone WHERE set_name = :set_name ORDER BY zone_id")
_CELL_ZONES = text(
    "SELECT c.id, (SELECT z.zone_id FROM zone z WHERE z.set_name = :set_name AND ST_Contains(z.geom, c.geom) "
    "ORDER BY z.id LIMIT 1) AS zone_id FROM demand_cell c ORDER BY c.id")
_DELETE = text("DELETE FROM zone WHERE set_name = :set_name")
_INSERT = text(
    "INSERT INTO zone (set_name, zone_id, name, geom, synthetic, source_name) VALUES "
    "(:set_name, :zone_id, :name, ST_Multi(ST_GeomFromWKB(:wkb, 4326)), :synthetic, :source_name)")
_OUTLINES = text(
    "SELECT zone_id, name, ST_AsGeoJSON(ST_SimplifyPreserveTopology(geom, :tolerance), 6) AS geometry "
    "FROM zone WHERE set_name = :set_name ORDER BY zone_id")


def set_names(conn: Connection) -> list[str]:
    """Names of the loaded zone sets, sorted."""
    return list(conn.execute(_SET_NAMES).scalars())


def zones(conn: Connection, set_name: str) -> list[Zone]:
    """The zones of one set, by zone id."""
    return [Zone(r.zone_id, r.name, bool(r.synthetic)) for r in conn.execute(_ZONES, {"set_name": set_name})]


def cell_zones(conn: Connection, set_name: str) -> np.ndarray:
    """Each demand cell's zone id in ``set_name`` (``""`` when no zone holds its centre), by ``demand_cell.id``."""
    rows = conn.execute(_CELL_ZONES, {"set_name": set_name}).all()
    return np.array([r.zone_id or "" for r in rows], dtype=object)


def replace_set(conn: Connection, set_name: str, rows: list[dict[str, Any]], source_name: str) -> int:
    """Replace the zones of ``set_name`` by ``rows`` (``zone_id``, ``name``, ``wkb`` WGS-84, ``synthetic``).

    Runs in the caller's transaction, so a failed load leaves the old set.
    """
    conn.execute(_DELETE, {"set_name": set_name})
    if rows:
        conn.execute(_INSERT, [{**r, "set_name": set_name, "source_name": source_name} for r in rows])
    return len(rows)


def outlines(conn: Connection, set_name: str, tolerance_deg: float = 0.0005) -> dict[str, Any]:
    """The zones of a set as a GeoJSON FeatureCollection (WGS-84, simplified by ``tolerance_deg`` degrees)."""
    rows = conn.execute(_OUTLINES, {"set_name": set_name, "tolerance": tolerance_deg}).all()
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"zone_id": r.zone_id, "name": r.name},
         "geometry": json.loads(r.geometry)} for r in rows]}
