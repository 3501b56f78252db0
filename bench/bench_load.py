"""Load test: the app under gunicorn on loopback, 64 connections, mixed requests.

    python -m bench.bench_load [--seconds 60] [--connections 64] [--json PATH]

Starts gunicorn on 127.0.0.1 (a free port; nothing leaves the machine), then

1. warm-up: 5 s of the mix (not counted);
2. reference: ``--ref-seconds`` of ``/healthz`` (one ``SELECT 1``) at the same
   concurrency, so figures can be read relative to this machine;
3. the mix for ``--seconds``: nearest, search, coverage, export and pages,
   counted in 10-second windows; p50/p99 are reported over the whole run and
   as the median of the windows.

Bounded: at most ``--max-requests`` in total, and every phase stops at its
deadline. Exit status 1 if any response was a 5xx (or a connection failed).
The database is ``DATABASE_URL`` (else the private cluster's demo database);
the demo city is loaded into it when missing.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import start_gunicorn, stop_gunicorn  # noqa: E402
from db import make_engine, migrate  # noqa: E402
from services.loading import load_demo  # noqa: E402

#: Zaozhuang's central area in WGS-84 degrees (nearest queries land here).
CITY_BOX = (117.10, 34.60, 117.75, 35.25)
SEARCH_TERMS = ["便民", "服务", "警务", "卫生室", "公园", "停车", "村", "中心", "XSS", "' OR 1=1 --"]
LAYERS = ["service_office", "police_station", "pocket_park", "parking", "village_clinic"]
DISTRICTS = ["370402", "370403", "370404", "370405", "370406", "370481"]


def mix_request(rng: random.Random) -> tuple[str, str]:
    """One (kind, path) of the mix: nearest 40%, search 25%, coverage 10%, export 10%, page 15%."""
    roll = rng.random()
    if roll < 0.40:
        lon, lat = rng.uniform(CITY_BOX[0], CITY_BOX[2]), rng.uniform(CITY_BOX[1], CITY_BOX[3])
        query = {"lon": f"{lon:.6f}", "lat": f"{lat:.6f}", "layer": rng.choice(LAYERS + ["all"]),
                 "k": str(rng.randint(1, 5))}
        return "nearest", "/api/nearest?" + urllib.parse.urlencode(query)
    if roll < 0.65:
        return "search", "/api/search?" + urllib.parse.urlencode({"q": rng.choice(SEARCH_TERMS), "limit": "20"})
    if roll < 0.75:
        query = {"layer": rng.choice(LAYERS), "district": rng.choice(DISTRICTS)}
        return "coverage", "/api/coverage?" + urllib.parse.urlencode(query)
    if roll < 0.85:
        return "export", rng.choice(["/export/police_station.geojson", "/export/parking.csv",
                                     "/export/pocket_park.geojson", "/export/police_station.csv"])
    return "page", rng.choice(["/", "/?lang=en", "/planner"])


class Recorder:
    """Thread-safe latency and status store."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[tuple[float, str, int, float]] = []  # (t_end, kind, status, seconds)

    def add(self, kind: str, status: int, seconds: float) -> None:
        with self.lock:
            self.rows.append((time.monotonic(), kind, status, seconds))


def worker(port: int, deadline: float, budget: list[int], rec: Recorder, seed: int, fixed: str | None) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.monotonic() < deadline:
        with rec.lock:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        kind, path = ("reference", fixed) if fixed else mix_request(rng)
        start = time.perf_counter()
        try:
            conn.request("GET", path, headers={"Accept": "text/html" if kind == "page" else "application/json"})
            res = conn.getresponse()
            res.read()
            status = res.status
            if res.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        except (OSError, http.client.HTTPException):
            status = 599  # a failed connection counts as a server failure
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        rec.add(kind, status, time.perf_counter() - start)
    conn.close()


