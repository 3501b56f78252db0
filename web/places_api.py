"""Search by place: ``GET /api/places?q=&near=&crs=&limit=&lang=`` and ``flask places townships FILE``.

The view parses its declared parameters and calls :func:`services.places.search`;
``/openapi.json`` is built from the same declarations. The command stores
real township positions (``code,lon,lat``, WGS-84) in place of the demo's
synthetic ones.
"""
from __future__ import annotations

from pathlib import Path

import click
from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from geo.crs import POSITION_CRS
from services import gazetteer, places
from web.database import get_engine
from web.errors import BadParameter
from web.params import LANG, Param, operation, parse
from web.responses import body, errors

bp = Blueprint("places_api", __name__, cli_group="places")

PLACES_PARAMS = (
    Param("q", "string", "Place, road, village or facility name or address; or its pinyin (full or initials).",
          required=True, max_length=places.MAX_QUERY_CHARS),
    Param("near", "string", "lon,lat (in crs) to order by and measure distances from, e.g. the map's centre.",
          pattern=r"-?\d+(\.\d+)?,-?\d+(\.\d+)?", max_length=60),
    Param("crs", "string", "CRS of near (GCJ-02: AMap/Tencent; BD-09: Baidu).", enum=POSITION_CRS, default="wgs84"),
    Param("limit", "integer", "Most results.", default=places.DEFAULT_LIMIT, minimum=1, maximum=places.MAX_LIMIT),
    LANG.but(description="Language of each result's label."),
)


def _near(value: str | None) -> tuple[float, float] | None:
    """``near`` as (lon, lat); the declared pattern has checked its form, here its range."""
    if value is None:
        return None
    lon, lat = (float(v) for v in value.split(","))
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadParameter(f"near was {value[:40]!r} but lon must be within ±180 and lat within ±90",
                           parameter="near", allowed="lon,lat")
    return lon, lat


@bp.get("/api/places")
@operation("Search places: townships, streets, villages, roads, facilities (pinyin and typos too)", "residents",
           PLACES_PARAMS, responses={"200": body("Matching places, best first, nearest first", "application/geo+json"),
                                     **errors(400, 503)})
def api_places() -> ResponseReturnValue:
    a = parse(PLACES_PARAMS)
    response = jsonify(places.search(get_engine(), a.q, near=_near(a.near), crs=a.crs, limit=a.limit, lang=a.lang))
    response.mimetype = "application/geo+json"
    return response


@bp.cli.command("townships")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def townships_command(path: Path) -> None:
    """Load real township positions from a CSV (code,lon,lat in WGS-84), replacing the synthetic ones."""
    n = gazetteer.load_township_positions(get_engine(), path)
    click.echo(f"{n} township positions loaded from {path.name}")
    current_app.logger.info("township positions loaded from %s", path)
