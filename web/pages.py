"""The residents' page ``/``: a map of Zaozhuang's facilities that works offline (``?lang=en`` for English).

The view reads the language, and serves the page from the HTML cache
(:mod:`web.cache`) or renders it from :func:`web.resident_map.page_context`.
The basemap helpers shared with the planner page live in :mod:`web.basemap`
and are importable from here too.
"""
from __future__ import annotations

from flask import Blueprint, current_app, render_template

from web import cache, params, resident_map
from web.basemap import add_basemap, basemap_setting, districts_to_gcj02
from web.database import get_engine

__all__ = ["bp", "resident", "add_basemap", "basemap_setting", "districts_to_gcj02"]

bp = Blueprint("pages", __name__)


@bp.get("/")
def resident() -> str:
    lang = params.lang()
    engine = get_engine()
    return cache.cached_html(engine, "resident", (lang, current_app.config.get("BASEMAP")),
                             lambda: render_template("resident.html", **resident_map.page_context(engine, lang)))
