"""The residents' page ``/``: a map of Zaozhuang's facilities for phones, in one language (``?lang=en``).

Optional parameters open the page on an answer: ``q`` (a place search) or
``lon``/``lat`` (the nearest facilities to a position, in ``crs``). Blank
values count as absent, since a form submits its empty fields. The basemap
helpers shared with the planner page live in :mod:`web.basemap` and are
importable from here too.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from werkzeug.datastructures import MultiDict

from geo.crs import POSITION_CRS
from web import resident_map
from web.basemap import add_basemap, basemap_setting, districts_to_gcj02
from web.params import LANG, Param, operation, parse
from web.responses import errors

__all__ = ["bp", "resident", "add_basemap", "basemap_setting", "districts_to_gcj02"]

bp = Blueprint("pages", __name__)

PAGE_PARAMS = (
    LANG.but(description="Language of the page."),
    Param("q", "string", "A place or facility to search for when the page opens.",
          max_length=resident_map.SEARCH_MAX_CHARS),
    Param("lon", "number", "Longitude (in crs) to list the nearest facilities to when the page opens.",
          minimum=-180, maximum=180),
    Param("lat", "number", "Latitude (in crs), with lon.", minimum=-90, maximum=90),
    Param("crs", "string", "CRS of lon/lat.", enum=POSITION_CRS, default="wgs84"),
)


def _filled_args() -> MultiDict[str, str]:
    """The query string without blank values (a form sends its empty fields; they mean "not given")."""
    return MultiDict([(k, v) for k, v in request.args.items(multi=True) if v.strip()])


@bp.get("/")
@operation("The residents' map page (HTML)", "residents", PAGE_PARAMS,
           responses={"200": {"description": "The page", "content": {"text/html": {"schema": {"type": "string"}}}},
                      **errors(400)})
def resident() -> str:
    a = parse(PAGE_PARAMS, _filled_args())
    both = a.lon is not None and a.lat is not None
    initial = {"q": a.q, "lon": a.lon if both else None, "lat": a.lat if both else None, "crs": a.crs}
    context = resident_map.page_context(a.lang, initial, current_app.config["WALK_SPEED_M_PER_MIN"])
    return render_template("resident.html", **context)
