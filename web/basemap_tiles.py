"""Offline basemap tiles and map markers for the residents' page.

* ``GET /tiles/basemap/<z>/<x>/<y>.mvt``: roads, district outlines and place
  names from PostGIS (:func:`services.basemap.tile`);
* ``GET /tiles/archive/<z>/<x>/<y>``: the operator's MBTiles/PMTiles basemap
  (``MINSHENG_BASEMAP_FILE``), raster or vector;
* ``GET /api/markers?layer=``: one layer's facilities as compact columns
  (:func:`services.markers.layer_markers`);
* ``GET /api/markers/all``: every layer's, in one answer (what the residents'
  page loads: one request instead of one per layer on a slow network).

Every answer carries an ``ETag``; a repeat request with ``If-None-Match`` is a 304.
"""
from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue

from services import basemap, markers
from web.basemap import archive_path
from web.database import get_engine
from web.params import LAYER, Param, operation, parse
from web.responses import errors

bp = Blueprint("basemap_tiles", __name__)

MVT = "application/vnd.mapbox-vector-tile"
#: Seconds a browser may reuse a basemap tile before asking again (roads change with a new import).
TILE_SECONDS = 3600

Z = Param("z", "integer", "Zoom.", minimum=basemap.MIN_ZOOM, maximum=basemap.MAX_ZOOM, location="path")
ARCHIVE_Z = Param("z", "integer", "Zoom (within the archive's zooms).", minimum=0, maximum=24, location="path")
X = Param("x", "integer", "Column (0 to 2^z − 1).", minimum=0, maximum=2 ** basemap.MAX_ZOOM - 1, location="path")
Y = Param("y", "integer", "Row (0 to 2^z − 1).", minimum=0, maximum=2 ** basemap.MAX_ZOOM - 1, location="path")
MARKER_PARAMS = (LAYER,)


def _conditional(response: Response, seconds: int) -> Response:
    response.headers["Cache-Control"] = f"public, max-age={seconds}" if seconds else "no-cache"
    response.add_etag()
    response.make_conditional(request)
    return response


def _binary(description: str, media: str) -> dict:
    return {"200": {"description": description, "content": {media: {"schema": {"type": "string",
                                                                               "format": "binary"}}}},
            "304": {"description": "Not modified"}, **errors(400, 404, 503)}


@bp.get("/tiles/basemap/<z>/<x>/<y>.mvt")
@operation("Offline basemap tile: roads, district outlines, place names (Mapbox Vector Tile)", "tiles",
           (Z, X, Y), responses=_binary("The tile (may be empty)", MVT))
def basemap_tile(z: str, x: str, y: str) -> ResponseReturnValue:
    data = basemap.tile(get_engine(), Z.coerce(z), X.coerce(x), Y.coerce(y))
    return _conditional(Response(data, mimetype=MVT), TILE_SECONDS)


@bp.get("/tiles/archive/<z>/<x>/<y>")
@operation("A tile of the operator's basemap archive (MBTiles/PMTiles; raster or vector)", "tiles",
           (ARCHIVE_Z, X, Y), responses=_binary("The tile", "application/octet-stream"))
def archive_tile(z: str, x: str, y: str) -> ResponseReturnValue:
    data, media = basemap.archive_tile(archive_path(), ARCHIVE_Z.coerce(z), X.coerce(x), Y.coerce(y))
    return _conditional(Response(data, mimetype=media), TILE_SECONDS)


@bp.get("/api/markers")
@operation("One layer's facilities for the map, as compact delta-coded columns", "residents", MARKER_PARAMS,
           responses={"200": {"description": "Columns: id, x, y (delta-coded), name, kind, synthetic",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                      "304": {"description": "Not modified"}, **errors(400, 503)})
def api_markers() -> ResponseReturnValue:
    a = parse(MARKER_PARAMS)
    return _conditional(jsonify(markers.layer_markers(get_engine(), a.layer)), 0)


@bp.get("/api/markers/all")
@operation("Every layer's facilities for the map in one answer, each layer as compact delta-coded columns",
           "residents", (), responses={"200": {"description": "layers: a list of the answers of /api/markers",
                                               "content": {"application/json": {"schema": {"type": "object"}}}},
                                       "304": {"description": "Not modified"}, **errors(503)})
def api_markers_all() -> ResponseReturnValue:
    # Names as UTF-8, not \u escapes: a third fewer bytes for a slow phone to parse before it draws.
    body = json.dumps(markers.all_markers(get_engine()), ensure_ascii=False, separators=(",", ":"))
    return _conditional(Response(body, mimetype="application/json"), 0)
