"""Vector tiles of a collection: Mapbox Vector Tiles in Web Mercator XYZ addressing.

What a tile draws depends on the zoom, so every tile stays small enough to
send and quick to build:

* a collection that declares a value to sum (the population grid) is merged
  into squares of :data:`MERGE_CELLS_PER_TILE` per tile side up to zoom
  :data:`MERGE_MAX_ZOOM` (where a square is about the grid's own 250 m),
  and drawn cell by cell above it;
* polygons too small to see (parks below their source's
  ``tile_point_below_zoom``) are drawn as their representative points, so
  zoom 0 and 1 are not empty;
* everything else is drawn as it is.
"""
from __future__ import annotations

from sqlalchemy.engine import Engine

from db import tiles as db_tiles
from services.errors import InvalidRequest
from services.features import source

#: Deepest zoom served (about 4 cm per tile unit at the equator).
MAX_ZOOM = 22
#: Side of the Web Mercator square, metres (2π × the WGS-84 semi-major axis).
WORLD_M = 40075016.68557849
#: Merged squares per tile side at low zoom (128 × 128 at most per tile: a few hundred kB at worst).
MERGE_CELLS_PER_TILE = 128
#: Deepest zoom whose tiles are merged (at zoom 10 a square is ~306 Web Mercator metres, ~250 m on the ground
#: at Zaozhuang's latitude: the grid's own cells take over from zoom 11).
MERGE_MAX_ZOOM = 10


def merge_cell_m(z: int) -> float:
    """Side of a merged square at zoom ``z``, Web Mercator metres (the tile's side / :data:`MERGE_CELLS_PER_TILE`)."""
    return float(WORLD_M / 2 ** z / MERGE_CELLS_PER_TILE)


def tile(engine: Engine, key: str, z: int, x: int, y: int) -> bytes:
    """The tile ``z/x/y`` of collection ``key`` (its layer named after the key); ``b""`` when empty.

    Raises :class:`~services.errors.NotFound` for an unknown collection and
    :class:`~services.errors.InvalidRequest` for a tile outside the zoom's grid.
    """
    src = source(key)
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidRequest(f"z was {z} but must be a whole number from 0 to {MAX_ZOOM}", parameter="z",
                             allowed={"min": 0, "max": MAX_ZOOM})
    last = 2 ** z - 1
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value <= last:
            raise InvalidRequest(f"{name} was {value} but must be a whole number from 0 to {last}",
                                 parameter=name, allowed={"min": 0, "max": last})
    with engine.connect() as conn:
        if src.tile_sum_sql is not None and z <= MERGE_MAX_ZOOM:
            return db_tiles.mvt_merged(conn, src, z, x, y, cell_m=merge_cell_m(z))
        points = src.tile_point_below_zoom is not None and z < src.tile_point_below_zoom
        return db_tiles.mvt(conn, src, z, x, y, points=points)
