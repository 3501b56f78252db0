"""Basemaps for the Folium pages (residents' and planners'), and overlays shifted to sit on them.

``MINSHENG_BASEMAP`` (app config ``BASEMAP``) picks one of :data:`BASEMAPS` or
``none`` (district outlines only; works offline). Tianditu needs
``TIANDITU_KEY``; without one the pages fall back to outlines only rather
than broken tiles. AMap's tiles are drawn in GCJ-02, so with that basemap
every overlay is shifted from WGS-84 to GCJ-02 (:func:`districts_to_gcj02`).
"""
from __future__ import annotations

from typing import Any

import folium
import shapely
from flask import current_app

from geo.crs import transform_geometry, wgs84_to_gcj02

#: Basemaps (see README, ``MINSHENG_BASEMAP``). ``crs`` is what the tiles are drawn in.
BASEMAPS: dict[str, dict[str, str]] = {
    "osm": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "subdomains": "abc", "crs": "wgs84",
            "attr": "&copy; OpenStreetMap contributors"},
    "tianditu": {"url": "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                        "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                        "&TILECOL={x}&tk=", "subdomains": "0123", "crs": "wgs84", "attr": "&copy; 天地图 Tianditu",
                 "labels": "https://t{s}.tianditu.gov.cn/cva_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                           "&LAYER=cva&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
                           "&TILECOL={x}&tk="},
    "amap": {"url": "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8"
                    "&x={x}&y={y}&z={z}", "subdomains": "1234", "crs": "gcj02", "attr": "&copy; 高德地图 AMap"},
}


def basemap_setting() -> tuple[dict[str, str] | None, str, str]:
    """The configured basemap (or ``None``: outlines only), its Tianditu key, and the CRS overlays are drawn in.

    The CRS is ``wgs84`` or ``gcj02`` (AMap's tiles).
    """
    name = current_app.config.get("BASEMAP", "none")
    basemap = BASEMAPS.get(name)
    key = current_app.config.get("TIANDITU_KEY", "") if name == "tianditu" else ""
    if name == "tianditu" and not key:
        basemap = None  # no key: fall back to outlines only rather than broken tiles
    return basemap, key, basemap["crs"] if basemap else "wgs84"


def add_basemap(fmap: folium.Map, basemap: dict[str, str] | None, key: str = "") -> None:
    """Tile layers of ``basemap`` (nothing for ``None``, the offline default)."""
    if not basemap:
        return
    folium.TileLayer(tiles=basemap["url"] + key, attr=basemap["attr"], subdomains=basemap["subdomains"],
                     name="basemap", control=False, max_zoom=18).add_to(fmap)
    if basemap.get("labels"):
        folium.TileLayer(tiles=basemap["labels"] + key, attr=basemap["attr"], subdomains=basemap["subdomains"],
                         name="labels", control=False, overlay=True, max_zoom=18).add_to(fmap)


def districts_to_gcj02(fc: dict[str, Any]) -> dict[str, Any]:
    """GeoJSON features (district outlines, gap clusters) moved from WGS-84 to GCJ-02 to sit on AMap tiles."""
    out: dict[str, Any] = {"type": "FeatureCollection", "features": []}
    for f in fc["features"]:
        geom = transform_geometry(shapely.geometry.shape(f["geometry"]), wgs84_to_gcj02)
        out["features"].append({**f, "geometry": shapely.geometry.mapping(geom)})
    return out
