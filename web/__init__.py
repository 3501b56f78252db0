"""Minsheng Map web app: ``create_app()`` builds it; nothing happens at import."""
from __future__ import annotations

import importlib
import os

from flask import Flask

from layers.modes import WALK_SPEED_M_PER_MIN

#: Blueprint modules, each exposing ``bp``. Add new areas here.
BLUEPRINTS = ["web.api", "web.assets", "web.admin", "web.planner_api", "web.planner", "web.nearest_api", "web.pages", "web.downloads", "web.ogc", "web.tiles", "web.openapi"]


def _config_from_env() -> dict:
    env = os.environ
    return {
        "DATABASE_URL": env.get("DATABASE_URL"),
        # Basemap: none (district outlines only, works offline), osm, tianditu, amap.
        "BASEMAP": env.get("MINSHENG_BASEMAP", "none"),
        "TIANDITU_KEY": env.get("TIANDITU_KEY", ""),
        "WALK_SPEED_M_PER_MIN": float(env.get("MINSHENG_WALK_SPEED_M_PER_MIN", WALK_SPEED_M_PER_MIN)),
        "EXPORT_DIR": env.get("MINSHENG_EXPORT_DIR", ""),
    }


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app. ``test_config`` overrides settings (e.g. ``DATABASE_URL``)."""
    app = Flask(__name__)
    app.config.from_mapping(_config_from_env())
    if test_config:
        app.config.update(test_config)
    if not app.config.get("DATABASE_URL"):
        from db import default_url

        app.config["DATABASE_URL"] = default_url()
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    from web import database, security
    from web.errors import register_error_handlers

    database.init_app(app)
    security.init_app(app)
    register_error_handlers(app)
    for name in BLUEPRINTS:
        app.register_blueprint(importlib.import_module(name).bp)

    from web.cli import register_cli

    register_cli(app)
    return app
