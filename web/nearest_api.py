"""Residents' API: the nearest facilities to a position, and search by name or address.

``GET /api/nearest?lon=&lat=&layer=&k=&crs=`` and ``GET /api/search?q=&layer=&limit=``.
Views parse parameters (``web.params``), call one function, return. Both
answer GeoJSON FeatureCollections with WGS-84 geometry (RFC 7946); each
feature also carries its position in GCJ-02 and BD-09 for Chinese map apps.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from db import nearest as nearest_db
from geo.crs import to_wgs84
from geo.nearest import coordinates_for_apps, links_and_coordinates, walking_minutes
from layers import LAYER_KEYS, LAYERS
from web import params
from web.database import get_engine

bp = Blueprint("nearest_api", __name__)

#: What ``crs=`` accepts: the systems phones report positions in.
INPUT_CRS = ("wgs84", "gcj02", "bd09")
MAX_K = 50
DEFAULT_K = 5
MAX_QUERY_CHARS = 50
MAX_SEARCH_LIMIT = 50

DISTANCE_NOTE = ("distance_m: geodesic metres on the WGS-84 ellipsoid from the query position to the "
                 "facility's representative point (a park's centre point, not its edge); walk_minutes: "
                 "that straight-line distance at walk_speed_m_per_min, rounded up (real routes are longer)")
SYNTHETIC_NOTE = {"zh": "演示数据：设施为合成数据（非真实位置）",
                  "en": "Demo data: these facilities are SYNTHETIC (not real places)"}
OUTSIDE_NOTE = {"zh": "该位置在枣庄市范围之外；仍列出最近的设施，但可能很远",
                "en": "This position is outside Zaozhuang City; the nearest facilities are still listed "
                      "but may be far away"}


@bp.get("/api/nearest")
def api_nearest():
    lon = params.number("lon", lo=-180, hi=180, required=True)
    lat = params.number("lat", lo=-90, hi=90, required=True)
    layer = params.layer("layer", allow_all=True, default="all")
    k = params.integer("k", lo=1, hi=MAX_K, default=DEFAULT_K)
    crs = params.choice("crs", INPUT_CRS, default="wgs84")
    return jsonify(nearest_collection(lon, lat, crs, layer, k))


@bp.get("/api/search")
def api_search():
    q = params.text_param("q", max_len=MAX_QUERY_CHARS, required=True)
    layer = params.layer("layer", required=False)
    limit = params.integer("limit", lo=1, hi=MAX_SEARCH_LIMIT, default=10)
    return jsonify(search_collection(q, layer, limit))


# --------------------------------------------------------------------------
# the functions the views call
# --------------------------------------------------------------------------

def nearest_collection(lon: float, lat: float, crs: str, layer: str, k: int) -> dict:
    """GeoJSON FeatureCollection of the ``k`` nearest of ``layer`` (or of each layer for ``all``).

    ``lon``/``lat`` are degrees in ``crs`` (wgs84, gcj02 or bd09); features
    are ordered by geodesic distance in metres.
    """
    wlon, wlat = to_wgs84(lon, lat, crs)
    layers = list(LAYER_KEYS) if layer == "all" else [layer]
    result = nearest_db.nearest(get_engine(), wlon, wlat, layers, k)
    speed = float(current_app.config.get("WALK_SPEED_M_PER_MIN", 80.0))
    features = _features(result.ordered(), speed=speed, origin=(wlon, wlat))
    district = result.district
    query = {
        "lon": lon, "lat": lat, "crs": crs, "layer": layer, "k": k,
        "coordinates": coordinates_for_apps(wlon, wlat),
        "inside_city": result.inside_city,
        "district": {"adcode": district["adcode"], "name_zh": district["name_zh"],
                     "name_en": district["name_en"]} if district else None,
    }
    if not result.inside_city:
        query["notice"] = OUTSIDE_NOTE
    return {"type": "FeatureCollection", "query": query, "walk_speed_m_per_min": speed,
            "distance_note": DISTANCE_NOTE, "synthetic": any(f["properties"]["synthetic"] for f in features),
            "synthetic_note": SYNTHETIC_NOTE, "numberReturned": len(features), "features": features}


def search_collection(q: str, layer: str | None, limit: int) -> dict:
    """GeoJSON FeatureCollection of facilities whose name or address contains ``q``, best first."""
    rows = nearest_db.search(get_engine(), q, layer=layer, limit=limit)
    features = _features(rows)
    for f, row in zip(features, rows):
        f["properties"]["matched"] = "name" if row["name_pos"] > 0 else "address"
    return {"type": "FeatureCollection", "query": {"q": q, "layer": layer, "limit": limit},
            "synthetic": any(f["properties"]["synthetic"] for f in features),
            "synthetic_note": SYNTHETIC_NOTE, "numberReturned": len(features), "features": features}


def _features(rows: list[dict], *, speed: float | None = None,
              origin: tuple[float, float] | None = None) -> list[dict]:
    extras = links_and_coordinates([r["lon"] for r in rows], [r["lat"] for r in rows], [r["name"] for r in rows],
                                   origin)
    return [_feature(row, coords, links, speed) for row, (coords, links) in zip(rows, extras)]


def _feature(row: dict, coords: dict, links: dict, speed: float | None) -> dict:
    layer = LAYERS[row["layer"]]
    kind = layer.kinds.get(row["kind"] or "")
    props = {
        "id": row["id"], "layer": layer.key, "layer_name_zh": layer.name_zh, "layer_name_en": layer.name_en,
        "kind": row["kind"], "kind_name_zh": kind[0] if kind else None, "kind_name_en": kind[1] if kind else None,
        "name": row["name"], "address": row["address"], "phone": row["phone"],
        "opening_hours": row["opening_hours"],
        "district": row["district_adcode"], "district_zh": row["district_zh"], "district_en": row["district_en"],
        "synthetic": bool(row["synthetic"]),
    }
    if layer.capacity_field or row["capacity"] is not None:
        props.update(capacity=row["capacity"], capacity_unit_zh=layer.capacity_unit_zh,
                     capacity_unit_en=layer.capacity_unit_en)
    if "distance_m" in row:
        props["distance_m"] = round(row["distance_m"], 1)
        props["walk_minutes"] = walking_minutes(row["distance_m"], speed or 80.0)
    props["coordinates"] = coords
    props["navigation"] = links
    return {"type": "Feature", "id": row["id"],
            "geometry": {"type": "Point", "coordinates": coords["wgs84"]},
            "properties": props}
