"""SQL that writes the demo city: districts, the demand grid and villages, its fingerprint.

Functions take a :class:`~sqlalchemy.engine.Connection` inside the caller's
transaction. Geometries arrive as WKB hex (districts) or EWKT (grid and
villages), WGS-84 lon/lat (EPSG:4326). The facilities themselves go through
the ordinary load path (:mod:`db.loading`).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.loading import copy_frame

#: The ``app_meta`` key holding the loaded demo's fingerprint.
FINGERPRINT_KEY = "demo_fingerprint"

_UPSERT_DISTRICT = text(
    "INSERT INTO district (adcode, name_zh, name_en, population, urban_population, rural_population,"
    " area_km2, seat, geom, source) VALUES (:adcode, :name_zh, :name_en, :population, :urban, :rural,"
    " :area, ST_SetSRID(ST_GeomFromWKB(decode(:seat, 'hex')), 4326),"
    " ST_Multi(ST_SetSRID(ST_GeomFromWKB(decode(:geom, 'hex')), 4326)), :source)"
    " ON CONFLICT (adcode) DO UPDATE SET name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en,"
    " population = EXCLUDED.population, urban_population = EXCLUDED.urban_population,"
    " rural_population = EXCLUDED.rural_population, area_km2 = EXCLUDED.area_km2,"
    " seat = EXCLUDED.seat, geom = EXCLUDED.geom, source = EXCLUDED.source")

_FINGERPRINT = text("SELECT value FROM app_meta WHERE key = :key")
_SET_FINGERPRINT = text(
    "INSERT INTO app_meta (key, value) VALUES (:key, CAST(:value AS jsonb)) ON CONFLICT (key) DO UPDATE "
    "SET value = EXCLUDED.value, updated_at = now()")

_ANALYZE = {table: text(f"ANALYZE {table}") for table in ("demand_cell", "village", "facility")}

_DELETE_STALE = text("DELETE FROM facility WHERE synthetic AND layer = :layer AND NOT (source_id = ANY(:keep))")


def upsert_districts(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update districts: ``adcode``, ``name_zh``, ``name_en``, ``population``, ``urban``,
    ``rural``, ``area`` (km²), ``seat`` and ``geom`` (WKB hex, WGS-84), ``source``."""
    conn.execute(_UPSERT_DISTRICT, list(rows))


def replace_grid(conn: Connection, cells: pd.DataFrame, villages: pd.DataFrame) -> None:
    """Replace every demand cell and village; frames carry the tables' columns, ``geom`` as EWKT."""
    conn.execute(text("TRUNCATE demand_cell, village"))
    copy_frame(conn, cells, "demand_cell", list(cells.columns))
    copy_frame(conn, villages, "village", list(villages.columns))


def analyze(conn: Connection, tables: Sequence[str]) -> None:
    """Refresh the planner statistics of the demo's tables after a bulk write."""
    for table in tables:
        if table not in _ANALYZE:
            raise ValueError(f"table was {table!r} but is expected to be one of {', '.join(_ANALYZE)}")
        conn.execute(_ANALYZE[table])


def delete_stale_synthetic(conn: Connection, layer: str, keep: Sequence[str]) -> int:
    """Delete the synthetic facilities of ``layer`` whose source id is not in ``keep``; returns how many."""
    return int(conn.execute(_DELETE_STALE, {"layer": layer, "keep": list(keep)}).rowcount)


def fingerprint(conn: Connection) -> dict[str, Any] | None:
    """The stored record of the loaded demo (``fingerprint``, seed, resolution, scale), if any."""
    row = conn.execute(_FINGERPRINT, {"key": FINGERPRINT_KEY}).first()
    return dict(row[0]) if row else None


def set_fingerprint(conn: Connection, value: str) -> None:
    """Store the record of the loaded demo (``value``: a JSON object)."""
    conn.execute(_SET_FINGERPRINT, {"key": FINGERPRINT_KEY, "value": value})
