"""OGC API – Tiles metadata for the vector tiles, under ``/ogc``.

* ``/ogc/tileMatrixSets`` and ``/ogc/tileMatrixSets/WebMercatorQuad``: the one
  tiling scheme (OGC Two-Dimensional Tile Matrix Set 2.0, Web Mercator, 256
  pixels, zoom 0 to :data:`services.tiles.MAX_ZOOM`).
* ``/ogc/collections/{collectionId}/tiles``: the collection's tilesets (one).
* ``/ogc/collections/{collectionId}/tiles/WebMercatorQuad``: its metadata,
  with the templated ``item`` link MapLibre, QGIS and OpenLayers read.
* ``.../tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}``: the tile
  (the same Mapbox Vector Tile as ``/tiles/{layer}/{z}/{x}/{y}.mvt``; an
  empty tile is 200 with no bytes).
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from services import features, tiles
from web.database import get_engine
from web.ogc import COLLECTION, F_JSON, JSON, MVT, json_response, link, ogc_args, url
from web.params import Param, operation
from web.responses import body, errors
from web.tiles import tile_response

bp = Blueprint("ogc_tiles", __name__, url_prefix="/ogc")

WEB_MERCATOR_QUAD = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
EPSG3857 = "http://www.opengis.net/def/crs/EPSG/0/3857"
REL_TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
#: Half the side of the Web Mercator square, metres (π × the WGS-84 semi-major axis).
ORIGIN_M = 20037508.342789244
#: Metres per pixel at zoom 0 with 256-pixel tiles; the scale denominator uses 0.28 mm pixels.
CELL_SIZE_Z0 = 2 * ORIGIN_M / 256
#: Geometry dimension of each collection geometry type (OGC Tiles ``geometryDimension``).
DIMENSIONS = {"Point": 0, "LineString": 1, "Polygon": 2, "MultiPolygon": 2}

TMS_ID = Param("tileMatrixSetId", "string", "Tile matrix set.", enum=(WEB_MERCATOR_QUAD,), location="path")
TILE_MATRIX = Param("tileMatrix", "integer", "Zoom.", minimum=0, maximum=tiles.MAX_ZOOM, location="path")
TILE_ROW = Param("tileRow", "integer", "Row (y, 0 at the top).", minimum=0, maximum=2 ** tiles.MAX_ZOOM - 1,
                 location="path")
TILE_COL = Param("tileCol", "integer", "Column (x).", minimum=0, maximum=2 ** tiles.MAX_ZOOM - 1, location="path")


def tile_matrix_set() -> dict[str, Any]:
    """WebMercatorQuad as OGC 2D-TMS 2.0 JSON: one matrix per zoom, 2^z × 2^z tiles of 256 pixels."""
    matrices = [{"id": str(z), "scaleDenominator": CELL_SIZE_Z0 / 2 ** z / 0.00028, "cellSize": CELL_SIZE_Z0 / 2 ** z,
                 "cornerOfOrigin": "topLeft", "pointOfOrigin": [-ORIGIN_M, ORIGIN_M], "tileWidth": 256,
                 "tileHeight": 256, "matrixWidth": 2 ** z, "matrixHeight": 2 ** z}
                for z in range(tiles.MAX_ZOOM + 1)]
    return {"id": WEB_MERCATOR_QUAD, "title": "Google Maps Compatible for the World", "uri": TMS_URI,
            "crs": EPSG3857, "orderedAxes": ["X", "Y"],
            "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
            "tileMatrices": matrices,
            "links": [link(url("ogc_tiles.matrix_set", tileMatrixSetId=WEB_MERCATOR_QUAD), "self", JSON,
                           "This tile matrix set")]}


def _template(key: str) -> str:
    base = url("ogc_tiles.tilesets", collectionId=key)
    return f"{base}/{WEB_MERCATOR_QUAD}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"


def tileset(key: str) -> dict[str, Any]:
    """The metadata of collection ``key``'s vector tileset in WebMercatorQuad."""
    src = features.source(key)
    return {
        "title": f"{features.title(key, 'zh')} {features.title(key, 'en')}", "dataType": "vector",
        "crs": EPSG3857, "tileMatrixSetURI": TMS_URI,
        "layers": [{"id": key, "dataType": "vector", "geometryDimension": DIMENSIONS[src.geometry_type],
                    "minTileMatrix": "0", "maxTileMatrix": str(tiles.MAX_ZOOM)}],
        "links": [
            link(url("ogc_tiles.tileset", collectionId=key, tileMatrixSetId=WEB_MERCATOR_QUAD), "self", JSON,
                 "This tileset"),
            link(url("ogc_tiles.matrix_set", tileMatrixSetId=WEB_MERCATOR_QUAD), REL_TILING_SCHEME, JSON,
                 "WebMercatorQuad"),
            {**link(_template(key), "item", MVT, "Mapbox Vector Tiles"), "templated": True},
            link(url("ogc.collection", collectionId=key), "collection", JSON, "The collection"),
        ],
    }


