"""Mapbox Vector Tiles of a collection, built by PostGIS (``ST_TileEnvelope``, ``ST_AsMVTGeom``, ``ST_AsMVT``).

Two kinds of tile: :func:`mvt` draws each feature (or, for polygons too
small to see at the zoom, its representative point); :func:`mvt_merged`
merges the features of a dense collection (the population grid) into
squares of a given size in Web Mercator, summing a value, so a low-zoom tile
stays small and quick whatever the number of cells beneath it.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.feature_sources import CollectionSource
from geo.crs import METRIC_EPSG

#: Tile coordinate units per side (the MVT default).
EXTENT_PX = 4096
#: Units of geometry kept beyond each tile edge, so lines and fills join up across tiles.
BUFFER_PX = 64
#: WGS-84 semi-major axis, metres: the sphere radius of Web Mercator (EPSG:3857).
WGS84_A_M = 6378137.0
#: Degrees added around the tile when picking candidates from the WGS-84 index (about 10 m).
_MARGIN_DEG = 0.0001
_ENVELOPES = ("WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),"
              " b4326 AS (SELECT ST_Transform(env, 4326) AS env FROM b)")


def _params(src: CollectionSource, z: int, x: int, y: int, extent_px: int, buffer_px: int) -> dict[str, object]:
    return {"z": z, "x": x, "y": y, "layer": src.key, "name": src.key, "metric_srid": METRIC_EPSG,
            "extent": extent_px, "buffer": buffer_px, "margin": _MARGIN_DEG}


def mvt(conn: Connection, src: CollectionSource, z: int, x: int, y: int, *, points: bool = False,
        extent_px: int = EXTENT_PX, buffer_px: int = BUFFER_PX) -> bytes:
    """A Mapbox Vector Tile of one collection at XYZ tile ``z/x/y`` (Web Mercator, EPSG:3857).

    The tile's layer is named after the collection key; each feature carries
    its id and the source's :attr:`~db.feature_sources.CollectionSource.tile_props`.
    ``points`` draws each feature's representative point instead of its
    geometry. An empty tile is ``b""``.
    """
    props = src.columns
    cols = ", ".join(f"{props[n]} AS {n}" for n in src.tile_props)
    geom = src.point_sql if points else src.geom_sql
    sql = (
        f"{_ENVELOPES},"
        f" m AS (SELECT {src.id_sql} AS id, {cols},"
        f"  ST_AsMVTGeom(ST_Transform({geom}, 3857), b.env, :extent, :buffer, true) AS geom"
        f"  FROM {src.from_sql}, b, b4326 WHERE {src.base_where}"
        f"  AND {src.index_geom_sql} && ST_Expand(b4326.env, :margin))"
        " SELECT ST_AsMVT(m.*, :name, :extent, 'geom', 'id') FROM m WHERE m.geom IS NOT NULL")
    data = conn.execute(text(sql), _params(src, z, x, y, extent_px, buffer_px)).scalar()
    return bytes(data) if data else b""


def mvt_merged(conn: Connection, src: CollectionSource, z: int, x: int, y: int, *, cell_m: float,
               extent_px: int = EXTENT_PX, buffer_px: int = BUFFER_PX) -> bytes:
    """A tile whose features are squares of ``cell_m`` Web Mercator metres merging the collection's features.

    Each square carries ``population`` (the sum of the source's
    :attr:`~db.feature_sources.CollectionSource.tile_sum_sql` over the
    features whose point falls in it) and ``cells`` (how many). Squares are
    aligned to the Web Mercator origin, so neighbouring tiles agree.
    """
    if src.tile_sum_sql is None:
        raise ValueError(f"collection {src.key} declares no tile_sum_sql to merge its features by")
    # Web Mercator by its formulas (x = R·λ, y = R·ln tan(π/4 + φ/2)) rather than ST_Transform per point:
    # the same metres, several times faster over the tens of thousands of cells under a low-zoom tile.
    sql = (
        f"{_ENVELOPES},"
        f" p AS (SELECT :radius * radians(ST_X({src.point_sql})) AS mx,"
        f"  :radius * ln(tan(pi() / 4 + radians(ST_Y({src.point_sql})) / 2)) AS my, {src.tile_sum_sql} AS v"
        f"  FROM {src.from_sql}, b4326 WHERE {src.base_where}"
        f"  AND {src.index_geom_sql} && ST_Expand(b4326.env, :margin)),"
        " g AS (SELECT floor(mx / :cell) AS gx, floor(my / :cell) AS gy, sum(v)::bigint AS population,"
        "  count(*) AS cells FROM p GROUP BY 1, 2),"
        " m AS (SELECT population, cells, ST_AsMVTGeom(ST_MakeEnvelope(gx * :cell, gy * :cell, (gx + 1) * :cell,"
        "  (gy + 1) * :cell, 3857), b.env, :extent, :buffer, true) AS geom FROM g, b)"
        " SELECT ST_AsMVT(m.*, :name, :extent, 'geom') FROM m WHERE m.geom IS NOT NULL")
    params = {**_params(src, z, x, y, extent_px, buffer_px), "cell": cell_m, "radius": WGS84_A_M}
    data = conn.execute(text(sql), params).scalar()
    return bytes(data) if data else b""
