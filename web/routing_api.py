"""Residents' API along the roads: what can be reached from a position in so many minutes.

``GET /api/isochrone?lon=&lat=&minutes=5,10,15&by=walk|drive&crs=``: the view
parses its declared parameters, calls :func:`services.routing.isochrone_collection`
and returns its GeoJSON FeatureCollection (WGS-84 polygons, one per budget).
"""
from __future__ import annotations

from flask import Blueprint, current_app
from flask.typing import ResponseReturnValue

from services import routing
from services.roads import NETWORK_MODES
from web.database import get_engine
from web.nearest_api import CRS, GEOJSON, LAT, LON, geojson
from web.params import Param, operation, parse
from web.responses import body, errors

bp = Blueprint("routing_api", __name__)

ISOCHRONE_PARAMS = (
    LON, LAT,
    Param("minutes", "string", f"1 to {routing.MAX_BUDGETS} budgets in whole minutes, each 1 to "
          f"{routing.MAX_MINUTES}, separated by commas.", default="5,10,15", max_length=40,
          schema_extra={"pattern": f"^[0-9]{{1,2}}(,[0-9]{{1,2}}){{0,{routing.MAX_BUDGETS - 1}}}$"}),
    Param("by", "string", "Travel along the walking or the driving roads.", enum=NETWORK_MODES, default="walk"),
    CRS,
)


@bp.get("/api/isochrone")
@operation("What can be reached from a position within so many minutes along the roads", "residents",
           ISOCHRONE_PARAMS, responses={"200": body("One area per budget, smallest first", GEOJSON),
                                        **errors(400, 503)})
def api_isochrone() -> ResponseReturnValue:
    a = parse(ISOCHRONE_PARAMS)
    return geojson(routing.isochrone_collection(get_engine(), a.lon, a.lat, minutes=a.minutes, by=a.by, crs=a.crs,
                                                walk_speed_m_per_min=current_app.config["WALK_SPEED_M_PER_MIN"]))
