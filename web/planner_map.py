"""The planner page's map: areas coloured by coverage, district labels, facilities, gaps and numbered sites.

One Folium map drawn with the app's own Leaflet (``/vendor``), no tiles
unless a basemap is configured. Colour classes are per layer and stated in
the legend (:func:`classes`): relative to the layer's target when it has one,
else the quintiles of the areas' figures. Areas are filled opaque, so the
legend's swatches are the colours drawn.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import folium
import numpy as np
import shapely.geometry
from folium.features import DivIcon
from markupsafe import escape

from geo.crs import wgs84_to_gcj02
from web.pages import add_basemap, basemap_setting, districts_to_gcj02
from web.security import add_nonce

#: Colours of the five classes, light to dark green (ColorBrewer YlGn).
COLOURS: tuple[str, ...] = ("#f7fcb9", "#c2e699", "#78c679", "#31a354", "#006837")
NO_DATA = "#cccccc"
GAP_COLOUR, SITE_COLOUR, FACILITY_COLOUR = "#d7301f", "#08306b", "#6a3d9a"
#: Shares of the target the class bounds sit at, when the layer has a target.
TARGET_SHARES = (0.5, 0.75, 0.9, 1.0)


class MapParts(NamedTuple):
    """The map's HTML parts for the page, and the JavaScript names of the map and of its suggested sites' group."""

    head: str
    body: str
    script: str
    map_name: str
    sites_group: str


def classes(values: Sequence[float | None], target: float | None) -> tuple[list[float], str]:
    """The lower bounds of the five classes (percent) and how they were chosen (``target`` or ``quantiles``)."""
    if target:
        return [0.0, *(round(target * s, 1) for s in TARGET_SHARES)], "target"
    known = sorted(v for v in values if v is not None)
    if len(known) < 2:
        return [0.0, 20.0, 40.0, 60.0, 80.0], "fixed"
    cuts = [round(float(c), 1) for c in np.quantile(known, [0.2, 0.4, 0.6, 0.8])]
    return [0.0, *cuts], "quantiles"


def colour(percent: float | None, bounds: list[float]) -> str:
    """The class colour of a percentage (0-100) for class lower ``bounds``."""
    if percent is None:
        return NO_DATA
    chosen = COLOURS[0]
    for lower, col in zip(bounds, COLOURS, strict=True):
        if percent >= lower:
            chosen = col
    return chosen


def area_labels(outlines: dict[str, Any], name_field: str) -> list[tuple[str, float, float]]:
    """(name, lon, lat) of a point inside each area, where its label is drawn."""
    out = []
    for f in outlines["features"]:
        p = shapely.geometry.shape(f["geometry"]).representative_point()
        out.append((str(f["properties"][name_field]), p.x, p.y))
    return out


def legend_items(bounds: list[float], no_data: str) -> list[tuple[str, str]]:
    """(colour, label) for each class, then the no-data colour."""
    ends = [*bounds[1:], 100.0]
    items = [(col, f"{lo:g}–{hi:g}%") for col, lo, hi in zip(COLOURS, bounds, ends, strict=True)]
    return items + [(NO_DATA, no_data)]


def build(outlines: dict[str, Any], percents: dict[str, float | None], bounds: list[float], t: dict[str, str],
          gaps: list[dict[str, Any]], sites: list[dict[str, Any]], facilities: list[list[float]],
          labels: list[tuple[str, float, float]], focus: dict[str, Any] | None,
          key_field: str) -> MapParts:
    """The map's HTML parts, with local Leaflet and nonces.

    ``outlines`` are the areas (GeoJSON, WGS-84) keyed by ``key_field``;
    ``focus`` the area to zoom to (the others stay drawn).
    """
    for f in outlines["features"]:
        pct = percents.get(str(f["properties"][key_field]))
        f["properties"].update(percent=("–" if pct is None else f"{pct:.1f}%"), fill=colour(pct, bounds))
    basemap, key, display_crs = basemap_setting()
    if display_crs == "gcj02":  # AMap tiles: draw every overlay in GCJ-02 to sit on them
        outlines = districts_to_gcj02(outlines)
        gaps = districts_to_gcj02({"features": gaps})["features"]
    fmap = _offline_map()
    add_basemap(fmap, basemap, key)
    folium.GeoJson(outlines, name=t["legend"],
                   style_function=lambda f: {"fillColor": f["properties"]["fill"], "color": "#333333",
                                             "weight": 1.5, "fillOpacity": 1.0},
                   tooltip=folium.GeoJsonTooltip(["name", "percent"], aliases=[t["area"], t["percent"]])).add_to(fmap)
    _labels(fmap, labels)
    _facilities(fmap, facilities, t)
    if gaps:
        folium.GeoJson({"type": "FeatureCollection", "features": gaps}, name=t["gap_legend"],
                       style_function=lambda f: {"fillColor": GAP_COLOUR, "color": "#b30000", "weight": 1,
                                                 "fillOpacity": 0.55},
                       tooltip=folium.GeoJsonTooltip(["rank", "population", "district_name", "near"],
                                                     aliases=[t["rank"], t["population"], t["district"], t["near"]]),
                       ).add_to(fmap)
    sites_group = _sites(fmap, sites, t)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.fit_bounds(_bounds(focus or outlines))
    fig: Any = fmap.get_root()  # a branca Figure (typed as its base Element)
    fig.render()
    return MapParts(add_nonce(fig.header.render()), fig.html.render(), fig.script.render(), fmap.get_name(),
                    sites_group)


def _labels(fmap: folium.Map, labels: list[tuple[str, float, float]]) -> None:
    for name, lon, lat in labels:
        folium.Marker([lat, lon], icon=DivIcon(html=f'<span class="area-label">{name}</span>', icon_size=(0, 0)),
                      interactive=False).add_to(fmap)


def _facilities(fmap: folium.Map, facilities: list[list[float]], t: dict[str, str]) -> None:
    if not facilities:
        return
    group = folium.FeatureGroup(name=t["facilities"], show=True)
    folium.GeoJson({"type": "Feature", "properties": {},
                    "geometry": {"type": "MultiPoint", "coordinates": facilities}},
                   marker=folium.CircleMarker(radius=3, color=FACILITY_COLOUR, weight=1, fill=True,
                                              fill_color=FACILITY_COLOUR, fill_opacity=0.9),
                   style_function=lambda f: {"className": "facility-point"}).add_to(group)
    group.add_to(fmap)


def site_markers(sites: list[dict[str, Any]], t: dict[str, str]) -> list[dict[str, Any]]:
    """Each suggested site as the map draws it: rank, position (in the basemap's CRS) and its tooltip's HTML."""
    if basemap_setting()[2] == "gcj02":  # AMap tiles: drawn in GCJ-02 to sit on them
        sites = [{**s, **dict(zip(("lon", "lat"), wgs84_to_gcj02(s["lon"], s["lat"]), strict=True))} for s in sites]
    out = []
    for s in sites:
        place = " · ".join(p for p in (s.get("district_name"), s.get("near")) if p)
        text = escape(f"{t['site_legend']} {s['rank']}: {place} +{s['marginal_gain']:,}")
        out.append({"rank": s["rank"], "lat": s["lat"], "lon": s["lon"], "tooltip": text,
                    "tooltip_html": f"<div>{text}</div>"})
    return out


def _sites(fmap: folium.Map, sites: list[dict[str, Any]], t: dict[str, str]) -> str:
    """The numbered sites' group on the map (empty when they come later); returns its JavaScript name."""
    group = folium.FeatureGroup(name=t["site_legend"], show=True)
    for m in site_markers(sites, t):
        folium.Marker([m["lat"], m["lon"]],
                      icon=DivIcon(html=f'<span class="site-number">{m["rank"]}</span>', icon_size=(22, 22),
                                   icon_anchor=(11, 11), class_name="suggested-site"),
                      tooltip=m["tooltip"]).add_to(group)
    group.add_to(fmap)
    return str(group.get_name())


def _offline_map() -> folium.Map:
    fmap = folium.Map(location=[34.85, 117.45], zoom_start=9, tiles=None, control_scale=False,
                      prefer_canvas=False)  # a metric-only scale is added by the page
    fmap.default_js = [("leaflet", "/vendor/leaflet/dist/leaflet.js")]
    fmap.default_css = [("leaflet_css", "/vendor/leaflet/dist/leaflet.css")]
    return fmap


def _bounds(geojson: dict[str, Any]) -> list[list[float]]:
    boxes = [shapely.geometry.shape(f["geometry"]).bounds for f in geojson["features"]] or [(117.0, 34.4, 117.9, 35.3)]
    return [[min(b[1] for b in boxes), min(b[0] for b in boxes)], [max(b[3] for b in boxes), max(b[2] for b in boxes)]]
