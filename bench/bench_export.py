"""Benchmark: GeoJSON export of a 1,000,000-feature layer, ours against ogr2ogr.

A script, not a test. In its own database (``minsheng_bench_export``, next to
the test database; never the demo's) it loads the real districts and inserts
synthetic facilities with ``generate_series``: 1,000,000 ``service_office``
rows and 100,000 ``police_station`` rows, random points over Zaozhuang. Then,
in the same run:

* **ours**: :func:`services.exporting.write_file` (the same generator that streams
  ``/export/<layer>.geojson``) writing the layer to a file, in a child process;
* **ogr2ogr (table)**: ``ogr2ogr -f GeoJSON out.geojson PG:<dsn> facility
  -where "layer = '…'"`` — GDAL exporting the same table;
* **ogr2ogr (same columns)**: ``ogr2ogr`` with ``-sql`` selecting exactly the
  columns and district join that our export writes.

Each is timed as the median of ``--runs`` runs after a warm-up, taking turns
so that load from other processes falls on all three. Peak memory is the
child's peak resident set (VmHWM, sampled), at 100,000 and at 1,000,000 features: it should
stay flat because rows come through a server-side cursor.

Run from the repository root::

    python bench/bench_export.py [--rows 1000000] [--runs 3] [--json bench/bench_export.json] [--quick]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from db import libpq_url, make_engine, migrate, sa_url  # noqa: E402
from db.features import source_for  # noqa: E402
from services.exporting import write_file  # noqa: E402
from services.loading import load_districts  # noqa: E402

BENCH_DB = "minsheng_bench_export"
BIG, SMALL = "service_office", "police_station"


def bench_url() -> str:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        base = subprocess.run([sys.executable, str(ROOT / "scripts" / "pgcluster.py"), "ensure", "--db",
                               BENCH_DB], capture_output=True, text=True, check=True).stdout.strip()
    server = base.rsplit("/", 1)[0]
    admin = create_engine(sa_url(server + "/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BENCH_DB}).first():
            conn.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    url = f"{server}/{BENCH_DB}"
    migrate(url)
    return url


def fill(url: str, layer: str, rows: int) -> float:
    """Make ``layer`` hold exactly ``rows`` synthetic points; return the seconds spent (0 if already so)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        have_districts = conn.execute(text("SELECT count(*) FROM district")).scalar_one()
        have = conn.execute(text("SELECT count(*) FROM facility WHERE layer = :l"), {"l": layer}).scalar_one()
    if have_districts < 6:
        load_districts(engine)
    if have == rows:
        engine.dispose()
        return 0.0
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM facility WHERE layer = :l"), {"l": layer})
        conn.execute(text("""
            WITH g AS (SELECT i, 116.82 + ((i * 7919) % 98000) / 100000.0 AS lon,
                              34.47 + ((i * 104729) % 83000) / 100000.0 AS lat
                       FROM generate_series(1::bigint, :n) i)
            INSERT INTO facility (layer, source_id, kind, name, address, phone, opening_hours, capacity,
                                  opened_on, district_adcode, geom, point, synthetic)
            SELECT :l, 'BENCH-' || i, :l, '示例网点' || i, '山东省枣庄市示例路' || i || '号（合成）',
                   '0632-' || lpad((i % 10000000)::text, 7, '0'), '周一至周五 09:00-17:00', NULL,
                   DATE '2016-01-01' + (i % 2300)::int,
                   (ARRAY['370402','370403','370404','370405','370406','370481'])[1 + (i % 6)::int],
                   ST_SetSRID(ST_MakePoint(lon, lat), 4326), ST_SetSRID(ST_MakePoint(lon, lat), 4326), true
            FROM g"""), {"n": rows, "l": layer})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE facility"))
    engine.dispose()
    return time.perf_counter() - start


def _hwm_mib(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) so far, in MiB, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run(argv: list[str], out: Path) -> tuple[float, float]:
    """Run a command writing ``out`` (removed first); return (seconds, peak RSS of the child in MiB).

    The peak is the child's own VmHWM, sampled every 20 ms until it exits (``wait4``'s
    ``ru_maxrss`` would count the parent's memory image copied at fork).
    """
    out.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _hwm_mib(proc.pid) or 0.0)
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed: {err[-2000:]}")
    return elapsed, peak


def ours_cmd(url: str, layer: str, out: Path) -> list[str]:
    return [sys.executable, __file__, "--child", url, layer, str(out)]


def ogr_table_cmd(url: str, layer: str, out: Path) -> list[str]:
    return ["ogr2ogr", "-f", "GeoJSON", str(out), "PG:" + libpq_url(url), "facility",
            "-where", f"layer = '{layer}' AND status = 'active'", "-lco", "COORDINATE_PRECISION=7"]


