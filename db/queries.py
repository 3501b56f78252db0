"""Read queries behind the JSON API. SQL is built with bound parameters only."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Engine

from layers import LAYERS


def layer_summaries(engine: Engine) -> list[dict]:
    """Per layer: count, count by district, count by kind, capacity total."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT layer, district_adcode, kind, count(*) AS n, sum(capacity) AS cap FROM facility "
            "WHERE status = 'active' GROUP BY layer, district_adcode, kind")).all()
        synthetic = dict(conn.execute(text(
            "SELECT layer, bool_or(synthetic) FROM facility WHERE status = 'active' GROUP BY layer")).all())
    out = []
    for key, layer in LAYERS.items():
        mine = [r for r in rows if r.layer == key]
        by_district: dict[str, int] = {}
        by_kind: dict[str, int] = {}
        for r in mine:
            by_district[r.district_adcode or "outside"] = by_district.get(r.district_adcode or "outside", 0) + r.n
            if r.kind:
                by_kind[r.kind] = by_kind.get(r.kind, 0) + r.n
        item = layer.as_dict()
        item["count"] = sum(r.n for r in mine)
        item["count_by_district"] = dict(sorted(by_district.items()))
        item["count_by_kind"] = dict(sorted(by_kind.items()))
        if layer.capacity_field:
            item["capacity_total"] = int(sum(r.cap or 0 for r in mine))
            cap_by_kind: dict[str, int] = {}
            for r in mine:
                cap_by_kind[r.kind or ""] = cap_by_kind.get(r.kind or "", 0) + int(r.cap or 0)
            item["capacity_by_kind"] = cap_by_kind
        item["synthetic"] = bool(synthetic.get(key, False))
        item["report_note"] = layer.report_note_en
        out.append(item)
    return out


def districts(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT adcode, name_zh, name_en, population, urban_population, rural_population, area_km2,"
            " ST_X(seat) AS seat_lon, ST_Y(seat) AS seat_lat, source FROM district ORDER BY adcode")).mappings().all()
    return [{
        "adcode": r["adcode"], "name_zh": r["name_zh"], "name_en": r["name_en"],
        "population": r["population"], "urban_population": r["urban_population"],
        "rural_population": r["rural_population"], "area_km2": round(r["area_km2"], 1),
        "density_per_km2": round(r["population"] / r["area_km2"], 1) if r["area_km2"] else None,
        "seat": [round(r["seat_lon"], 6), round(r["seat_lat"], 6)] if r["seat_lon"] is not None else None,
        "source": r["source"],
    } for r in rows]


def district_geojson(engine: Engine, *, simplify_m: float = 0.0) -> dict:
    """District outlines as a GeoJSON FeatureCollection (WGS-84)."""
    tol_deg = simplify_m / 111_000.0
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT adcode, name_zh, name_en, population, area_km2,"
            " ST_AsGeoJSON(CASE WHEN :tol > 0 THEN ST_SimplifyPreserveTopology(geom, :tol) ELSE geom END, 6)"
            " AS g FROM district ORDER BY adcode"), {"tol": tol_deg}).mappings().all()
    import json

    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": r["adcode"],
        "properties": {"adcode": r["adcode"], "name_zh": r["name_zh"], "name_en": r["name_en"],
                       "population": r["population"], "area_km2": round(r["area_km2"], 1)},
        "geometry": json.loads(r["g"])} for r in rows]}
