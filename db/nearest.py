"""Nearest-facility (KNN) and name/address search queries.

SQL is static text with bound parameters only; nothing from a request is
pasted into it.

Nearest: the PostGIS KNN operator ``point <-> :q`` walks the GiST index on
``facility.point`` in planar (degree) order. That order is close to, but not,
the ground order, so each layer is fetched with a margin of candidates,
re-ranked by geodesic metres (``geo.nearest``); in the rare case the margin
could have missed one (:func:`geo.nearest.knn_is_exact`), every facility within
a planar radius that surely holds all points as near on the ground as the k-th
found is fetched through the index and ranked (two rounds at most). Distances are to the facility's
representative point (a park's ``point``, not its edge).

Search: ``ILIKE '%q%'`` (pg_trgm GIN indexes ``facility_name_trgm`` and
``facility_address_trgm`` serve it for q of 3+ characters) ranked by where
and how well q matches; similarity alone is poor for 2-character Chinese.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from geo.nearest import knn_is_exact, planar_radius_deg, rank_by_distance
from layers import LAYER_KEYS

_COLUMNS = ("f.id, f.layer, f.kind, f.name, f.address, f.phone, f.opening_hours, f.capacity, f.synthetic,"
            " f.district_adcode, d.name_zh AS district_zh, d.name_en AS district_en,"
            " ST_X(f.point) AS lon, ST_Y(f.point) AS lat")

#: The KNN query: per layer, the ``:m`` facilities nearest in planar order,
#: via the GiST index (``ORDER BY point <-> constant`` inside the lateral).
KNN_SQL = text(
    "SELECT c.* FROM unnest(:layers) AS l(layer) CROSS JOIN LATERAL ("
    f" SELECT {_COLUMNS}, f.point <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS deg"
    " FROM facility f LEFT JOIN district d ON d.adcode = f.district_adcode"
    " WHERE f.layer = l.layer AND f.status = 'active'"
    " ORDER BY f.point <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
    " LIMIT :m) c"
)

#: The second round, when planar order could have missed one: every facility of the layer within a
#: planar radius that surely holds all points as near on the ground as the k-th found (index-assisted).
KNN_WITHIN_SQL = text(
    "SELECT c.* FROM unnest(:layers) AS l(layer) CROSS JOIN LATERAL ("
    f" SELECT {_COLUMNS}, f.point <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS deg"
    " FROM facility f LEFT JOIN district d ON d.adcode = f.district_adcode"
    " WHERE f.layer = l.layer AND f.status = 'active'"
    " AND ST_DWithin(f.point, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :r)) c"
)

#: The district containing a position (boundary counts as inside).
DISTRICT_AT_SQL = text(
    "SELECT adcode, name_zh, name_en FROM district"
    " WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY adcode LIMIT 1")

#: First fetch per layer: ``max(k * _MARGIN, k + _EXTRA)`` candidates.
_MARGIN = 3
_EXTRA = 8


@dataclass
class NearestResult:
    """Facilities nearest a WGS-84 position, per layer, each with ``distance_m``."""

    lon: float
    lat: float
    district: dict | None
    by_layer: dict[str, list[dict]] = field(default_factory=dict)
    rounds: int = 0

    @property
    def inside_city(self) -> bool:
        return self.district is not None

    def ordered(self) -> list[dict]:
        """All facilities, nearest first (ties by layer order, then id)."""
        rows = [r for key in self.by_layer for r in self.by_layer[key]]
        return sorted(rows, key=lambda r: (r["distance_m"], LAYER_KEYS.index(r["layer"]), r["id"]))


def _fetch(conn: Connection, layers: list[str], lon: float, lat: float, m: int | None) -> dict[str, list[dict]]:
    rows = conn.execute(KNN_SQL, {"layers": layers, "lon": lon, "lat": lat,
                                  "m": m}).mappings().all()
    out: dict[str, list[dict]] = {key: [] for key in layers}
    for r in rows:
        out[r["layer"]].append(dict(r))
    return out


def _refine(rows: list[dict], lon: float, lat: float, k: int) -> list[dict]:
    idx, dist = rank_by_distance(lon, lat, np.array([r["lon"] for r in rows]),
                                 np.array([r["lat"] for r in rows]), k)
    out = []
    for i, d in zip(idx, dist):
        row = dict(rows[int(i)])
        row["distance_m"] = float(d)
        out.append(row)
    return out


def nearest(engine: Engine, lon: float, lat: float, layers: list[str], k: int) -> NearestResult:
    """The ``k`` facilities of each of ``layers`` nearest a WGS-84 position.

    Parameters
    ----------
    engine : Engine
    lon, lat : float
        WGS-84 degrees.
    layers : list of str
        Layer keys (already validated).
    k : int
        Facilities per layer, >= 1.

    Returns
    -------
    NearestResult
        Per layer, up to ``k`` rows nearest first, with ``distance_m``
        (geodesic metres on WGS-84) and the facility's fields.
    """
    result = NearestResult(lon=lon, lat=lat, district=None)
    m = max(k * _MARGIN, k + _EXTRA)
    with engine.connect() as conn:
        district = conn.execute(DISTRICT_AT_SQL, {"lon": lon, "lat": lat}).mappings().first()
        result.district = dict(district) if district else None
        result.rounds = 1
        fetched = _fetch(conn, layers, lon, lat, m)
        unsure: dict[str, float | None] = {}
        for key in layers:
            rows = fetched[key]
            best = _refine(rows, lon, lat, k)
            if len(rows) < m or not best or knn_is_exact(best[-1]["distance_m"], float(rows[-1]["deg"]), lat):
                result.by_layer[key] = best
            else:
                unsure[key] = planar_radius_deg(best[-1]["distance_m"], lat)
        for key, radius in unsure.items():
            # Planar order could have missed one: take every facility that could be as near
            # on the ground as the k-th found (or, with no trusted bound, the whole layer).
            result.rounds = 2
            if radius is None:
                rows = _fetch(conn, [key], lon, lat, None)[key]
            else:
                rows = [dict(r) for r in conn.execute(KNN_WITHIN_SQL, {"layers": [key], "lon": lon, "lat": lat,
                                                                      "r": radius}).mappings().all()]
            result.by_layer[key] = _refine(rows, lon, lat, k)
    result.by_layer = {key: result.by_layer[key] for key in layers}
    return result


# --------------------------------------------------------------------------
# search
# --------------------------------------------------------------------------

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

SEARCH_SQL = text(_SEARCH_SELECT + _SEARCH_ORDER)
SEARCH_LAYER_SQL = text(_SEARCH_SELECT + " AND f.layer = :layer" + _SEARCH_ORDER)


def like_pattern(q: str) -> str:
    r"""``%q%`` for ILIKE with ``\``, ``%`` and ``_`` in ``q`` escaped (taken literally)."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search(engine: Engine, q: str, *, layer: str | None = None, limit: int = 10) -> list[dict]:
    """Active facilities whose name or address contains ``q`` (case-insensitive), best first.

    Parameters
    ----------
    q : str
        The text to find, taken literally (no wildcards).
    layer : str, optional
        A layer key (already validated); all layers when omitted.
    limit : int
        Most rows returned.
    """
    params = {"q": q, "pattern": like_pattern(q), "limit": limit}
    stmt = SEARCH_SQL
    if layer is not None:
        stmt = SEARCH_LAYER_SQL
        params["layer"] = layer
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt, params).mappings().all()]


# --------------------------------------------------------------------------
# map points
# --------------------------------------------------------------------------

POINTS_SQL = text(
    "SELECT f.id, f.layer, f.kind, f.name, f.address, f.synthetic,"
    " ST_X(f.point) AS lon, ST_Y(f.point) AS lat"
    " FROM facility f WHERE f.status = 'active' ORDER BY f.layer, f.id")


def facility_points(engine: Engine) -> list[dict]:
    """Every active facility's representative point (WGS-84) with name and address, for the map."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(POINTS_SQL).mappings().all()]
