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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from db import read_alone
from geo.crs import METRIC_EPSG

#: The leading columns of :data:`NEAREST_SQL`, about the position rather than a candidate.
_LEAD_FIELDS = ("here_adcode", "here_name_zh", "here_name_en", "net_edges", "net_synthetic")

_COUNTS = text(
    "SELECT layer, district_adcode, kind, count(*) AS n, sum(capacity) AS cap, bool_or(synthetic) AS synthetic"
    " FROM facility WHERE status = 'active' GROUP BY layer, district_adcode, kind")

#: The fields a resident sees, with the district's names and the WGS-84 position.
_COLUMNS = ("f.id, f.layer, f.kind, f.name, f.address, f.phone, f.opening_hours, f.capacity, f.synthetic,"
            " f.district_adcode, d.name_zh AS district_zh, d.name_en AS district_en,"
            " ST_X(f.point) AS lon, ST_Y(f.point) AS lat")

_HERE = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"

#: A candidate: the resident's fields, ``deg`` (planar degrees from the position to the facility's geometry,
#: what ``<->`` orders by) and, for an area (a park's polygon), ``area_m``: geodesic metres on the WGS-84
#: spheroid to its nearest point (0 inside); NULL for a point, whose metres the caller computes.
_CANDIDATE = (
    f"SELECT {_COLUMNS}, f.geom <-> {_HERE} AS deg,"
    " CASE WHEN GeometryType(f.geom) = 'POINT' THEN NULL"
    f" ELSE ST_Distance(CAST(f.geom AS geography), CAST({_HERE} AS geography), true) END AS area_m"
    " FROM facility f LEFT JOIN district d ON d.adcode = f.district_adcode"
    " WHERE f.layer = l.layer AND f.status = 'active'")

#: Per layer, the ``:m`` facilities nearest in planar (degree) order through the (layer, geom) GiST index
#: (``ORDER BY geom <-> constant`` inside the lateral; ``:m`` NULL: the whole layer).
_KNN = ("SELECT c.* FROM unnest(CAST(:layers AS text[])) AS l(layer) CROSS JOIN LATERAL ("
        + _CANDIDATE + f" ORDER BY f.geom <-> {_HERE} LIMIT :m) c")

#: One round trip: the district at the position (its boundary counts as inside), the current road
#: network (``net_edges`` 0 when none) and the KNN candidates. One row per candidate with the first two
#: parts repeated; a single row of NULL candidate fields when there is no candidate.
_NEAREST = (
    "WITH here AS (SELECT adcode, name_zh, name_en FROM district"
    f" WHERE ST_Covers(geom, {_HERE}) ORDER BY adcode LIMIT 1),"
    " net AS (SELECT synthetic, edges FROM road_import ORDER BY id DESC LIMIT 1)"
    " SELECT here.adcode AS here_adcode, here.name_zh AS here_name_zh, here.name_en AS here_name_en,"
    " coalesce(net.edges, 0) AS net_edges, coalesce(net.synthetic, false) AS net_synthetic, k.*"
    " FROM (SELECT 1) AS one LEFT JOIN here ON true LEFT JOIN net ON true"
    " LEFT JOIN LATERAL (" + _KNN + ") k ON true")
#: The statement behind :func:`nearest_candidates`.
NEAREST_SQL = text(_NEAREST)
#: The same for the driver (``%(name)s`` placeholders).
_NEAREST_DRIVER = re.sub(r"(?<![:\w]):([a-z_]\w*)", r"%(\1)s", _NEAREST)
#: The KNN part alone: the index walk the tests inspect.
KNN_SQL = text(_KNN)

#: A planar radius (degrees) beyond any two WGS-84 positions (at most sqrt(360² + 180²) ≈ 402.5 apart):
#: "the whole layer" as a radius, so the lookup keeps one form that the index serves.
_WHOLE_LAYER_DEG = 1000.0

#: Per layer, every active facility within its planar radius (degrees; NULL: the whole layer), one
#: (layer, geom) GiST index walk per layer. ``OFFSET 0`` keeps the lateral a per-layer subquery: flattened,
#: PostgreSQL joined it by hash and read every partition in full (6 s at 100 × the demo city's facilities).
_WITHIN = ("SELECT c.* FROM unnest(CAST(:layers AS text[]), CAST(:radii AS double precision[])) AS l(layer, r)"
           " CROSS JOIN LATERAL (" + _CANDIDATE
           + f" AND ST_DWithin(f.geom, {_HERE}, coalesce(l.r, {_WHOLE_LAYER_DEG})) OFFSET 0) c")
