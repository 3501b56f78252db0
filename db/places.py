"""SQL of the gazetteer (``place``) and the township list (``township``): sources, rebuilds, search.

Functions take a :class:`~sqlalchemy.engine.Connection` and return rows as
dicts. Positions are WGS-84 degrees (EPSG:4326). Search distances are
geodesic metres on the WGS-84 spheroid (``geography``). SQL is static with
bound parameters only.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.facilities import like_pattern

#: The ``app_meta`` key recording which source versions each gazetteer part was built from.
META_KEY = "gazetteer"

_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('minsheng-gazetteer'))")
_META = text("SELECT value FROM app_meta WHERE key = :key")
_SET_META = text("INSERT INTO app_meta (key, value) VALUES (:key, CAST(:value AS jsonb)) ON CONFLICT (key) DO UPDATE"
                 " SET value = EXCLUDED.value, updated_at = now()")

_DISTRICTS = text(
    "SELECT adcode, name_zh, name_en, ST_X(p) AS lon, ST_Y(p) AS lat FROM ("
    " SELECT adcode, name_zh, name_en, coalesce(seat, ST_PointOnSurface(geom)) AS p FROM district) d"
    " ORDER BY adcode")
_TOWNSHIPS = text("SELECT code, name, district_adcode, kind, ST_X(geom) AS lon, ST_Y(geom) AS lat, synthetic, source"
                  " FROM township ORDER BY code")
_UPSERT_TOWNSHIP = text(
    "INSERT INTO township (code, name, district_adcode, kind, geom, synthetic, source)"
    " VALUES (:code, :name, :district_adcode, :kind, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :synthetic, :source)"
    " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, district_adcode = EXCLUDED.district_adcode,"
    " kind = EXCLUDED.kind, geom = EXCLUDED.geom, synthetic = EXCLUDED.synthetic, source = EXCLUDED.source")
_VILLAGES = text("SELECT name, district_adcode, ST_X(geom) AS lon, ST_Y(geom) AS lat, synthetic FROM village"
                 " ORDER BY village_id")
_URBAN_CELLS = text("SELECT district_adcode, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM demand_cell WHERE urban"
                    " ORDER BY id")
#: One row per road name: the point of the named road nearest its own centre (so it lies on the road).
_ROADS = text(
    "SELECT name, bool_and(synthetic) AS synthetic,"
    " ST_X(ST_ClosestPoint(ST_Collect(geom), ST_Centroid(ST_Collect(geom)))) AS lon,"
    " ST_Y(ST_ClosestPoint(ST_Collect(geom), ST_Centroid(ST_Collect(geom)))) AS lat"
    " FROM road_edge WHERE name IS NOT NULL AND btrim(name) <> '' GROUP BY name ORDER BY name")
_FACILITIES = text(
    "SELECT id, layer, kind, name, address, district_adcode, synthetic, ST_X(point) AS lon, ST_Y(point) AS lat"
    " FROM facility WHERE status = 'active' ORDER BY id")
_DELETE_PART = text("DELETE FROM place WHERE part = :part")
_INSERT_PLACE = text(
    "INSERT INTO place (part, kind, name, name_en, pinyin, initials, keywords, address, layer, facility_id,"
    " district_adcode, geom, synthetic, source) VALUES (:part, :kind, :name, :name_en, :pinyin, :initials,"
    " :keywords, :address, :layer, :facility_id, :district_adcode, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),"
    " :synthetic, :source)")

# Tiers: 0 exact name, pinyin or initials; 1 the name, pinyin, initials or keywords contain q;
# 2 only the address contains q; 3 similar (pg_trgm) to the name or its pinyin: typo tolerance.
_SEARCH = text(
    "WITH c AS (SELECT p.*,"
    "  CASE WHEN lower(p.name) = lower(:q) OR (:qk <> '' AND (p.pinyin = :qk OR p.initials = :qk)) THEN 0"
    "       WHEN p.name ILIKE :pat ESCAPE '\\' OR p.keywords ILIKE :pat ESCAPE '\\'"
    "         OR (:qk <> '' AND p.pinyin LIKE :kpat) OR (:initials AND p.initials LIKE :kpat) THEN 1"
    "       WHEN p.address ILIKE :pat ESCAPE '\\' THEN 2 ELSE 3 END AS tier,"
    "  greatest(similarity(p.name, :q), CASE WHEN :qk <> '' THEN similarity(p.pinyin, :qk) ELSE 0 END) AS score"
    "  FROM place p"
    "  WHERE p.name ILIKE :pat ESCAPE '\\' OR p.keywords ILIKE :pat ESCAPE '\\' OR p.address ILIKE :pat ESCAPE '\\'"
    "     OR (:qk <> '' AND p.pinyin LIKE :kpat) OR (:initials AND p.initials LIKE :kpat)"
    "     OR p.name % :q OR (:qk <> '' AND p.pinyin % :qk))"
    " SELECT c.id, c.kind, c.name, c.name_en, c.address, c.layer, c.facility_id, c.district_adcode,"
    "  d.name_zh AS district_zh, d.name_en AS district_en, c.synthetic, c.tier, c.score,"
    "  ST_X(c.geom) AS lon, ST_Y(c.geom) AS lat,"
    "  CASE WHEN :lon IS NULL THEN NULL ELSE ST_Distance(c.geom::geography,"
    "       ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) END AS distance_m"
    " FROM c LEFT JOIN district d ON d.adcode = c.district_adcode"
    " WHERE c.tier < 3 OR c.score >= :similar"
    " ORDER BY c.tier, distance_m NULLS LAST, c.score DESC, c.id LIMIT :limit")


def lock(conn: Connection) -> None:
    """Serialise gazetteer rebuilds (a transaction-level advisory lock)."""
    conn.execute(_LOCK)


def built_from(conn: Connection) -> dict[str, Any]:
    """What each gazetteer part was built from (``{part: source versions}``); empty before the first build."""
    row = conn.execute(_META, {"key": META_KEY}).first()
    return dict(row[0]) if row else {}


def set_built_from(conn: Connection, value: dict[str, Any]) -> None:
    conn.execute(_SET_META, {"key": META_KEY, "value": json.dumps(value)})


def districts(conn: Connection) -> list[dict[str, Any]]:
    """Districts with their seat (or a point inside), WGS-84 degrees."""
    return [dict(r) for r in conn.execute(_DISTRICTS).mappings()]


def townships(conn: Connection) -> list[dict[str, Any]]:
    """The township list with positions (WGS-84 degrees), whether synthetic, and the source."""
    return [dict(r) for r in conn.execute(_TOWNSHIPS).mappings()]


def upsert_townships(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace townships: ``code``, ``name``, ``district_adcode``, ``kind``, ``lon``, ``lat``
    (WGS-84 degrees), ``synthetic``, ``source``."""
    if rows:
        conn.execute(_UPSERT_TOWNSHIP, list(rows))


