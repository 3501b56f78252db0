"""How the work grows: the demo city at 1×, 10× and 100×, and a province the size of Shandong.

Each rung gets the same four measurements:

* Coverage: ``geo.coverage.covered_mask`` for every layer on the rung's
  lattice (pure arrays), median of ``--runs``; with the lattice's size.
* ETL: every layer's facilities written as files (CSV for point layers,
  GeoJSON for polygon layers, WGS-84) and loaded with the real loader into
  the rung's own database, in one child process: its wall time and peak
  memory (RSS).
* Nearest: ``services.nearest.nearest`` (all layers, k=5) for ``--points``
  random positions inside the rung, in process after a warm-up: p50 and p99.
* Peak memory of this process after the rung (the lattice and coverage).

The demo rungs multiply facilities and the grid density as ``flask etl demo
--scale`` does (250 m cells at 1×, 79 m at 10×, 25 m at 100×). The province
(``demo.province``) is synthetic: 158,000 km², 101 million people, 16 cities,
a 100 m lattice (about 16 million cells) and about 70,000 facilities.

    python -m bench.bench_scaling [--scales 1,10,100] [--province] [--json PATH]
    python -m bench.bench_scaling --load-files DIR      (the ETL child: loads DIR into DATABASE_URL)
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import text

from bench.bench_coverage import demo_city, ours
from bench.common import PY, bench_url, median_of, run_measured, write_json
from db import make_engine
from demo import build_demo_city
from demo.province import AREA_KM2, CITIES, POPULATION, Province, make_province
from etl.boundaries import read_districts
from geo.coverage import covered_mask
from geo.crs import to_metric
from layers import LAYER_KEYS, LAYERS
from services import nearest
from services.loading import load_file, write_districts


# ------------------------------------------------------------------ files and the ETL child
def write_layer_files(facilities, folder: Path) -> list[tuple[Path, str]]:
    """One file per layer (CSV of lon/lat for points, GeoJSON for polygons); ``(path, layer)`` pairs."""
    out = []
    for layer, part in facilities.groupby("layer"):
        if (part.geom_type == "Point").all():
            path = folder / f"{layer}.csv"
            capacity = part["capacity"] if "capacity" in part else [None] * len(part)
            with path.open("w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(["编号", "名称", "容量", "经度", "纬度"])
                for sid, name, cap, x, y in zip(part["source_id"], part["name"], capacity, part.geometry.x,
                                                part.geometry.y, strict=True):
                    w.writerow([sid, name, "" if cap is None or cap != cap else int(cap), f"{x:.7f}", f"{y:.7f}"])
        else:
            path = folder / f"{layer}.geojson"
            part[["source_id", "name", "geometry"]].rename(columns={"source_id": "编号", "name": "名称"}).to_file(
                path, driver="GeoJSON")
        out.append((path, str(layer)))
    return out


def load_folder(folder: Path, peak_file: Path | None = None) -> int:
    """The ETL child: load every file of ``folder`` (named ``<layer>.csv|geojson``) into DATABASE_URL.

    With ``peak_file``, its own peak RSS (MiB) is written there: ``VmHWM`` of its own address space.
    The rusage of a child started by ``subprocess`` is no use here: Linux carries the parent's peak
    over into it at ``exec``, so it read the benchmark's own peak (lattices of millions of cells).
    """
    engine = make_engine(os.environ["DATABASE_URL"])
    loaded = 0
    for path in sorted(folder.iterdir()):
        result = load_file(engine, path, path.stem, crs="wgs84", accept_partial=True)
        loaded += len(result.accepted)
    engine.dispose()
    if peak_file is not None:
        peak_file.write_text(str(_own_peak_mib()), encoding="utf-8")
    print(loaded)
    return 0


def _own_peak_mib() -> float:
    """Peak RSS of this process's own address space (``VmHWM``, MiB)."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024.0, 1)
    raise RuntimeError("no VmHWM in /proc/self/status")


def etl_measured(url: str, files_folder: Path) -> dict:
    """Load the folder in a child process: wall seconds and peak RSS (MiB), and rows now in the database."""
    with make_engine(url).begin() as conn:
        conn.execute(text("TRUNCATE facility, load_run, load_reject, change_log RESTART IDENTITY CASCADE"))
    with tempfile.TemporaryDirectory(prefix="minsheng-peak-") as tmp:
        peak_file = Path(tmp) / "peak"
        seconds, _ = run_measured([PY, "-m", "bench.bench_scaling", "--load-files", str(files_folder),
                                   "--peak-file", str(peak_file)], env=dict(os.environ, DATABASE_URL=url))
        rss = float(peak_file.read_text(encoding="utf-8"))
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM facility")).scalar_one()
    engine.dispose()
    return {"etl_s": round(seconds, 1), "etl_peak_rss_mib": round(rss, 1), "facilities_in_db": int(rows)}