def ogr_sql_cmd(url: str, layer: str, out: Path) -> list[str]:
    src = source_for(layer)
    cols = ", ".join(f"{expr} AS {name}" for name, expr in src.props)
    sql = (f"SELECT {cols}, {src.geom_sql} AS geom FROM {src.from_sql}"
           f" WHERE t.layer = '{layer}' AND t.status = 'active' ORDER BY t.id")
    return ["ogr2ogr", "-f", "GeoJSON", str(out), "PG:" + libpq_url(url), "-sql", sql,
            "-lco", "COORDINATE_PRECISION=7"]


def count_features(path: Path) -> int:
    """Our files hold one feature per line between the header and the closing line."""
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.startswith(b'{"type" : "Feature"'))


def child(url: str, layer: str, out: str) -> None:
    engine = make_engine(url)
    write_file(engine, layer, "geojson", Path(out))
    engine.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="features in the big layer")
    ap.add_argument("--small-rows", type=int, default=100_000, help="features in the small layer (memory check)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the result here")
    ap.add_argument("--quick", action="store_true", help="100,000 and 10,000 features, one run (a smoke test)")
    ap.add_argument("--child", nargs=3, metavar=("URL", "LAYER", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    if args.quick:
        args.rows, args.small_rows, args.runs = 100_000, 10_000, 1
    url = bench_url()
    load_s = {BIG: round(fill(url, BIG, args.rows), 1), SMALL: round(fill(url, SMALL, args.small_rows), 1)}
    with tempfile.TemporaryDirectory(prefix="minsheng-bench-export-") as tmp:
        tmpd = Path(tmp)
        makers = {"ours": ours_cmd, "ogr2ogr_table": ogr_table_cmd, "ogr2ogr_same_columns": ogr_sql_cmd}
        times: dict[str, list[float]] = {k: [] for k in makers}
        rss: dict[str, list[float]] = {k: [] for k in makers}
        sizes: dict[str, int] = {}
        for name, make in makers.items():  # warm-up (also fills the page cache)
            run(make(url, BIG, tmpd / f"{name}.geojson"), tmpd / f"{name}.geojson")
        n_written = count_features(tmpd / "ours.geojson")
        for _ in range(args.runs):
            for name, make in makers.items():
                out = tmpd / f"{name}.geojson"
                seconds, peak = run(make(url, BIG, out), out)
                times[name].append(seconds)
                rss[name].append(peak)
                sizes[name] = out.stat().st_size
        small_s, small_rss = run(ours_cmd(url, SMALL, tmpd / "small.geojson"), tmpd / "small.geojson")
        small_n = count_features(tmpd / "small.geojson")

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["ours"] / med["ogr2ogr_table"]
    peak_small, peak_big = small_rss, statistics.median(rss["ours"])
    flat = peak_big <= 1.5 * peak_small + 20
    result = {
        # the keys `make bench` (bench/run.py) puts in its table
        "task": f"Export: {args.rows:,}-feature layer as GeoJSON (streamed)",
        "ours_s": round(med["ours"], 2),
        "reference_s": round(med["ogr2ogr_table"], 2),
        "ours_text": f"{med['ours']:.2f} s, {args.rows / med['ours']:,.0f} features/s; peak "
                     f"{peak_small:.0f} MiB at {args.small_rows:,} → {peak_big:.0f} MiB at {args.rows:,}",
        "reference_text": f"ogr2ogr {med['ogr2ogr_table']:.2f} s (same table); "
                          f"{med['ogr2ogr_same_columns']:.2f} s (same columns via -sql)",
        "ratio": round(ratio, 3),
        "met": ratio <= 1.5 and flat,
        "benchmark": "GeoJSON export of one layer: ours (server-side cursor, features built by PostGIS, "
                     "streamed) vs ogr2ogr in the same run",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "features": {"big": args.rows, "written": n_written, "small": args.small_rows, "small_written": small_n},
        "load_seconds": load_s,
        "runs": args.runs,
        "seconds_median": {k: round(v, 2) for k, v in med.items()},
        "seconds_all": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "features_per_second_ours": round(args.rows / med["ours"]),
        "ratio_vs_ogr2ogr_table": round(med["ours"] / med["ogr2ogr_table"], 2),
        "ratio_vs_ogr2ogr_same_columns": round(med["ours"] / med["ogr2ogr_same_columns"], 2),
        "goal": "≤ 1.5× ogr2ogr's time; peak memory flat as the layer grows",
        "output_mib": {k: round(v / 2**20, 1) for k, v in sizes.items()},
        "peak_rss_mib": {
            f"ours_{args.small_rows}": round(peak_small, 1),
            f"ours_{args.rows}": round(peak_big, 1),
            f"ogr2ogr_table_{args.rows}": round(statistics.median(rss["ogr2ogr_table"]), 1),
        },
        "memory_flat": flat,
    }
    text_out = json.dumps(result, indent=2, ensure_ascii=False)
    print(text_out)
    if args.json:
        Path(args.json).write_text(text_out + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
