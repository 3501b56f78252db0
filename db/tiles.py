"""Mapbox Vector Tiles of a collection, built by PostGIS (``ST_TileEnvelope``, ``ST_AsMVTGeom``, ``ST_AsMVT``)."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from db.features import CollectionSource
from geo.crs import METRIC_EPSG

#: Tile coordinate units per side (the MVT default).
EXTENT_PX = 4096
#: Units of geometry kept beyond each tile edge, so lines and fills join up across tiles.
BUFFER_PX = 64
#: Degrees added around the tile when picking candidates from the WGS-84 index (about 10 m).
_MARGIN_DEG = 0.0001


def mvt(conn: Connection, src: CollectionSource, z: int, x: int, y: int, *, extent_px: int = EXTENT_PX,
        buffer_px: int = BUFFER_PX) -> bytes:
    """A Mapbox Vector Tile of one collection at XYZ tile ``z/x/y`` (Web Mercator, EPSG:3857).

    The tile's layer is named after the collection key; each feature carries
    its id and the source's :attr:`~db.features.CollectionSource.tile_props`.
    An empty tile is ``b""``.
    """
    props = dict(src.props)
    cols = ", ".join(f"{props[n]} AS {n}" for n in src.tile_props)
    sql = (
        "WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),"
        " b4326 AS (SELECT ST_Transform(env, 4326) AS env FROM b),"
        f" m AS (SELECT {src.id_sql} AS id, {cols},"
        f"  ST_AsMVTGeom(ST_Transform({src.geom_sql}, 3857), b.env, :extent, :buffer, true) AS geom"
        f"  FROM {src.from_sql}, b, b4326 WHERE {src.base_where}"
        f"  AND {src.index_geom_sql} && ST_Expand(b4326.env, :margin))"
        " SELECT ST_AsMVT(m.*, :name, :extent, 'geom', 'id') FROM m WHERE m.geom IS NOT NULL")
    data = conn.execute(text(sql), {"z": z, "x": x, "y": y, "layer": src.key, "name": src.key,
                                    "metric_srid": METRIC_EPSG, "extent": extent_px, "buffer": buffer_px,
                                    "margin": _MARGIN_DEG}).scalar()
    return bytes(data) if data else b""
