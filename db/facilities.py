"""Read queries on facilities: counts, nearest candidates, search, map points.

Each function takes a :class:`~sqlalchemy.engine.Connection` and returns
rows as dicts. SQL is static text with bound parameters only; nothing from a
request is pasted into it. Positions are WGS-84 longitude and latitude in
degrees (``facility.point`` is stored in EPSG:4326); the ``deg`` column of the
nearest queries is the planar distance in degrees that the PostGIS ``<->``
operator orders by, not a ground distance.

Search: ``ILIKE '%q%'`` (pg_trgm GIN indexes ``facility_name_trgm`` and
``facility_address_trgm`` serve it for q of 3+ characters) ranked by where
and how well q matches; similarity alone is poor for 2-character Chinese.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

_COUNTS = text(
    "SELECT layer, district_adcode, kind, count(*) AS n, sum(capacity) AS cap, bool_or(synthetic) AS synthetic"
    " FROM facility WHERE status = 'active' GROUP BY layer, district_adcode, kind")

#: The fields a resident sees, with the district's names and the WGS-84 position.
_COLUMNS = ("f.id, f.layer, f.kind, f.name, f.address, f.phone, f.opening_hours, f.capacity, f.synthetic,"
            " f.district_adcode, d.name_zh AS district_zh, d.name_en AS district_en,"
            " ST_X(f.point) AS lon, ST_Y(f.point) AS lat")

#: Per layer, the ``:m`` facilities nearest in planar (degree) order, through the (layer, point) GiST
#: index (``ORDER BY point <-> constant`` inside the lateral). ``:m`` NULL means the whole layer.
KNN_SQL = text(
    "SELECT c.* FROM unnest(:layers) AS l(layer) CROSS JOIN LATERAL ("
    f" SELECT {_COLUMNS}, f.point <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS deg"
    " FROM facility f LEFT JOIN district d ON d.adcode = f.district_adcode"
    " WHERE f.layer = l.layer AND f.status = 'active'"
    " ORDER BY f.point <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
    " LIMIT :m) c"
)

#: Per layer, every facility within a planar radius ``:r`` (degrees) of the position (index-assisted).
_KNN_WITHIN = text(
    "SELECT c.* FROM unnest(:layers) AS l(layer) CROSS JOIN LATERAL ("
    f" SELECT {_COLUMNS}, f.point <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS deg"
    " FROM facility f LEFT JOIN district d ON d.adcode = f.district_adcode"
    " WHERE f.layer = l.layer AND f.status = 'active'"
    " AND ST_DWithin(f.point, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :r)) c"
)

#: The district containing a position (its boundary counts as inside).
_DISTRICT_AT = text(
    "SELECT adcode, name_zh, name_en FROM district"
    " WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY adcode LIMIT 1")

_SEARCH_SELECT = (
    f"SELECT {_COLUMNS},"
    " strpos(lower(f.name), lower(:q)) AS name_pos,"
    " strpos(lower(coalesce(f.address, '')), lower(:q)) AS address_pos,"
    " greatest(similarity(f.name, :q), similarity(coalesce(f.address, ''), :q)) AS score"
    " FROM facility f LEFT JOIN district d ON d.adcode = f.district_adcode"
    " WHERE f.status = 'active'"
    " AND (f.name ILIKE :pattern ESCAPE '\\' OR f.address ILIKE :pattern ESCAPE '\\')")

# Rank: exact name, then name starting with q, then name containing q (earlier
# is better), then address-only matches; then higher trigram similarity,
# shorter name, and id for a stable order.
_SEARCH_ORDER = (
    " ORDER BY (lower(f.name) = lower(:q)) DESC,"
    " CASE WHEN strpos(lower(f.name), lower(:q)) = 1 THEN 0"
    "      WHEN strpos(lower(f.name), lower(:q)) > 1 THEN 1 ELSE 2 END,"
    " nullif(strpos(lower(f.name), lower(:q)), 0) NULLS LAST, score DESC, length(f.name), f.id"
    " LIMIT :limit")

_SEARCH = text(_SEARCH_SELECT + _SEARCH_ORDER)
_SEARCH_LAYER = text(_SEARCH_SELECT + " AND f.layer = :layer" + _SEARCH_ORDER)

_MAP_POINTS = text(
    "SELECT f.id, f.layer, f.kind, f.name, f.address, f.synthetic,"
    " ST_X(f.point) AS lon, ST_Y(f.point) AS lat"
    " FROM facility f WHERE f.status = 'active' ORDER BY f.layer, f.id")


def counts(conn: Connection) -> list[dict[str, Any]]:
    """Active facilities counted by (layer, district, kind), with capacity totals and whether any is synthetic."""
    return [dict(r) for r in conn.execute(_COUNTS).mappings().all()]


def knn(conn: Connection, layers: Sequence[str], lon: float, lat: float, m: int | None) -> list[dict[str, Any]]:
    """Per layer, the ``m`` active facilities nearest a position in planar (degree) order.

    Parameters
    ----------
    conn : Connection
    layers : sequence of str
        Layer keys (already checked).
    lon, lat : float
        The position, WGS-84 degrees.
    m : int or None
        Facilities per layer; ``None`` for every facility of the layer.

    Returns
    -------
    list of dict
        The facility's fields with ``lon``/``lat`` (WGS-84 degrees) and ``deg``
        (planar distance in degrees, the KNN order); layer by layer, each
        nearest first in that order.
    """
    return [dict(r) for r in conn.execute(KNN_SQL, {"layers": list(layers), "lon": lon, "lat": lat,
                                                    "m": m}).mappings().all()]


def knn_within(conn: Connection, layers: Sequence[str], lon: float, lat: float,
               radius_deg: float) -> list[dict[str, Any]]:
    """Per layer, every active facility within ``radius_deg`` planar degrees of a WGS-84 position.

    Same fields as :func:`knn`, in no particular order.
    """
    return [dict(r) for r in conn.execute(_KNN_WITHIN, {"layers": list(layers), "lon": lon, "lat": lat,
                                                        "r": radius_deg}).mappings().all()]


def district_at(conn: Connection, lon: float, lat: float) -> dict[str, Any] | None:
    """``adcode``, ``name_zh``, ``name_en`` of the district covering a WGS-84 position, or ``None`` outside."""
    row = conn.execute(_DISTRICT_AT, {"lon": lon, "lat": lat}).mappings().first()
    return dict(row) if row else None


def like_pattern(q: str) -> str:
    r"""``%q%`` for ILIKE with ``\``, ``%`` and ``_`` in ``q`` escaped (taken literally)."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(conn: Connection, q: str, *, layer: str | None, limit: int) -> list[dict[str, Any]]:
    """Active facilities whose name or address contains ``q`` (case-insensitive), best first.

    Parameters
    ----------
    conn : Connection
    q : str
        The text to find, taken literally (no wildcards).
    layer : str or None
        A layer key (already checked); every layer when ``None``.
    limit : int
        Most rows returned.

    Returns
    -------
    list of dict
        The facility's fields (position in WGS-84 degrees) with ``name_pos``
        and ``address_pos`` (1-based character where ``q`` starts, 0 when
        absent) and ``score`` (trigram similarity, 0 to 1).
    """
    bound: dict[str, Any] = {"q": q, "pattern": like_pattern(q), "limit": limit}
    stmt = _SEARCH
    if layer is not None:
        stmt = _SEARCH_LAYER
        bound["layer"] = layer
    return [dict(r) for r in conn.execute(stmt, bound).mappings().all()]


def map_points(conn: Connection) -> list[dict[str, Any]]:
    """Every active facility's representative point (WGS-84 degrees) with name, kind and address, for the map."""
    return [dict(r) for r in conn.execute(_MAP_POINTS).mappings().all()]
