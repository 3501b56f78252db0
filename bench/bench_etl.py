"""Benchmark: loading 1,000,000 facility points from CSV, ours against ogr2ogr.

Same file, same PostGIS, same run. Ours = ``flask etl load`` (GCJ-02 → WGS-84
conversion, validation against the city polygon, district assignment, one
all or nothing; a million rows into an emptied layer are written to a fresh
partition, committed, indexed two builds at a time and swapped in, see
``docs/loading.md``). Reference = ``ogr2ogr -f PostgreSQL`` loading the
file as-is into its own table (no conversion, no validation). A second
reference, ``ogr2ogr -append`` into a table that carries the indexes the
service needs (trigram GIN on name and address, GiST, unique id), shows how
much of the gap is index upkeep that search and nearest depend on. Ours and
ogr2ogr take turns ``--runs`` times after a warm-up, each after a CHECKPOINT
(so neither pays for writing out the other's pages); medians are reported with
the peak memory of our process. The indexed reference runs once, after them
(about five minutes).

With ``--xlsx``, it measures instead the same rows as an .xlsx workbook
against the CSV (``--dry-run`` loads of both, same run): the workbook is
read streaming, so its peak memory must stay under 1 GB at any size; its
time is given as a ratio to the CSV's.

    python -m bench.bench_etl [--rows 1000000] [--runs 3] [--skip-indexed] [--json PATH]
    python -m bench.bench_etl --xlsx [--rows 200000] [--runs 1] [--json PATH]
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import shapely
from openpyxl import Workbook
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bench.common import PY, bench_url, run_measured, write_json
from db import make_engine
from etl.boundaries import read_districts
from geo.crs import wgs84_to_gcj02
from services.loading import load_districts

#: Goal: our load (converted, validated, indexed, swapped in) at most this many times bare ogr2ogr.
GOAL_RATIO = 3.0


def make_csv(path: Path, rows: int, seed: int = 7) -> None:
    """Points inside the city, in GCJ-02, with Chinese names, as agencies send them."""
    city = shapely.union_all(read_districts().geometry.values)
    shapely.prepare(city)
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = city.bounds
    lon = np.empty(0)
    lat = np.empty(0)
    while len(lon) < rows:
        x = rng.uniform(minx, maxx, rows)
        y = rng.uniform(miny, maxy, rows)
        inside = shapely.contains_xy(city, x, y)
        lon = np.concatenate([lon, x[inside]])
        lat = np.concatenate([lat, y[inside]])
    glon, glat = wgs84_to_gcj02(lon[:rows], lat[:rows])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["编号", "名称", "地址", "经度", "纬度"])
        for i in range(rows):
            w.writerow([f"B{i:07d}", f"示例网点{i}", f"枣庄市示例路{i}号", f"{glon[i]:.6f}", f"{glat[i]:.6f}"])


def make_xlsx(csv_path: Path, xlsx_path: Path) -> None:
    """The CSV's rows as a one-sheet workbook (numbers as numbers, as Excel keeps them)."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet("设施")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        sheet.append(next(reader))
        for sid, name, address, lon, lat in reader:
            sheet.append([sid, name, address, float(lon), float(lat)])
    book.save(xlsx_path)


def run_xlsx(rows: int, runs: int) -> dict:
    """Dry-run loads of one set of rows as XLSX and as CSV: time ratio and peak memory of each."""
    url = bench_url("minsheng_bench_etl")
    engine = make_engine(url)
    load_districts(engine)
    engine.dispose()
    env = dict(os.environ, DATABASE_URL=url)
    times: dict[str, list[float]] = {"csv": [], "xlsx": []}
    peaks: dict[str, list[float]] = {"csv": [], "xlsx": []}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"csv": Path(tmp) / "facilities.csv", "xlsx": Path(tmp) / "facilities.xlsx"}
        make_csv(paths["csv"], rows)
        make_xlsx(paths["csv"], paths["xlsx"])
        for i in range(runs + 1):  # the first round is the warm-up
            for kind, path in paths.items():
                seconds, rss = run_measured([PY, "-m", "flask", "--app", "web", "etl", "load", str(path),
                                             "--layer", "service_office", "--crs", "gcj02", "--dry-run"], env=env)
                if i:
                    times[kind].append(seconds)
                    peaks[kind].append(rss)
        sizes = {kind: path.stat().st_size for kind, path in paths.items()}
    x, c = statistics.median(times["xlsx"]), statistics.median(times["csv"])
    return {
        "task": f"ETL: read and check {rows:,} points from XLSX (streamed) vs the same rows as CSV",
        "rows": rows, "ours_s": round(x, 2), "reference_s": round(c, 2), "reference": "the same rows as CSV",
        "ratio": round(x / c, 2), "goal": "XLSX peak memory < 1 GB (streamed); time as a ratio to CSV",
        "peak_rss_mib": round(max(peaks["xlsx"]), 1), "reference_peak_rss_mib": round(max(peaks["csv"]), 1),
        "file_bytes": sizes, "runs": times, "met": bool(max(peaks["xlsx"]) < 1024),
    }


def checkpoint(engine) -> None:
    """A CHECKPOINT where the role may run one (superuser or pg_checkpoint); elsewhere nothing."""
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text("CHECKPOINT"))
    except DBAPIError:
        pass


