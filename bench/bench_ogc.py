"""Benchmark: OGC API – Features, ours against pygeoapi serving the same table, in the same run.

A script, not a test. On the benchmark database (the demo city) it starts:

* **ours**: the app under gunicorn (``bench.common.start_gunicorn``);
* **pygeoapi** (PyPI), under gunicorn as well, with its PostgreSQL provider on
  the same ``facility`` table, configured by a file written here.

Then it times, taking turns, the median of ``--runs`` requests after a
warm-up, each on a kept-alive connection:

* a 1,000-item page of GeoJSON (ours: ``service_office``; pygeoapi: the
  ``facility`` table filtered to the same layer);
* a CQL2-text filtered query (the offices of one district), checked to
  match the same number of features on both.

The ratio is ours / pygeoapi (goal: at most 1). A third case times the
population tile at zoom 8 over Zaozhuang as served (cells merged at low
zoom) against the same tile drawn cell by cell as before (``db.tiles.mvt``),
in process, with both sizes (goal: under 200 ms and 500 kB).

    python -m bench.bench_ogc [--runs 30] [--json bench/out/ogc.json]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

from bench.common import start_gunicorn, stop_server, write_json
from db import libpq_url, make_engine
from db import tiles as db_tiles
from db.feature_sources import POPULATION_SOURCE
from services import tiles

DISTRICT = "370402"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pygeoapi_config(url: str, port: int) -> str:
    parts = urllib.parse.urlparse(libpq_url(url))
    data = {"host": parts.hostname, "port": parts.port or 5432, "dbname": parts.path.lstrip("/"),
            "user": parts.username or "postgres", "password": parts.password or ""}
    lines = [
        "server:", f"  bind: {{host: 127.0.0.1, port: {port}}}", f"  url: http://127.0.0.1:{port}",
        "  mimetype: application/json; charset=UTF-8", "  encoding: utf-8", "  languages: [en-US]",
        "  limits: {default_items: 100, max_items: 10000}",
        "  map: {url: 'https://tile.openstreetmap.org/{z}/{x}/{y}.png', attribution: OSM}",
        "logging: {level: ERROR}",
        "metadata:",
        "  identification: {title: bench, description: bench, keywords: [bench], keywords_type: theme,"
        " terms_of_service: none, url: 'http://127.0.0.1'}",
        "  license: {name: none, url: 'http://127.0.0.1'}", "  provider: {name: bench, url: 'http://127.0.0.1'}",
        "  contact: {name: bench, url: 'http://127.0.0.1', email: bench@example.org}",
        "resources:", "  facility:", "    type: collection", "    title: facility", "    description: facilities",
        "    keywords: [facility]",
        "    extents: {spatial: {bbox: [-180, -90, 180, 90], crs: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'}}",
        "    providers:", "      - type: feature", "        name: PostgreSQL",
        "        data: " + json.dumps(data), "        id_field: id", "        table: facility",
        "        geom_field: geom",
        # the columns our features carry (the table's second geometry column, point, is not served)
        "        properties: [layer, source_id, kind, name, address, phone, opening_hours, capacity, opened_on,"
        " status, district_adcode, synthetic, updated_at]",
    ]
    return "\n".join(lines) + "\n"


def start_pygeoapi(url: str, workdir: Path) -> tuple[subprocess.Popen, int]:
    """pygeoapi under gunicorn on a free loopback port, once its landing page answers."""
    port = _free_port()
    config = workdir / "pygeoapi.yml"
    config.write_text(_pygeoapi_config(url, port), encoding="utf-8")
    openapi = workdir / "openapi.yml"
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PYGEOAPI_CONFIG=str(config), PYGEOAPI_OPENAPI=str(openapi))
    made = subprocess.run([str(bindir / "pygeoapi"), "openapi", "generate", str(config), "--output-file",
                           str(openapi)], env=env, capture_output=True, text=True)
    if made.returncode != 0:
        raise RuntimeError(f"pygeoapi openapi generate failed: {(made.stderr or made.stdout)[-2000:]}")
    proc = subprocess.Popen([str(bindir / "gunicorn"), "--workers", "2", "--threads", "2", "--worker-class", "gthread",
                             "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "pygeoapi.flask_app:APP"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if _get(port, "/?f=json")[0] == 200:
                return proc, port
        except OSError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError(f"pygeoapi exited: {proc.stderr.read().decode(errors='replace')[-2000:]}")
    os.killpg(proc.pid, signal.SIGTERM)
    raise RuntimeError("pygeoapi did not answer within 90 s")


def _get(port: int, path: str, conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", path, headers={"Accept": "application/geo+json"})
    resp = conn.getresponse()
    body = resp.read()
    if own:
        conn.close()
    return resp.status, body


def _timed(port: int, path: str, runs: int) -> tuple[float, int]:
    """Median seconds of ``runs`` requests after one warm-up, and the features in the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    status, body = _get(port, path, conn)
    if status != 200:
        raise RuntimeError(f"{path} -> {status}: {body[:300]!r}")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        _get(port, path, conn)
        times.append(time.perf_counter() - start)
    conn.close()
    return statistics.median(times), len(json.loads(body)["features"])


