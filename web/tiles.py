"""Vector tiles: ``GET /tiles/<layer>/<z>/<x>/<y>.mvt`` (Mapbox Vector Tile, Web Mercator XYZ).

Built by PostGIS (``ST_TileEnvelope``, ``ST_AsMVTGeom``, ``ST_AsMVT``) for the five
facility layers and ``population``; the tile's layer is named after the
collection key. Tiles carry ``Cache-Control`` and an ``ETag``.
"""
from __future__ import annotations

from flask import Blueprint, Response, request

from db.export import COLLECTION_KEYS, mvt_tile
from web.database import get_engine
from web.errors import BadParameter

bp = Blueprint("tiles", __name__)

MVT = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = 22
#: Seconds a client or proxy may reuse a tile (layers change through admin edits and loads).
CACHE_SECONDS = 300


def _whole(name: str, raw: str, lo: int, hi: int) -> int:
    if not raw.isdigit() or len(raw) > 8 or not (lo <= int(raw) <= hi):
        raise BadParameter(f"{name} was {raw[:20]!r} but must be a whole number from {lo} to {hi}",
                           parameter=name, allowed={"min": lo, "max": hi})
    return int(raw)


def parse_tile(layer: str, z: str, x: str, y: str) -> tuple[str, int, int, int]:
    """Check the layer key and the tile address; the error names what is allowed."""
    if layer not in COLLECTION_KEYS:
        raise BadParameter(f"layer was {layer[:40]!r} but is expected to be one of {', '.join(COLLECTION_KEYS)}",
                           parameter="layer", allowed=list(COLLECTION_KEYS))
    zi = _whole("z", z, 0, MAX_ZOOM)
    n = 2 ** zi - 1
    return layer, zi, _whole("x", x, 0, n), _whole("y", y, 0, n)


def tile_response(layer: str, z: int, x: int, y: int) -> Response:
    data = mvt_tile(get_engine(), layer, z, x, y)
    response = Response(data, mimetype=MVT)
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/tiles/<layer>/<z>/<x>/<y>.mvt")
def tile(layer: str, z: str, x: str, y: str):
    return tile_response(*parse_tile(layer, z, x, y))
