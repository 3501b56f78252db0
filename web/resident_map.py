"""What the residents' page carries: its words, its layers and where to fetch everything else.

The page holds no facilities. It names the API routes it calls (markers per
layer, nearest, isochrone, places), the basemap (:func:`web.basemap.resident_basemap`),
each layer's name, colour and icon from the registry, the travel speeds
(:mod:`layers.modes`), the opening view and the words of the page's one
language (:mod:`web.resident_text`). ``static/resident.js`` and
``static/resident.list.js`` do the rest in the browser.
"""
from __future__ import annotations

from typing import Any

from flask import url_for

from layers import LAYERS
from layers.modes import DRIVE, WALK
from web.basemap import resident_basemap
from web.resident_text import HOURS_EN, TEXT

#: The opening view: the city's extent, [[south, west], [north, east]] in degrees (WGS-84; the map draws it
#: in GCJ-02 on AMap's tiles, half a kilometre away, which does not matter at this scale).
CITY_BOUNDS = [[34.46, 116.81], [35.32, 117.83]]
#: Most facilities of a kind the page lists ("more" stops there).
PAGE_MAX_K = 10
#: Longest search text, characters (the places API's limit).
SEARCH_MAX_CHARS = 50


def page_context(lang: str, initial: dict[str, Any], walk_speed_m_per_min: float) -> dict[str, Any]:
    """Everything ``resident.html`` needs: its words, and the JSON ``resident*.js`` reads."""
    words = dict(TEXT[lang])
    words["hours_words"] = [list(pair) for pair in HOURS_EN] if lang == "en" else []
    layers = [{"key": key, "name": layer.name(lang), "color": layer.style.color, "icon": layer.style.icon}
              for key, layer in LAYERS.items()]
    data = {
        "lang": lang, "t": words, "layers": layers, "max_k": PAGE_MAX_K,
        "speeds": {"walk": walk_speed_m_per_min, "drive": DRIVE.speed_m_per_min},
        "view": {"bounds": CITY_BOUNDS}, "basemap": resident_basemap(),
        "api": {"markers": url_for("basemap_tiles.api_markers"),
                "markers_all": url_for("basemap_tiles.api_markers_all"), "nearest": url_for("nearest_api.api_nearest"),
                "isochrone": "/api/isochrone", "places": url_for("places_api.api_places")},
        "later": [url_for("static", filename="resident.tiles.js"), url_for("static", filename="resident.list.js")],
        "initial": {k: v for k, v in initial.items() if v is not None},
    }
    return {"lang": lang, "t": words, "data": data, "layers": layers, "search_max_chars": SEARCH_MAX_CHARS,
            "switch_url": url_for("pages.resident", lang="zh" if lang == "en" else "en"),
            "walk_speed_default": WALK.speed_m_per_min}