def _pg_dsn(url: str) -> str:
    u = make_url(url)
    return f"PG:host={u.host} port={u.port} dbname={u.database} user={u.username}"


def run(rows: int, runs: int, indexed: bool = True) -> dict:
    url = bench_url("minsheng_bench_etl")  # its own database: the runs delete a whole layer
    engine = make_engine(url)
    load_districts(engine)
    env = dict(os.environ, DATABASE_URL=url)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "facilities_1m.csv"
        make_csv(path, rows)

        def clear():
            with engine.begin() as conn:
                conn.execute(text("DELETE FROM facility WHERE layer = 'service_office'"))
                conn.execute(text("DROP TABLE IF EXISTS bench_ogr"))
                conn.execute(text("DROP TABLE IF EXISTS bench_ogr_indexed"))
                conn.execute(text('CREATE TABLE bench_ogr_indexed (ogc_fid serial PRIMARY KEY, "编号" varchar UNIQUE,'
                                  ' "名称" varchar, "地址" varchar, "经度" varchar, "纬度" varchar,'
                                  ' geom geometry(Point, 4326))'))
                conn.execute(text('CREATE INDEX ON bench_ogr_indexed USING gin ("名称" gin_trgm_ops)'))
                conn.execute(text('CREATE INDEX ON bench_ogr_indexed USING gin ("地址" gin_trgm_ops)'))
                conn.execute(text("CREATE INDEX ON bench_ogr_indexed USING gist (geom)"))
                conn.execute(text("DELETE FROM load_run"))
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(text("VACUUM facility"))

        ours_cmd = [PY, "-m", "flask", "--app", "web", "etl", "load", str(path), "--layer", "service_office",
                    "--crs", "gcj02"]
        ogr_cmd = ["ogr2ogr", "-f", "PostgreSQL", _pg_dsn(url), str(path), "-nln", "bench_ogr", "-overwrite",
                   "-oo", "X_POSSIBLE_NAMES=经度", "-oo", "Y_POSSIBLE_NAMES=纬度", "-a_srs", "EPSG:4326",
                   "-lco", "GEOMETRY_NAME=geom"]
        ogr_indexed_cmd = ["ogr2ogr", "-f", "PostgreSQL", _pg_dsn(url), str(path), "-nln", "bench_ogr_indexed",
                           "-append", "-oo", "X_POSSIBLE_NAMES=经度", "-oo", "Y_POSSIBLE_NAMES=纬度",
                           "-a_srs", "EPSG:4326"]
        def settled(cmd: list[str]) -> tuple[float, float]:
            """``cmd`` timed after a CHECKPOINT, so no run pays for writing out the pages of the one before."""
            checkpoint(engine)
            return run_measured(cmd, env=env)

        ours, ogr, ogr_idx, mem = [], [], [], []
        for i in range(runs + 1):  # the first round is the warm-up
            clear()
            t_ours, rss = settled(ours_cmd)
            with engine.connect() as conn:
                loaded = conn.execute(text("SELECT count(*) FROM facility WHERE layer = 'service_office'")).scalar()
            if loaded != rows:
                raise RuntimeError(f"ours loaded {loaded} of {rows} rows")
            t_ogr, _ = settled(ogr_cmd)
            print(f"[etl] round {i}: ours {t_ours:.1f} s ({rss:.0f} MiB), ogr2ogr {t_ogr:.1f} s",
                  file=sys.stderr, flush=True)
            if i:
                ours.append(t_ours)
                ogr.append(t_ogr)
                mem.append(rss)
        if indexed:  # after the rounds, once: five minutes a run, and only context for the ratio
            clear()
            ogr_idx.append(settled(ogr_indexed_cmd)[0])
            print(f"[etl] ogr2ogr into the indexed table {ogr_idx[0]:.1f} s", file=sys.stderr, flush=True)
        clear()
    engine.dispose()
    o, r = statistics.median(ours), statistics.median(ogr)
    ri = statistics.median(ogr_idx) if indexed else float("nan")
    return {
        "task": f"ETL: load {rows:,} CSV points (GCJ-02 → WGS-84, validated)",
        "rows": rows, "ours_s": round(o, 2), "reference_s": round(r, 2), "reference": "ogr2ogr -f PostgreSQL",
        "ratio": round(o / r, 2), "goal": f"≤ {GOAL_RATIO:g}× ogr2ogr; peak memory < 1 GB",
        "peak_rss_mib": round(max(mem), 1), "runs": {"ours": ours, "ogr2ogr": ogr, "ogr2ogr_indexed": ogr_idx},
        "reference_indexed_s": round(ri, 2) if indexed else None,
        "ratio_vs_indexed": round(o / ri, 2) if indexed else None,
        "met": bool(o / r <= GOAL_RATIO and max(mem) < 1024),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--xlsx", action="store_true", help="XLSX against the same rows as CSV (dry runs)")
    parser.add_argument("--skip-indexed", action="store_true",
                        help="leave out the second reference (ogr2ogr into an indexed table: minutes a run)")
    args = parser.parse_args(argv)
    result = run_xlsx(args.rows, args.runs) if args.xlsx else run(args.rows, args.runs, not args.skip_indexed)
    write_json(result, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