#: The statement behind :func:`candidates_within` (the tests inspect its plan).
WITHIN_SQL = text(_WITHIN)

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

#: Every active facility's geometry in the metric CRS (WKB), for joining facilities to the road network.
_GEOMETRIES = text("SELECT id, ST_AsBinary(ST_Transform(geom, CAST(:srid AS integer))) AS wkb FROM facility"
                   " WHERE status = 'active' ORDER BY id")

_MAP_POINTS = text(
    "SELECT f.id, f.layer, f.kind, f.name, f.address, f.synthetic,"
    " ST_X(f.point) AS lon, ST_Y(f.point) AS lat"
    " FROM facility f WHERE f.status = 'active' ORDER BY f.layer, f.id")


def counts(conn: Connection) -> list[dict[str, Any]]:
    """Active facilities counted by (layer, district, kind), with capacity totals and whether any is synthetic."""
    return [dict(r) for r in conn.execute(_COUNTS).mappings().all()]


@dataclass
class Candidates:
    """What :func:`nearest_candidates` read in its one round trip.

    ``district``: ``adcode``, ``name_zh``, ``name_en`` of the district at the
    position (None outside); ``network_edges`` and ``network_synthetic``: the
    current road network (0 edges when none was imported); ``rows``: the
    candidates, layer by layer, each nearest first in planar order.
    """

    district: dict[str, Any] | None
    network_edges: int
    network_synthetic: bool
    rows: list[dict[str, Any]]


def nearest_candidates(conn: Connection, layers: Sequence[str], lon: float, lat: float, m: int | None) -> Candidates:
    """The district at a position, the road network, and per layer the ``m`` candidates nearest it, at once.

    Parameters
    ----------
    conn : Connection
    layers : sequence of str
        Layer keys (already checked).
    lon, lat : float
        The position, WGS-84 degrees.
    m : int or None
        Candidates per layer, in planar (degree) order of the facility's
        geometry; ``None`` for the whole layer.

    Returns
    -------
    Candidates
        Each row: the facility's fields with ``lon``/``lat`` (its
        representative point, WGS-84 degrees), ``deg`` (planar degrees to its
        geometry) and ``area_m`` (geodesic metres to an area, None for a point).
    """
    names, raw = read_alone(conn, _NEAREST_DRIVER, {"layers": list(layers), "lon": lon, "lat": lat, "m": m})
    lead = len(_LEAD_FIELDS)
    fields = names[lead:]  # the candidate's own columns, ``id`` first
    here_adcode, here_zh, here_en, net_edges, net_synthetic = raw[0][:lead]
    district = None if here_adcode is None else {"adcode": here_adcode, "name_zh": here_zh, "name_en": here_en}
    candidates = [dict(zip(fields, r[lead:], strict=True)) for r in raw if r[lead] is not None]
    return Candidates(district, int(net_edges), bool(net_synthetic), candidates)


def candidates_within(conn: Connection, lon: float, lat: float,
                      radii: dict[str, float | None]) -> list[dict[str, Any]]:
    """Per layer, every active facility within its planar radius (degrees) of a WGS-84 position.

    ``radii`` maps layer keys (already checked) to a radius, or ``None`` for
    the whole layer. Same fields as :func:`nearest_candidates`' rows, in no order.
    """
    params = {"layers": list(radii), "radii": list(radii.values()), "lon": lon, "lat": lat}
    return [dict(r) for r in conn.execute(WITHIN_SQL, params).mappings().all()]


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


def metric_geometries(conn: Connection) -> tuple[list[int], list[bytes]]:
    """Every active facility's id (ascending) and geometry in ``geo.crs.METRIC_EPSG`` (WKB, metres)."""
    rows = conn.execute(_GEOMETRIES, {"srid": METRIC_EPSG}).all()
    return [int(r.id) for r in rows], [bytes(r.wkb) for r in rows]


def map_points(conn: Connection) -> list[dict[str, Any]]:
    """Every active facility's representative point (WGS-84 degrees) with name, kind and address, for the map."""
    return [dict(r) for r in conn.execute(_MAP_POINTS).mappings().all()]
