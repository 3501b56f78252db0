"""District rows and outlines (WGS-84). SQL with bound parameters only."""
from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_ROWS = text(
    "SELECT adcode, name_zh, name_en, population, urban_population, rural_population, area_km2,"
    " ST_X(seat) AS seat_lon, ST_Y(seat) AS seat_lat, source FROM district ORDER BY adcode")

_OUTLINES = text(
    "SELECT adcode, name_zh, name_en, population, area_km2,"
    " ST_AsGeoJSON(CASE WHEN :tol > 0 THEN ST_SimplifyPreserveTopology(geom, :tol) ELSE geom END, 6)"
    " AS geojson FROM district ORDER BY adcode")

_NAMES = text("SELECT adcode, name_zh, name_en FROM district ORDER BY adcode")


def rows(conn: Connection) -> list[dict[str, Any]]:
    """Every district with its census figures and seat, by adcode."""
    return [dict(r) for r in conn.execute(_ROWS).mappings().all()]


def outlines(conn: Connection, *, tolerance_deg: float = 0.0) -> list[dict[str, Any]]:
    """Every district's outline as GeoJSON text (``geojson``), simplified by ``tolerance_deg`` degrees."""
    return [dict(r) for r in conn.execute(_OUTLINES, {"tol": tolerance_deg}).mappings().all()]


def names(conn: Connection) -> dict[str, tuple[str, str]]:
    """adcode → (Chinese name, English name) of the loaded districts."""
    return {r[0]: (r[1], r[2]) for r in conn.execute(_NAMES).all()}