# ------------------------------------------------------------------ nearest
def nearest_ms(url: str, bounds: tuple[float, float, float, float], points: int) -> dict:
    """p50/p99 of ``services.nearest.nearest`` (all layers, k=5) at random positions within ``bounds``."""
    engine = make_engine(url)
    rng = np.random.default_rng(5)
    lon = rng.uniform(bounds[0], bounds[2], points)
    lat = rng.uniform(bounds[1], bounds[3], points)

    def call(x: float, y: float) -> None:
        nearest.nearest(engine, float(x), float(y), layers=list(LAYER_KEYS), k=5)

    for i in range(min(20, points)):
        call(lon[i], lat[i])
    times = []
    for x, y in zip(lon, lat, strict=True):
        t = time.perf_counter()
        call(x, y)
        times.append((time.perf_counter() - t) * 1000)
    engine.dispose()
    return {"nearest_p50_ms": round(statistics.median(times), 3),
            "nearest_p99_ms": round(float(np.percentile(times, 99)), 3)}


def _peak_rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)


# ------------------------------------------------------------------ the rungs
def city_rung(scale: float, runs: int, points: int) -> dict:
    row = {"rung": f"{scale:g}× demo city", **_city_coverage(scale, runs)}
    url = bench_url(f"minsheng_bench_x{int(scale)}")
    districts = read_districts()
    write_districts(make_engine(url), districts)
    facilities = build_demo_city(districts, resolution_m=250.0 * scale ** 0.5, scale=scale).facilities
    with tempfile.TemporaryDirectory(prefix="minsheng-scaling-") as tmp:
        write_layer_files(facilities, Path(tmp))
        row.update(etl_measured(url, Path(tmp)))
    row.update(nearest_ms(url, (117.0, 34.5, 117.8, 35.25), points))
    row["peak_rss_mib"] = _peak_rss_mib()
    return row


def _city_coverage(scale: float, runs: int) -> dict:
    city = demo_city(resolution_m=250.0, scale=scale)
    seconds, _ = median_of(lambda: ours(city), runs)
    return {"cells": int(len(city["xy"])), "facilities": int(sum(len(f) for f in city["facilities"].values())),
            "coverage_s": round(seconds, 3)}


def province_rung(runs: int, points: int) -> dict:
    started = time.perf_counter()
    demo_counts = build_demo_city(read_districts(), resolution_m=1000.0).facilities.groupby("layer").size()
    province = make_province(LAYERS, demo_counts.to_dict())
    row = {"rung": f"province ({AREA_KM2:,.0f} km², {POPULATION / 1e6:.0f} M people, {CITIES} cities, "
                   f"{province.cell_m:g} m)", "cells": int(len(province.xy)),
           "facilities": int(len(province.facilities)), "build_s": round(time.perf_counter() - started, 1),
           "coverage_s": round(_province_coverage(province, runs), 2)}
    url = bench_url("minsheng_bench_province")
    write_districts(make_engine(url), province.districts)
    west, south, east, north = (float(v) for v in province.districts.total_bounds)
    with tempfile.TemporaryDirectory(prefix="minsheng-scaling-") as tmp:
        write_layer_files(province.facilities, Path(tmp))
        row.update(etl_measured(url, Path(tmp)))
    row.update(nearest_ms(url, (west, south, east, north), points))
    row["peak_rss_mib"] = _peak_rss_mib()
    return row


def _province_coverage(province: Province, runs: int) -> float:
    """Median seconds of ``covered_mask`` for every layer on the province's lattice."""
    facilities = province.facilities
    work = []
    for key in LAYER_KEYS:
        part = facilities[facilities["layer"] == key]
        if len(part):
            lon, lat = shapely.get_coordinates(shapely.point_on_surface(part.geometry.to_numpy())).T
            threshold = LAYERS[key].threshold
            radius = np.where(province.urban, threshold.urban_m, threshold.rural_m).astype(np.float32)
            work.append((np.column_stack(to_metric(lon, lat)), radius))

    def coverage() -> None:
        for fxy, radius in work:
            covered_mask(province.xy, fxy, radius)

    seconds, _ = median_of(coverage, runs)
    return seconds


def run(scales: list[float], runs: int, points: int, province: bool) -> dict:
    rows = []
    for scale in scales:
        rows.append(city_rung(scale, runs, points))
        print(f"[scaling] {rows[-1]}", file=sys.stderr, flush=True)
    if province:
        rows.append(province_rung(max(1, runs // 3), points))
        print(f"[scaling] {rows[-1]}", file=sys.stderr, flush=True)
    base = rows[0]
    for row in rows:
        row["coverage_growth"] = round(row["coverage_s"] / base["coverage_s"], 1)
        row["nearest_growth"] = round(row["nearest_p50_ms"] / base["nearest_p50_ms"], 2)
    return {"task": "Cost as work grows: coverage, ETL and nearest from the demo city to a province", "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,10,100")
    parser.add_argument("--province", action="store_true", help="add the Shandong-sized rung")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--load-files", metavar="DIR", help=argparse.SUPPRESS)
    parser.add_argument("--peak-file", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_files:
        return load_folder(Path(args.load_files), Path(args.peak_file) if args.peak_file else None)
    scales = [float(s) for s in args.scales.split(",") if s]
    write_json(run(scales, args.runs, args.points, args.province), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
