"""Minsheng Map web app: ``create_app()`` builds it; nothing happens at import."""
from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_compress import Compress

from db import default_url
from layers.modes import WALK_SPEED_M_PER_MIN
from web import (
    admin,
    api,
    assets,
    basemap_tiles,
    cors,
    database,
    downloads,
    nearest_api,
    ogc,
    ogc_edit,
    ogc_items,
    ogc_tiles,
    openapi,
    pages,
    places_api,
    planner,
    planner_api,
    routing_api,
    security,
    tiles,
)
from web.cli import register_cli
from web.errors import register_error_handlers

#: The blueprints, one per area. Add new areas here.
BLUEPRINTS = (api.bp, assets.bp, admin.bp, planner_api.bp, planner.bp, nearest_api.bp, pages.bp, downloads.bp,
              ogc.bp, ogc_items.bp, ogc_edit.bp, ogc_tiles.bp, tiles.bp, openapi.bp, cors.bp,
              places_api.bp, basemap_tiles.bp, routing_api.bp)


def _config_from_env() -> dict[str, Any]:
    env = os.environ
    return {
        "DATABASE_URL": env.get("DATABASE_URL"),
        # Basemap: none (district outlines only, works offline), osm, tianditu, amap.
        "BASEMAP": env.get("MINSHENG_BASEMAP", "none"),
        "TIANDITU_KEY": env.get("TIANDITU_KEY", ""),
        "WALK_SPEED_M_PER_MIN": float(env.get("MINSHENG_WALK_SPEED_M_PER_MIN", WALK_SPEED_M_PER_MIN)),
        "EXPORT_DIR": env.get("MINSHENG_EXPORT_DIR", ""),
        # Compression (brotli first, then gzip) of pages, scripts, JSON, GeoJSON and vector tiles.
        # Streamed downloads stay uncompressed so they start at once and hold no buffer.
        "COMPRESS_ALGORITHM": ["br", "gzip"],
        "COMPRESS_MIMETYPES": ["text/html", "text/css", "text/javascript", "application/javascript",
                               "application/json", "application/geo+json", "application/schema+json",
                               "application/vnd.oai.openapi+json;version=3.0", "image/svg+xml",
                               "application/vnd.mapbox-vector-tile", "text/csv"],
        "COMPRESS_MIN_SIZE": 500,
        "COMPRESS_STREAMS": False,
    }


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` overrides settings (e.g. ``DATABASE_URL``)."""
    app = Flask(__name__)
    app.config.from_mapping(_config_from_env())
    if test_config:
        app.config.update(test_config)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = default_url()
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    database.init_app(app)
    security.init_app(app)
    register_error_handlers(app)
    Compress(app)
    assets.init_app(app)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    register_cli(app)
    return app