@bp.get("/tileMatrixSets")
@operation("Tile matrix sets (OGC API – Tiles)", "tiles", (F_JSON,), responses={"200": body("The list"),
                                                                                 **errors(400)})
def matrix_sets() -> ResponseReturnValue:
    ogc_args((F_JSON,))
    one = {"id": WEB_MERCATOR_QUAD, "title": "Google Maps Compatible for the World", "uri": TMS_URI,
           "links": [link(url("ogc_tiles.matrix_set", tileMatrixSetId=WEB_MERCATOR_QUAD), "self", JSON,
                          WEB_MERCATOR_QUAD)]}
    return json_response({"tileMatrixSets": [one]})


@bp.get("/tileMatrixSets/<tileMatrixSetId>")
@operation("One tile matrix set", "tiles", (TMS_ID, F_JSON), responses={"200": body("2D-TMS 2.0"), **errors(400)})
def matrix_set(tileMatrixSetId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's name
    ogc_args((F_JSON,))
    TMS_ID.coerce(tileMatrixSetId)
    return json_response(tile_matrix_set())


@bp.get("/collections/<collectionId>/tiles")
@operation("The collection's vector tilesets", "tiles", (COLLECTION, F_JSON),
           responses={"200": body("Tileset list"), **errors(400, 404)})
def tilesets(collectionId: str) -> ResponseReturnValue:  # noqa: N803 - the standard's name
    ogc_args((F_JSON,))
    one = tileset(collectionId)
    summary = {k: one[k] for k in ("title", "dataType", "crs", "tileMatrixSetURI")}
    summary["links"] = [lk for lk in one["links"] if lk["rel"] in ("self", REL_TILING_SCHEME)]
    return json_response({"tilesets": [summary], "links": [
        link(url("ogc_tiles.tilesets", collectionId=collectionId), "self", JSON, "Tilesets")]})


@bp.get("/collections/<collectionId>/tiles/<tileMatrixSetId>", endpoint="tileset")
@operation("The collection's tileset in WebMercatorQuad", "tiles", (COLLECTION, TMS_ID, F_JSON),
           responses={"200": body("Tileset metadata"), **errors(400, 404)})
def tileset_view(collectionId: str, tileMatrixSetId: str) -> ResponseReturnValue:  # noqa: N803
    ogc_args((F_JSON,))
    TMS_ID.coerce(tileMatrixSetId)
    return json_response(tileset(collectionId))


@bp.get("/collections/<collectionId>/tiles/<tileMatrixSetId>/<tileMatrix>/<tileRow>/<tileCol>")
@operation("A vector tile (Mapbox Vector Tile; empty tiles are 200 with no bytes)", "tiles",
           (COLLECTION, TMS_ID, TILE_MATRIX, TILE_ROW, TILE_COL), responses={
               "200": {"description": "The tile", "content": {MVT: {"schema": {"type": "string", "format": "binary"}}}},
               "304": {"description": "Not modified"}, **errors(400, 404, 503)})
def tile(collectionId: str, tileMatrixSetId: str, tileMatrix: str, tileRow: str,  # noqa: N803
         tileCol: str) -> ResponseReturnValue:  # noqa: N803 - the standard's names
    ogc_args(())
    TMS_ID.coerce(tileMatrixSetId)
    z, y, x = TILE_MATRIX.coerce(tileMatrix), TILE_ROW.coerce(tileRow), TILE_COL.coerce(tileCol)
    return tile_response(tiles.tile(get_engine(), collectionId, z, x, y))

