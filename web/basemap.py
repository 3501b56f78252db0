"""Basemaps of the pages, and overlays shifted to sit on them.

``MINSHENG_BASEMAP`` (app config ``BASEMAP``) picks an online basemap of
:data:`BASEMAPS` (``amap``, ``tianditu``, ``osm``), ``auto`` (Tianditu with a
key, else AMap) or ``none``/``offline``. Tianditu needs ``TIANDITU_KEY``;
without one there is no online basemap rather than broken tiles. AMap's
tiles are drawn in GCJ-02, so with that basemap every overlay is shifted
from WGS-84 to GCJ-02 (:func:`districts_to_gcj02`; the residents' page does
it in the browser).

The residents' page always has the offline basemap the app serves itself
(:func:`resident_basemap`): vector tiles of the city's roads, districts and
place names, or the operator's MBTiles/PMTiles archive when
``MINSHENG_BASEMAP_FILE`` names one. It is shown on a closed network and
replaces an online basemap whose tiles fail. The planner page (Folium) uses
:func:`basemap_setting` and :func:`add_basemap`.
"""
from __future__ import annotations

import os
from typing import Any

import folium
import shapely
from flask import current_app, url_for

from geo.crs import transform_geometry, wgs84_to_gcj02
from services import basemap as basemap_service

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


#: Settings meaning "no online basemap": the offline map only, nothing leaves the app's host.
OFFLINE = ("none", "offline")


def basemap_name() -> str:
    """The configured basemap's name, with ``auto`` resolved: ``tianditu`` with a key, else ``amap``."""
    name = str(current_app.config.get("BASEMAP", "none"))
    if name == "auto":
        return "tianditu" if current_app.config.get("TIANDITU_KEY") else "amap"
    return name


def basemap_setting() -> tuple[dict[str, str] | None, str, str]:
    """The configured online basemap (or ``None``: offline), its Tianditu key, and the CRS overlays are drawn in.

    The CRS is ``wgs84`` or ``gcj02`` (AMap's tiles).
    """
    name = basemap_name()
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


def archive_path() -> str:
    """The operator's basemap archive (``MINSHENG_BASEMAP_FILE``: an .mbtiles or .pmtiles file), or ``""``."""
    return str(current_app.config.get("BASEMAP_FILE") or os.environ.get("MINSHENG_BASEMAP_FILE", ""))


def resident_basemap() -> dict[str, Any]:
    """What the residents' page draws under its markers: the online basemap, if any, and the offline one.

    ``online`` is ``None`` on a closed network (``none``/``offline``) or
    ``{url, subdomains, attribution, crs, labels}``; ``offline`` is the app's
    own vector tiles or the operator's archive, ``{url, kind: vector|raster,
    minZoom, maxZoom, attribution}``.
    """
    online, key, crs = basemap_setting()
    info = basemap_service.archive(archive_path())
    if info is not None:
        url = url_for("basemap_tiles.archive_tile", z=0, x=0, y=0).replace("/0/0/0", "/{z}/{x}/{y}")
        offline = {"url": url, "kind": "vector" if info.vector else "raster", "minZoom": info.minzoom,
                   "maxZoom": info.maxzoom, "attribution": info.attribution}
    else:
        url = url_for("basemap_tiles.basemap_tile", z=0, x=0, y=0).replace("/0/0/0.mvt", "/{z}/{x}/{y}.mvt")
        offline = {"url": url, "kind": "vector", "minZoom": basemap_service.MIN_ZOOM,
                   "maxZoom": basemap_service.MAX_ZOOM, "attribution": ""}
    return {"online": None if online is None else {
        "url": online["url"] + key, "subdomains": online["subdomains"], "attribution": online["attr"], "crs": crs,
        "labels": online["labels"] + key if online.get("labels") else None}, "offline": offline}
