"""What the service holds: the layers with their counts, and the districts.

Serves ``/api/layers``, ``/api/districts`` and the district outlines the
pages draw. Layer facts come from the registry; counts from the database.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy.engine import Engine

from db import districts as db_districts
from db import facilities as db_facilities
from db import spatial_check
from geo.crs import metres_to_degrees
from layers import LAYERS

DISTRICTS_CRS_NOTE = "EPSG:4326 (WGS-84; boundaries converted from GCJ-02)"


def health(engine: Engine) -> dict[str, str]:
    """``{"status": "ok", ...}`` when the database answers a spatial query on the live schema as requests
    make them; raises the database's error otherwise (server down, schema or PostGIS missing)."""
    spatial_check(engine)
    return {"status": "ok", "database": "ok", "spatial": "ok"}


def layer_summaries(engine: Engine) -> list[dict[str, Any]]:
    """Per layer: its registry record, count, counts by district and kind, capacity totals."""
    with engine.connect() as conn:
        rows = db_facilities.counts(conn)
    out = []
    for key, layer in LAYERS.items():
        mine = [r for r in rows if r["layer"] == key]
        by_district: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        for r in mine:
            by_district[r["district_adcode"] or "outside"] += r["n"]
            if r["kind"]:
                by_kind[r["kind"]] += r["n"]
        item = layer.as_dict()
        item["count"] = sum(r["n"] for r in mine)
        item["count_by_district"] = dict(sorted(by_district.items()))
        item["count_by_kind"] = dict(sorted(by_kind.items()))
        if layer.capacity_field:
            item["capacity_total"] = int(sum(r["cap"] or 0 for r in mine))
            cap_by_kind: Counter[str] = Counter()
            for r in mine:
                cap_by_kind[r["kind"] or ""] += int(r["cap"] or 0)
            item["capacity_by_kind"] = dict(cap_by_kind)
        item["synthetic"] = any(r["synthetic"] for r in mine)
        item["report_note"] = layer.report_note_en
        out.append(item)
    return out


def districts(engine: Engine) -> dict[str, Any]:
    """The districts with 2020 census population, density and seat, and the city total."""
    with engine.connect() as conn:
        rows = db_districts.rows(conn)
    items = [{
        "adcode": r["adcode"], "name_zh": r["name_zh"], "name_en": r["name_en"],
        "population": r["population"], "urban_population": r["urban_population"],
        "rural_population": r["rural_population"], "area_km2": round(r["area_km2"], 1),
        "density_per_km2": round(r["population"] / r["area_km2"], 1) if r["area_km2"] else None,
        "seat": [round(r["seat_lon"], 6), round(r["seat_lat"], 6)] if r["seat_lon"] is not None else None,
        "source": r["source"],
    } for r in rows]
    return {"districts": items, "total_population": sum(r["population"] for r in items),
            "crs": DISTRICTS_CRS_NOTE}


def district_outlines(engine: Engine, *, simplify_m: float = 0.0) -> dict[str, Any]:
    """District outlines as a GeoJSON FeatureCollection (WGS-84), simplified by about ``simplify_m`` metres."""
    with engine.connect() as conn:
        rows = db_districts.outlines(conn, tolerance_deg=metres_to_degrees(simplify_m))
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": r["adcode"],
        "properties": {"adcode": r["adcode"], "name_zh": r["name_zh"], "name_en": r["name_en"],
                       "population": r["population"], "area_km2": round(r["area_km2"], 1)},
        "geometry": json.loads(r["geojson"])} for r in rows]}