def run_phase(port: int, seconds: float, connections: int, max_requests: int, seed: int,
              fixed: str | None = None) -> tuple[Recorder, float, float]:
    rec = Recorder()
    budget = [max_requests]
    start = time.monotonic()
    deadline = start + seconds
    threads = [threading.Thread(target=worker, args=(port, deadline, budget, rec, seed * 1000 + i, fixed))
               for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 120)
    return rec, start, time.monotonic()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summarise(rec: Recorder, start: float, end: float, window: float = 10.0) -> dict:
    lat = [r[3] for r in rec.rows]
    by_kind: dict[str, dict] = {}
    for kind in sorted({r[1] for r in rec.rows}):
        mine = [r for r in rec.rows if r[1] == kind]
        by_kind[kind] = {"requests": len(mine), "p50_ms": round(pct([r[3] for r in mine], 50) * 1000, 1),
                         "p99_ms": round(pct([r[3] for r in mine], 99) * 1000, 1),
                         "status": {str(s): sum(1 for r in mine if r[2] == s) for s in sorted({r[2] for r in mine})}}
    windows = []
    t = start
    while t < end - 1e-9:
        mine = [r[3] for r in rec.rows if t <= r[0] < t + window]
        if mine:
            windows.append({"p50_ms": pct(mine, 50) * 1000, "p99_ms": pct(mine, 99) * 1000, "requests": len(mine)})
        t += window
    return {
        "requests": len(rec.rows), "seconds": round(end - start, 2),
        "throughput_rps": round(len(rec.rows) / max(end - start, 1e-9), 1),
        "p50_ms": round(pct(lat, 50) * 1000, 1), "p99_ms": round(pct(lat, 99) * 1000, 1),
        "windows": len(windows),
        "median_window_p50_ms": round(statistics.median(w["p50_ms"] for w in windows), 1) if windows else None,
        "median_window_p99_ms": round(statistics.median(w["p99_ms"] for w in windows), 1) if windows else None,
        "status_5xx": sum(1 for r in rec.rows if r[2] >= 500),
        "status_4xx": sum(1 for r in rec.rows if 400 <= r[2] < 500),
        "by_kind": by_kind,
    }


def database_url() -> str:
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "pgcluster.py"), "ensure", "--db", "minsheng"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def ensure_demo(url: str) -> None:
    migrate(url)
    engine = make_engine(url)
    load_demo(engine, echo=lambda *_: None)
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the measured mix (s)")
    ap.add_argument("--ref-seconds", type=float, default=10.0, help="length of the /healthz reference (s)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    ap.add_argument("--threads", type=int, default=8, help="gunicorn threads per worker")
    ap.add_argument("--max-requests", type=int, default=300_000, help="upper bound on requests per phase")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    if not 1 <= args.connections <= 256 or not 1 <= args.seconds <= 600:
        ap.error("--connections must be 1..256 and --seconds 1..600")

    url = database_url()
    ensure_demo(url)
    proc, port = start_gunicorn(url, args.workers, args.threads)
    try:
        run_phase(port, 5.0, args.connections, args.max_requests, args.seed + 1)  # warm-up
        ref = summarise(*run_phase(port, args.ref_seconds, args.connections, args.max_requests, args.seed + 2,
                                   fixed="/healthz"))
        mix = summarise(*run_phase(port, args.seconds, args.connections, args.max_requests, args.seed))
    finally:
        stop_gunicorn(proc)
    result = {
        "benchmark": "load", "host": "127.0.0.1 (loopback only)",
        "server": f"gunicorn {args.workers} workers x {args.threads} threads",
        "connections": args.connections, "mix": "nearest 40%, search 25%, coverage 10%, export 10%, pages 15%",
        "reference_healthz": {k: ref[k] for k in ("requests", "throughput_rps", "p50_ms", "p99_ms", "status_5xx")},
        "load": mix,
        "p99_over_reference_p99": round(mix["p99_ms"] / ref["p99_ms"], 2) if ref["p99_ms"] else None,
        "pass": mix["status_5xx"] == 0 and ref["status_5xx"] == 0,
    }
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
