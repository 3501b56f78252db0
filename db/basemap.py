"""The offline basemap as Mapbox Vector Tiles, built by PostGIS from the city's own tables.

One tile holds four layers, named after the OpenMapTiles schema so an
operator's OpenMapTiles archive draws with the same page style:

* ``district``: district polygons (``adcode``, ``name``, ``name_en``),
  simplified to about a pixel;
* ``transportation``: the road network (``class`` primary, secondary,
  tertiary or minor; ``name``), major classes only at low zooms;
* ``place``: district seats, townships and streets, villages (``class``,
  ``name``, ``name_en``, ``synthetic``), each from the zoom where it fits;
* ``transportation_name``: one label point per road name (from zoom 14).

Tiles are Web Mercator XYZ (EPSG:3857, ``ST_TileEnvelope``); sources are
WGS-84. Labels are kept 128 px beyond the tile edge, so a label whose point
is in the next tile is still drawn whole across both.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

#: Tile coordinate units per side.
EXTENT = 4096
#: Units kept beyond each edge: lines and fills (4 px at 256 px), labels (128 px).
LINE_BUFFER = 64
LABEL_BUFFER = 2048
#: Road classes per zoom: (from zoom, highway values) — a class is drawn from its zoom on.
ROAD_ZOOMS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (0, ("motorway", "trunk", "primary")), (10, ("secondary",)), (12, ("tertiary",)),
    (13, ("residential", "unclassified", "living_street", "service", "road")), (15, ("track", "path", "footway")))
#: Place kinds per zoom: (from zoom, to zoom, kinds).
PLACE_ZOOMS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 12, ("district",)), (10, 30, ("street", "town", "zone")), (13, 30, ("village",)))
ROAD_LABEL_ZOOM = 14
#: Metres per pixel at zoom 0 in Web Mercator (256 px tiles).
_M_PER_PX_Z0 = 40075016.68557849 / 256

_TILE = text("""
WITH b AS (SELECT ST_TileEnvelope(:z, :x, :y) AS env),
     w AS (SELECT ST_Transform(env, 4326) AS env, ST_Transform(ST_Expand(env, :label_m), 4326) AS wide FROM b),
dist AS (
  SELECT d.adcode, d.name_zh AS name, d.name_en,
         ST_AsMVTGeom(ST_SimplifyPreserveTopology(ST_Transform(d.geom, 3857), :px), b.env, :extent, :line_buffer)
         AS geom
  FROM district d, b, w WHERE d.geom && w.env),
road AS (
  SELECT CASE WHEN e.highway IN ('motorway', 'trunk', 'primary') THEN 'primary'
              WHEN e.highway IN ('secondary', 'tertiary') THEN e.highway
              WHEN e.highway IN ('track', 'path', 'footway') THEN 'path' ELSE 'minor' END AS class,
         e.name, ST_AsMVTGeom(ST_Transform(e.geom, 3857), b.env, :extent, :line_buffer) AS geom
  FROM road_edge e, b, w WHERE e.geom && w.env AND e.highway = ANY(:highways)),
labels AS (
  SELECT p.kind AS class, p.name, p.name_en, p.synthetic,
         ST_AsMVTGeom(ST_Transform(p.geom, 3857), b.env, :extent, :label_buffer) AS geom
  FROM place p, b, w WHERE p.geom && w.wide AND p.kind = ANY(:place_kinds)),
road_labels AS (
  SELECT p.name, p.name_en, ST_AsMVTGeom(ST_Transform(p.geom, 3857), b.env, :extent, :label_buffer) AS geom
  FROM place p, b, w WHERE :road_labels AND p.kind = 'road' AND p.geom && w.wide)
SELECT coalesce((SELECT ST_AsMVT(dist, 'district', :extent, 'geom') FROM dist WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(road, 'transportation', :extent, 'geom') FROM road WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(labels, 'place', :extent, 'geom') FROM labels WHERE geom IS NOT NULL), '')
    || coalesce((SELECT ST_AsMVT(road_labels, 'transportation_name', :extent, 'geom') FROM road_labels
                 WHERE geom IS NOT NULL), '')
""")


def highways_at(z: int) -> list[str]:
    """The ``highway`` values drawn at zoom ``z``."""
    return [h for start, values in ROAD_ZOOMS if z >= start for h in values]


def place_kinds_at(z: int) -> list[str]:
    """The gazetteer kinds labelled at zoom ``z``."""
    return [k for lo, hi, kinds in PLACE_ZOOMS if lo <= z <= hi for k in kinds]


def tile(conn: Connection, z: int, x: int, y: int) -> bytes:
    """The basemap tile ``z/x/y`` (Web Mercator XYZ) as MVT bytes; ``b""`` when the tile is empty."""
    px = _M_PER_PX_Z0 / 2 ** z
    data = conn.execute(_TILE, {
        "z": z, "x": x, "y": y, "extent": EXTENT, "line_buffer": LINE_BUFFER, "label_buffer": LABEL_BUFFER,
        "px": px, "label_m": px * 128, "highways": highways_at(z), "place_kinds": place_kinds_at(z),
        "road_labels": z >= ROAD_LABEL_ZOOM}).scalar()
    return bytes(data) if data else b""
