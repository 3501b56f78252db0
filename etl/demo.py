"""The demo city: real districts and census totals, synthetic facilities and grid.

``load_demo`` is idempotent: a fingerprint of the inputs (data files, the
generator's source, seed, resolution, scale) is stored in ``app_meta``; when
it matches, nothing is reloaded.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Engine

from etl.boundaries import BOUNDARIES, CENSUS, SOURCE, read_districts
from etl.load import LoadResult, _copy, load_records
from layers import LAYER_KEYS

FINGERPRINT_KEY = "demo_fingerprint"
_HERE = Path(__file__).resolve().parent


def fingerprint(*, seed: int, resolution_m: float, scale: float) -> str:
    digest = hashlib.sha256()
    for path in (BOUNDARIES, CENSUS, _HERE / "demo.py", _HERE / "load.py",
                 _HERE / "validate.py"):
        digest.update(path.read_bytes())
    digest.update(json.dumps([seed, resolution_m, scale]).encode())
    return digest.hexdigest()


def current_fingerprint(engine: Engine) -> str | None:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT value FROM app_meta WHERE key = :k"), {"k": FINGERPRINT_KEY}).first()
    return row[0].get("fingerprint") if row else None


def write_districts(engine: Engine, districts: gpd.GeoDataFrame) -> None:
    """Upsert the six districts (WGS-84) with census population and area."""
    rows = [{
        "adcode": r.adcode, "name_zh": r.name_zh, "name_en": r.name_en, "population": int(r.population),
        "urban": int(r.urban_population), "rural": int(r.rural_population), "area": float(r.area_km2),
        "seat": shapely.to_wkb(shapely.Point(r.seat_lon, r.seat_lat), hex=True),
        "geom": shapely.to_wkb(r.geometry, hex=True), "source": SOURCE,
    } for r in districts.itertuples()]
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO district (adcode, name_zh, name_en, population, urban_population, rural_population,"
            " area_km2, seat, geom, source) VALUES (:adcode, :name_zh, :name_en, :population, :urban, :rural,"
            " :area, ST_SetSRID(ST_GeomFromWKB(decode(:seat, 'hex')), 4326),"
            " ST_Multi(ST_SetSRID(ST_GeomFromWKB(decode(:geom, 'hex')), 4326)), :source)"
            " ON CONFLICT (adcode) DO UPDATE SET name_zh = EXCLUDED.name_zh, name_en = EXCLUDED.name_en,"
            " population = EXCLUDED.population, urban_population = EXCLUDED.urban_population,"
            " rural_population = EXCLUDED.rural_population, area_km2 = EXCLUDED.area_km2,"
            " seat = EXCLUDED.seat, geom = EXCLUDED.geom, source = EXCLUDED.source"), rows)


def write_grid(engine: Engine, cells: gpd.GeoDataFrame, villages: gpd.GeoDataFrame, resolution_m: float) -> None:
    """Replace the demand grid and the villages in one transaction."""
    cell_frame = pd.DataFrame({
        "cell_id": cells["cell_id"], "district_adcode": cells["adcode"],
        "population": cells["population"].astype(int), "urban": cells["urban"].astype(bool),
        "resolution_m": resolution_m, "x_m": cells["x_m"], "y_m": cells["y_m"],
        "geom": "SRID=4326;" + pd.Series(shapely.to_wkt(cells.geometry.values, rounding_precision=7),
                                         index=cells.index),
        "synthetic": True,
    })
    village_frame = pd.DataFrame({
        "village_id": villages["village_id"], "name": villages["name"], "district_adcode": villages["adcode"],
        "population": villages["population"].astype(int),
        "geom": "SRID=4326;" + pd.Series(shapely.to_wkt(villages.geometry.values, rounding_precision=7),
                                         index=villages.index),
        "synthetic": True,
    })
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE demand_cell, village"))
        _copy(conn, cell_frame, "demand_cell", list(cell_frame.columns))
        _copy(conn, village_frame, "village", list(village_frame.columns))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("ANALYZE demand_cell"))
        conn.execute(text("ANALYZE village"))


def _records(frame: gpd.GeoDataFrame) -> list[dict]:
    records = []
    for i, r in enumerate(frame.itertuples(index=False), start=1):
        geom = r.geometry
        records.append({
            "row": i, "source_id": r.source_id, "kind": r.kind, "name": r.name, "address": r.address,
            "phone": r.phone, "opening_hours": r.opening_hours,
            "capacity": None if pd.isna(r.capacity) else int(r.capacity),
            "opened_on": r.opened_on, "attrs": dict(r.attrs or {}, synthetic=True), "geom": geom,
        })
    return records


def write_facilities(engine: Engine, facilities: gpd.GeoDataFrame, *, source: str, progress: bool = False) -> dict:
    """Load each layer through the ordinary validated, transactional path."""
    counts = {}
    for layer in LAYER_KEYS:
        part = facilities[facilities["layer"] == layer]
        result = LoadResult(layer=layer, source_name=source, sha256=hashlib.sha256(source.encode()).hexdigest(),
                            crs="wgs84")
        load_records(engine, _records(part), result, actor="demo", progress=progress, synthetic=True)
        if result.rejects:
            raise RuntimeError(f"demo layer {layer}: {len(result.rejects)} rejects, first: {result.rejects[0]}")
        counts[layer] = len(result.accepted)
        with engine.begin() as conn:
            # Synthetic facilities of an earlier, different demo build are removed.
            conn.execute(text("DELETE FROM facility WHERE synthetic AND layer = :layer "
                              "AND NOT (source_id = ANY(:ids))"),
                         {"layer": layer, "ids": [str(s) for s in part["source_id"]]})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text("ANALYZE facility"))
    return counts


def load_demo(engine: Engine, *, seed: int = 20221, resolution_m: float = 250.0, scale: float = 1.0,
              force: bool = False, progress: bool = False, echo=print) -> dict:
    """Build and load the demo city unless the same build is already loaded."""
    from demo import build_demo_city

    fp = fingerprint(seed=seed, resolution_m=resolution_m, scale=scale)
    if not force and current_fingerprint(engine) == fp:
        echo("demo city already loaded and unchanged: nothing to do")
        return {"skipped": True}
    started = time.perf_counter()
    districts = read_districts()
    write_districts(engine, districts)
    echo(f"districts: {len(districts)} (population {int(districts.population.sum()):,})")
    city = build_demo_city(districts, seed=seed, resolution_m=resolution_m, scale=scale)
    echo(f"synthetic grid: {len(city.cells):,} cells of {resolution_m:g} m; {len(city.villages):,} villages")
    write_grid(engine, city.cells, city.villages, resolution_m)
    source = f"demo:seed={seed}:res={resolution_m:g}:scale={scale:g}"
    counts = write_facilities(engine, city.facilities, source=source, progress=progress)
    echo("facilities: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO app_meta (key, value) VALUES (:k, CAST(:v AS jsonb)) ON CONFLICT (key) DO UPDATE "
            "SET value = EXCLUDED.value, updated_at = now()"),
            {"k": FINGERPRINT_KEY, "v": json.dumps({"fingerprint": fp, "seed": seed, "resolution_m": resolution_m,
                                                    "scale": scale, "synthetic": True})})
    elapsed = time.perf_counter() - started
    echo(f"demo city loaded in {elapsed:.1f} s")
    return {"skipped": False, "counts": counts, "seconds": elapsed}
