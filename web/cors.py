"""CORS for the read-only GIS routes: ``/ogc``, ``/tiles`` and ``/export`` (GET, HEAD and preflight only).

A web map on another origin (MapLibre, OpenLayers, Leaflet) may read the
features, tiles and downloads. The origins allowed are the ``CORS_ORIGINS``
setting (``MINSHENG_CORS_ORIGINS``: ``*``, the default, or a comma-separated
list of origins such as ``https://maps.example.cn``). Editing is never
opened: a preflight for POST, PUT, PATCH or DELETE gets no CORS headers, so
the browser refuses the cross-origin edit, and the admin API stays
same-origin.
"""
from __future__ import annotations

import os

from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState

bp = Blueprint("cors", __name__)

#: Path prefixes whose reads are shared with other origins.
SHARED_PREFIXES = ("/ogc", "/tiles", "/export")
READ_METHODS = ("GET", "HEAD", "OPTIONS")
#: Response headers a cross-origin script may read.
EXPOSED = "Content-Crs, Link, ETag, Content-Disposition, X-Coordinate-System, Warning"
PREFLIGHT_SECONDS = 3600


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    raw = os.environ.get("MINSHENG_CORS_ORIGINS", "*")
    state.app.config.setdefault("CORS_ORIGINS", [o.strip() for o in raw.split(",") if o.strip()])


def _allowed_origin(origin: str | None) -> str | None:
    """The value of ``Access-Control-Allow-Origin`` for this request's ``Origin``, or None."""
    allowed = current_app.config.get("CORS_ORIGINS") or []
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def _shared_read() -> bool:
    if not request.path.startswith(SHARED_PREFIXES) or request.method not in READ_METHODS:
        return False
    wanted = request.headers.get("Access-Control-Request-Method", "GET").upper()
    return request.method != "OPTIONS" or wanted in ("GET", "HEAD")


@bp.after_app_request
def _cors(response: Response) -> Response:
    if not _shared_read():
        return response
    origin = _allowed_origin(request.headers.get("Origin"))
    if origin is None:
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    if origin != "*":
        response.vary.add("Origin")
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Accept, Accept-Language, Content-Type, If-None-Match"
        response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_SECONDS)
    return response
