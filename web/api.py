"""Core JSON API: health, layers and districts (more areas register their own blueprints)."""
from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from services import catalogue
from web.database import get_engine
from web.errors import ServiceUnavailable
from web.params import operation
from web.responses import json_ok_or_503

bp = Blueprint("api", __name__)


@bp.get("/healthz")
@operation("Health of the app and its database", "core", responses=json_ok_or_503("Healthy"))
def healthz() -> ResponseReturnValue:
    try:
        return jsonify(catalogue.health(get_engine()))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the database is an outage
        raise ServiceUnavailable(f"database unreachable: {type(exc).__name__}") from None


@bp.get("/api/layers")
@operation("The facility layers: names, standards with sources, counts", "core",
           responses=json_ok_or_503("Every layer with its record and counts"))
def api_layers() -> ResponseReturnValue:
    return jsonify({"layers": catalogue.layer_summaries(get_engine())})


@bp.get("/api/districts")
@operation("The six districts with 2020 census population", "core",
           responses=json_ok_or_503("The districts and the city total"))
def api_districts() -> ResponseReturnValue:
    return jsonify(catalogue.districts(get_engine()))
