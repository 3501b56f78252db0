"""JSON API: health, layers and districts (more areas register their own blueprints)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from db import ping, queries
from web.database import get_engine
from web.errors import ServiceUnavailable

bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz():
    try:
        ping(get_engine())
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is an outage
        raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from None
    return jsonify({"status": "ok", "database": "ok"})


@bp.get("/api/layers")
def api_layers():
    return jsonify({"layers": queries.layer_summaries(get_engine())})


@bp.get("/api/districts")
def api_districts():
    rows = queries.districts(get_engine())
    return jsonify({"districts": rows, "total_population": sum(r["population"] for r in rows),
                    "crs": "EPSG:4326 (WGS-84; boundaries converted from GCJ-02)"})
