"""Vector tiles: ``GET /tiles/<layer>/<z>/<x>/<y>.mvt`` (Mapbox Vector Tile, Web Mercator XYZ).

Built by PostGIS for the facility layers and ``population``; the tile's layer
is named after the collection key. Tiles carry ``Cache-Control`` and an
``ETag`` (a repeat request with ``If-None-Match`` is a 304).
"""
from __future__ import annotations

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

from services import features, tiles
from web.database import get_engine
from web.params import Param, operation
from web.responses import errors

bp = Blueprint("tiles", __name__)

MVT = "application/vnd.mapbox-vector-tile"
#: Seconds a client or proxy may reuse a tile (layers change through admin edits and loads).
CACHE_SECONDS = 300

LAYER = Param("layer", "string", "Collection: a facility layer key, population, village or roads.",
              enum=features.collection_keys, location="path")
Z = Param("z", "integer", "Zoom.", minimum=0, maximum=tiles.MAX_ZOOM, location="path")
X = Param("x", "integer", "Column (0 to 2^z − 1).", minimum=0, maximum=2 ** tiles.MAX_ZOOM - 1, location="path")
Y = Param("y", "integer", "Row (0 to 2^z − 1).", minimum=0, maximum=2 ** tiles.MAX_ZOOM - 1, location="path")

RESPONSES = {"200": {"description": "The tile (an empty tile is 200 with no bytes)", "headers": {
    "Cache-Control": {"schema": {"type": "string"}}}, "content": {MVT: {"schema": {"type": "string",
                                                                                    "format": "binary"}}}},
    "304": {"description": "Not modified"}, **errors(400, 503)}


def tile_response(data: bytes) -> ResponseReturnValue:
    """The tile with its cache headers, or 304 when the client's ETag still matches."""
    response = Response(data, mimetype=MVT)
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/tiles/<layer>/<z>/<x>/<y>.mvt")
@operation("A Mapbox Vector Tile (Web Mercator XYZ)", "tiles", (LAYER, Z, X, Y), responses=RESPONSES)
def tile(layer: str, z: str, x: str, y: str) -> ResponseReturnValue:
    data = tiles.tile(get_engine(), LAYER.coerce(layer), Z.coerce(z), X.coerce(x), Y.coerce(y))
    return tile_response(data)
