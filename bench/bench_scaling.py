"""How coverage and nearest grow with the city: 1×, 10× and 100× the demo's size.

``scale`` multiplies the facilities and the density of the demand grid, as
``flask etl demo --scale`` does (250 m grid at 1×, 79 m at 10×, 25 m at 100×).

* Coverage: ``geo.coverage.covered_mask`` for all five layers on the scaled
  grid (pure arrays). Median of ``--runs``.
* Nearest: the facilities of the scaled city loaded into their own PostGIS
  database; the median latency of ``services.nearest.nearest`` (both KNN
  rounds and the geodesic ranking, one connection) for ``--points`` random
  positions (all layers, k=5), in process, after a warm-up.

    python -m bench.bench_scaling [--scales 1,10,100] [--json PATH]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from sqlalchemy import text

from bench.bench_coverage import demo_city, ours
from bench.common import bench_url, median_of, write_json
from db import make_engine
from layers import LAYER_KEYS
from services import nearest
from services.loading import load_demo


def coverage_seconds(scale: float, runs: int) -> dict:
    city = demo_city(resolution_m=250.0, scale=scale)
    seconds, _ = median_of(lambda: ours(city), runs)
    return {"cells": int(len(city["xy"])), "facilities": int(sum(len(f) for f in city["facilities"].values())),
            "coverage_s": round(seconds, 4)}


def nearest_ms(scale: float, points: int) -> dict:
    url = bench_url(f"minsheng_bench_x{int(scale)}")
    engine = make_engine(url)
    started = time.perf_counter()
    # Facilities scale; the stored grid stays at the demo's 250 m (nearest does not read it).
    load_demo(engine, scale=scale, resolution_m=250.0 * scale ** 0.5, echo=lambda *_: None)
    load_s = time.perf_counter() - started
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM facility WHERE status = 'active'")).scalar_one()
    rng = np.random.default_rng(5)
    lon = rng.uniform(117.0, 117.8, points)
    lat = rng.uniform(34.5, 35.25, points)

    def call(x: float, y: float) -> nearest.NearestResult:
        return nearest.nearest(engine, float(x), float(y), layers=list(LAYER_KEYS), k=5)

    for i in range(min(20, points)):
        call(lon[i], lat[i])
    times = []
    for x, y in zip(lon, lat, strict=True):
        t = time.perf_counter()
        call(x, y)
        times.append((time.perf_counter() - t) * 1000)
    engine.dispose()
    return {"facilities_in_db": int(n), "nearest_p50_ms": round(statistics.median(times), 3),
            "nearest_p99_ms": round(float(np.percentile(times, 99)), 3), "demo_load_s": round(load_s, 1)}


def run(scales: list[float], runs: int, points: int) -> dict:
    rows = []
    for scale in scales:
        row = {"scale": scale}
        row.update(coverage_seconds(scale, runs))
        row.update(nearest_ms(scale, points))
        rows.append(row)
    base = rows[0]
    for row in rows:
        row["coverage_growth"] = round(row["coverage_s"] / base["coverage_s"], 2)
        row["nearest_growth"] = round(row["nearest_p50_ms"] / base["nearest_p50_ms"], 2)
    return {"task": "Cost as work grows: coverage and nearest at 1×, 10×, 100× the demo", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10,100")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    write_json(run([float(s) for s in args.scales.split(",")], args.runs, args.points), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
