"""Residents' API: the nearest facilities to a position, and search by name or address.

``GET /api/nearest?lon=&lat=&layer=&k=&crs=&by=`` and ``GET /api/search?q=&layer=&limit=``.
Each view parses its declared parameters, calls one function of
:mod:`services.nearest` and returns its GeoJSON
FeatureCollection (WGS-84 geometry, RFC 7946) as ``application/geo+json``,
serialised with orjson. The bounds are the services' constants;
``/openapi.json`` is built from these same declarations.
"""
from __future__ import annotations

from typing import Any

import orjson
from flask import Blueprint, Flask, Response, current_app
from flask.typing import ResponseReturnValue

from geo.crs import POSITION_CRS
from layers import layer_keys
from services import nearest
from web.database import get_engine
from web.params import LAYER, Param, operation, parse
from web.responses import body, errors

bp = Blueprint("nearest_api", __name__)

GEOJSON = "application/geo+json"

_KEY = "(" + "|".join(layer_keys()) + ")"
#: ``layer``: a key, ``all``, or keys separated by commas; the service checks each key against the registry.
LAYERS_OR_ALL = Param(
    "layer", "string", "A facility layer key (see /api/layers), all, or several keys separated by commas.",
    default=nearest.ALL_LAYERS, max_length=1000,
    schema_extra={"pattern": f"^({nearest.ALL_LAYERS}|{_KEY}(,{_KEY})*)$"})
LON = Param("lon", "number", "Longitude (degrees, in crs).", required=True, minimum=-180, maximum=180)
LAT = Param("lat", "number", "Latitude (degrees, in crs).", required=True, minimum=-90, maximum=90)
CRS = Param("crs", "string", "CRS of lon/lat (GCJ-02: AMap/Tencent; BD-09: Baidu).", enum=POSITION_CRS,
            default="wgs84")

NEAREST_PARAMS = (
    LON, LAT, LAYERS_OR_ALL,
    Param("k", "integer", "How many facilities of each layer.", default=nearest.DEFAULT_K,
          minimum=1, maximum=nearest.MAX_K),
    CRS,
    Param("by", "string", "How distance is measured: along the walking or driving roads, or a straight line. "
          "Default: walk when a road network is loaded, else straight.", enum=nearest.BY),
)

SEARCH_PARAMS = (
    Param("q", "string", "Text to find in names and addresses (taken literally).", required=True,
          max_length=nearest.MAX_QUERY_CHARS),
    LAYER.but(required=False, description="Limit to one layer."),
    Param("limit", "integer", "Most results.", default=nearest.DEFAULT_SEARCH_LIMIT, minimum=1,
          maximum=nearest.MAX_SEARCH_LIMIT),
)


def hold_nearest_facilities(app: Flask) -> str:
    """Hold what ``app``'s nearest answers from now (:func:`services.nearest.hold`); what is held, in words.

    The light lane's workers call it once at start, in the background (``web/lane.py``).
    """
    with app.app_context():
        return nearest.hold(get_engine())


def geojson(document: dict[str, Any]) -> Response:
    """``document`` as an ``application/geo+json`` response (orjson; numpy numbers allowed)."""
    return Response(orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), mimetype=GEOJSON)


@bp.get("/api/nearest")
@operation("Nearest facilities to a position, along the roads or in a straight line", "residents", NEAREST_PARAMS,
           responses={"200": body("Nearest facilities, nearest first", GEOJSON), **errors(400, 503)})
def api_nearest() -> ResponseReturnValue:
    a = parse(NEAREST_PARAMS)
    return geojson(nearest.nearest_collection(get_engine(), a.lon, a.lat, crs=a.crs, layer=a.layer, k=a.k, by=a.by,
                                              walk_speed_m_per_min=current_app.config["WALK_SPEED_M_PER_MIN"]))


@bp.get("/api/search")
@operation("Find facilities by name or address", "residents", SEARCH_PARAMS,
           responses={"200": body("Matching facilities, best first", GEOJSON), **errors(400, 503)})
def api_search() -> ResponseReturnValue:
    a = parse(SEARCH_PARAMS)
    return geojson(nearest.search_collection(get_engine(), a.q, layer=a.layer, limit=a.limit))