def tile_case(url: str, runs: int) -> dict:
    """The zoom-8 population tile over Zaozhuang: served (merged) against drawn cell by cell."""
    engine = make_engine(url)
    z, x, y = 8, 211, 101
    try:
        def served() -> bytes:
            return tiles.tile(engine, "population", z, x, y)

        def every_cell() -> bytes:
            with engine.connect() as conn:
                return db_tiles.mvt(conn, POPULATION_SOURCE, z, x, y)

        out = {}
        for name, make in (("ours", served), ("cell_by_cell", every_cell)):
            data = make()
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                make()
                times.append(time.perf_counter() - start)
            out[name] = {"ms": round(statistics.median(times) * 1000, 2), "bytes": len(data)}
    finally:
        engine.dispose()
    ratio = out["ours"]["ms"] / out["cell_by_cell"]["ms"]
    return {**out, "ratio": round(ratio, 3), "met": out["ours"]["ms"] < 200 and out["ours"]["bytes"] < 500 * 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL") or os.environ["TEST_DATABASE_URL"]
    filter_ours = urllib.parse.quote(f"district = '{DISTRICT}'")
    filter_theirs = urllib.parse.quote(f"layer = 'service_office' AND district_adcode = '{DISTRICT}'")
    # pygeoapi 0.21 names CQL2 text "cql-text" in filter-lang; the filter itself is the same CQL2.
    cases = {
        "page_1000": ("/ogc/collections/service_office/items?limit=1000",
                      "/collections/facility/items?f=json&limit=1000&layer=service_office"),
        "cql2_filter": (f"/ogc/collections/service_office/items?limit=1000&filter={filter_ours}",
                        f"/collections/facility/items?f=json&limit=1000&filter-lang=cql-text&filter={filter_theirs}"),
    }
    with tempfile.TemporaryDirectory(prefix="minsheng-bench-ogc-") as tmp:
        theirs_proc, theirs_port = start_pygeoapi(url, Path(tmp))
        try:
            ours_proc, ours_port = start_gunicorn(url, workers=2, threads=2)
        except BaseException:
            stop_server(theirs_proc)
            raise
        try:
            out = {}
            for name, (ours_path, theirs_path) in cases.items():
                ours_s, ours_n = _timed(ours_port, ours_path, args.runs)
                theirs_s, theirs_n = _timed(theirs_port, theirs_path, args.runs)
                out[name] = {"ours_ms": round(ours_s * 1000, 2), "pygeoapi_ms": round(theirs_s * 1000, 2),
                             "features": ours_n, "pygeoapi_features": theirs_n,
                             "ratio": round(ours_s / theirs_s, 3), "same_answer": ours_n == theirs_n}
        finally:
            stop_server(ours_proc)
            stop_server(theirs_proc)
    met = all(c["ratio"] <= 1 and c["same_answer"] for c in out.values())
    tile = tile_case(url, max(3, args.runs // 3))
    write_json({"task": "OGC API – Features: 1,000-item page and a CQL2 filter, ours against pygeoapi",
                "runs": args.runs, "cases": out, "goal": "ours ≤ 1× pygeoapi on both; same features", "met": met,
                "tile_z8": tile}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
