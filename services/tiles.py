"""Vector tiles of a collection: Mapbox Vector Tiles in Web Mercator XYZ addressing."""
from __future__ import annotations

from sqlalchemy.engine import Engine

from db import tiles as db_tiles
from services.errors import InvalidRequest
from services.features import source

#: Deepest zoom served (about 4 cm per tile unit at the equator).
MAX_ZOOM = 22


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
        return db_tiles.mvt(conn, src, z, x, y)
