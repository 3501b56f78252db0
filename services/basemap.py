"""The offline basemap: vector tiles of the city's roads, districts and place names, and an operator's archive.

:func:`tile` builds a Web Mercator XYZ tile from PostGIS (:mod:`db.basemap`)
after bringing the gazetteer's place names up to date
(:func:`services.gazetteer.ensure`); tiles are remembered until the road
network or the demand model changes (:func:`services.cache.memo`).
:func:`archive` and :func:`archive_tile` serve an operator-supplied MBTiles
or PMTiles file (:mod:`formats.tile_archive`).
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from db import basemap as db_basemap
from formats.errors import FormatError
from formats.tile_archive import ArchiveInfo, open_archive, read_tile
from services import cache, gazetteer
from services.errors import InvalidRequest, NotFound

#: Zooms the offline basemap is served at (below: the whole city is a few pixels; above: nothing new to draw).
MIN_ZOOM = 5
MAX_ZOOM = 19
#: Gazetteer parts the basemap labels come from.
LABEL_PARTS = ("divisions", "villages", "roads")


def check_tile(z: int, x: int, y: int, *, min_zoom: int = MIN_ZOOM, max_zoom: int = MAX_ZOOM) -> None:
    """Raise :class:`~services.errors.InvalidRequest` naming ``z``, ``x`` or ``y`` when outside the grid."""
    if not min_zoom <= z <= max_zoom:
        raise InvalidRequest(f"z was {z} but must be a whole number from {min_zoom} to {max_zoom}", parameter="z",
                             allowed={"min": min_zoom, "max": max_zoom})
    last = 2 ** z - 1
    for name, value in (("x", x), ("y", y)):
        if not 0 <= value <= last:
            raise InvalidRequest(f"{name} was {value} but must be a whole number from 0 to {last} at zoom {z}",
                                 parameter=name, allowed={"min": 0, "max": last})


def tile(engine: Engine, z: int, x: int, y: int) -> bytes:
    """The offline basemap tile ``z/x/y`` (Mapbox Vector Tile, EPSG:3857); ``b""`` where there is nothing."""
    check_tile(z, x, y)
    gazetteer.ensure(engine, LABEL_PARTS)

    def build() -> bytes:
        with engine.connect() as conn:
            return db_basemap.tile(conn, z, x, y)

    return cache.memo(engine, "basemap-tile", (z, x, y), build, families=("roads", "grid"))


def archive(path: str | None) -> ArchiveInfo | None:
    """The configured basemap archive's description, or ``None`` when none is configured.

    Raises :class:`~services.errors.InvalidRequest` when the configured file
    is missing or unreadable, naming it.
    """
    if not path:
        return None
    try:
        return open_archive(Path(path))
    except FormatError as err:
        raise InvalidRequest(str(err), parameter="MINSHENG_BASEMAP_FILE") from None


def archive_tile(path: str | None, z: int, x: int, y: int) -> tuple[bytes, str]:
    """Tile ``z/x/y`` of the configured archive and its media type.

    Raises :class:`~services.errors.NotFound` when no archive is configured or
    it has no such tile, :class:`~services.errors.InvalidRequest` outside its zooms.
    """
    info = archive(path)
    if info is None:
        raise NotFound("no basemap archive is configured (MINSHENG_BASEMAP_FILE)")
    check_tile(z, x, y, min_zoom=info.minzoom, max_zoom=info.maxzoom)
    data = read_tile(info, z, x, y)
    if data is None:
        raise NotFound(f"the basemap archive has no tile {z}/{x}/{y}")
    return data, info.media_type
