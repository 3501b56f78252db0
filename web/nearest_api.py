"""Residents' API: the nearest facilities to a position, and search by name or address.

``GET /api/nearest?lon=&lat=&layer=&k=&crs=`` and ``GET /api/search?q=&layer=&limit=``.
Each view parses its declared parameters, calls one function of
:mod:`services.nearest` and returns its GeoJSON FeatureCollection (WGS-84
geometry, RFC 7946). The bounds are the service's constants; ``/openapi.json``
is built from these same declarations.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from geo.crs import POSITION_CRS
from services import nearest
from web.database import get_engine
from web.params import LAYER, LAYER_OR_ALL, Param, operation, parse
from web.responses import body, errors

bp = Blueprint("nearest_api", __name__)

NEAREST_PARAMS = (
    Param("lon", "number", "Longitude (degrees, in crs).", required=True, minimum=-180, maximum=180),
    Param("lat", "number", "Latitude (degrees, in crs).", required=True, minimum=-90, maximum=90),
    LAYER_OR_ALL,
    Param("k", "integer", "How many facilities (of each layer for all).", default=nearest.DEFAULT_K,
          minimum=1, maximum=nearest.MAX_K),
    Param("crs", "string", "CRS of lon/lat (GCJ-02: AMap/Tencent; BD-09: Baidu).", enum=POSITION_CRS,
          default="wgs84"),
)

SEARCH_PARAMS = (
    Param("q", "string", "Text to find in names and addresses (taken literally).", required=True,
          max_length=nearest.MAX_QUERY_CHARS),
    LAYER.but(required=False, description="Limit to one layer."),
    Param("limit", "integer", "Most results.", default=nearest.DEFAULT_SEARCH_LIMIT, minimum=1,
          maximum=nearest.MAX_SEARCH_LIMIT),
)


@bp.get("/api/nearest")
@operation("Nearest facilities to a position (geodesic metres)", "residents", NEAREST_PARAMS,
           responses={"200": body("Nearest facilities", "application/geo+json"), **errors(400, 503)})
def api_nearest() -> ResponseReturnValue:
    a = parse(NEAREST_PARAMS)
    return jsonify(nearest.nearest_collection(get_engine(), a.lon, a.lat, crs=a.crs, layer=a.layer, k=a.k,
                                              walk_speed_m_per_min=current_app.config["WALK_SPEED_M_PER_MIN"]))


@bp.get("/api/search")
@operation("Find facilities by name or address", "residents", SEARCH_PARAMS,
           responses={"200": body("Matching facilities, best first"), **errors(400, 503)})
def api_search() -> ResponseReturnValue:
    a = parse(SEARCH_PARAMS)
    return jsonify(nearest.search_collection(get_engine(), a.q, layer=a.layer, limit=a.limit))