def villages(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(_VILLAGES).mappings()]


def urban_cells(conn: Connection) -> list[dict[str, Any]]:
    """Centres of urban demand cells (WGS-84 degrees) with their district."""
    return [dict(r) for r in conn.execute(_URBAN_CELLS).mappings()]


def roads(conn: Connection) -> list[dict[str, Any]]:
    """One row per road name of the network, at a point on the road (WGS-84 degrees)."""
    return [dict(r) for r in conn.execute(_ROADS).mappings()]


def facilities(conn: Connection) -> list[dict[str, Any]]:
    """Active facilities with name, address and representative point (WGS-84 degrees)."""
    return [dict(r) for r in conn.execute(_FACILITIES).mappings()]


def replace_part(conn: Connection, part: str, rows: Sequence[dict[str, Any]]) -> None:
    """Replace the gazetteer rows of ``part`` with ``rows`` (the ``place`` columns, ``lon``/``lat`` in degrees)."""
    conn.execute(_DELETE_PART, {"part": part})
    if rows:
        conn.execute(_INSERT_PLACE, [{**r, "part": part} for r in rows])


def search(conn: Connection, q: str, key: str, *, initials: bool, near: tuple[float, float] | None, limit: int,
           similar: float) -> list[dict[str, Any]]:
    """Gazetteer rows matching ``q`` (or its pinyin ``key``), best tier first, nearest first within a tier.

    Parameters
    ----------
    conn : Connection
    q : str
        The text typed, taken literally.
    key : str
        ``q`` as lower-case pinyin letters and digits (``""`` when it has none).
    initials : bool
        Whether ``key`` may also match initials (``q`` was typed in Latin letters).
    near : (float, float) or None
        WGS-84 lon/lat to order by and measure ``distance_m`` from.
    limit : int
        Most rows.
    similar : float
        Least pg_trgm similarity (0–1) for a match by similarity alone.

    Returns
    -------
    list of dict
        ``kind``, ``name``, ``name_en``, ``address``, ``layer``, ``facility_id``, district names,
        ``synthetic``, ``tier`` (0 exact, 1 contains, 2 address, 3 similar), ``score``, ``lon``/``lat``
        (WGS-84) and ``distance_m`` (geodesic metres from ``near``, else ``None``).
    """
    lon, lat = near if near else (None, None)
    bound = {"q": q, "qk": key, "pat": like_pattern(q), "kpat": f"%{key}%", "initials": initials and bool(key),
             "lon": lon, "lat": lat, "limit": limit, "similar": similar}
    return [dict(r) for r in conn.execute(_SEARCH, bound).mappings()]
