"""Load test: the app behind its serving front on loopback, 64 connections, mixed requests.

    python -m bench.bench_load [--seconds 60] [--connections 64] [--server front|gunicorn] [--json PATH]

Starts the front ``make demo`` starts (nginx before the light and the heavy
gunicorn lane, ``scripts/serve.py``) on 127.0.0.1 (a free port; nothing
leaves the machine), or with ``--server gunicorn`` one bare gunicorn (the
set-up before the front, for comparison), then

1. warm-up: 5 s of the mix (not counted);
2. reference: ``--ref-seconds`` of ``/healthz`` at the same concurrency;
3. the mix for ``--seconds``: nearest, search, coverage, export and pages.
   Goal: p99 of the light kinds (nearest, search, page) <= 10x the
   reference's p99, and no 5xx but the heavy lane's deliberate 503s (JSON
   with ``Retry-After``);
4. heavy in parallel: ``/api/nearest`` p99 at concurrency 4 alone, then again
   while 10 connections send heavy requests without pause (suggestions,
   coverage, file exports). Goal: under 10x the quiet p99;
5. slow clients: 200 connections sending headers a byte at a time and 16
   trickling a POST body, while ``/healthz`` and ``/api/nearest`` are probed.

It also records the slowest request and the workers' peak memory. Bounded:
at most ``--max-requests`` per phase, and every phase stops at its deadline.
Exit status 1 if any response was a 5xx other than a deliberate 503. The
database is ``DATABASE_URL`` (else the private cluster's demo database); the
demo city is loaded into it when missing.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import socket
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

from bench.common import (  # noqa: E402
    front_worker_peaks_mib,
    start_front,
    start_gunicorn,
    stop_front,
    stop_server,
)
from db import make_engine, migrate  # noqa: E402
from services.loading import load_demo  # noqa: E402

#: Zaozhuang's central area in WGS-84 degrees (nearest queries land here).
CITY_BOX = (117.10, 34.60, 117.75, 35.25)
SEARCH_TERMS = ["便民", "服务", "警务", "卫生室", "公园", "停车", "村", "中心", "XSS", "' OR 1=1 --"]
LAYERS = ["service_office", "police_station", "pocket_park", "parking", "village_clinic"]
DISTRICTS = ["370402", "370403", "370404", "370405", "370406", "370481"]
LIGHT_KINDS = ("nearest", "search", "page")
HEAVY_KINDS = ("coverage", "export", "planner", "heavy")
#: Seconds a heavy client waits after the lane's 503 before it asks again (it says 5; impatient clients).
BUSY_PAUSE_S = 0.25


def nearest_path(rng: random.Random) -> str:
    lon, lat = rng.uniform(CITY_BOX[0], CITY_BOX[2]), rng.uniform(CITY_BOX[1], CITY_BOX[3])
    query = {"lon": f"{lon:.6f}", "lat": f"{lat:.6f}", "layer": rng.choice(LAYERS + ["all"]),
             "k": str(rng.randint(1, 5))}
    return "/api/nearest?" + urllib.parse.urlencode(query)


def nearest_request(rng: random.Random) -> tuple[str, str]:
    return "nearest", nearest_path(rng)


def healthz_request(rng: random.Random) -> tuple[str, str]:  # noqa: ARG001 - the same signature as the others
    return "reference", "/healthz"


def mix_request(rng: random.Random) -> tuple[str, str]:
    """One (kind, path) of the mix: nearest 40%, search 25%, coverage 10%, export 10%, pages 15% (the planner
    page, a third of them, is heavy)."""
    roll = rng.random()
    if roll < 0.40:
        return "nearest", nearest_path(rng)
    if roll < 0.65:
        return "search", "/api/search?" + urllib.parse.urlencode({"q": rng.choice(SEARCH_TERMS), "limit": "20"})
    if roll < 0.75:
        query = {"layer": rng.choice(LAYERS), "district": rng.choice(DISTRICTS)}
        return "coverage", "/api/coverage?" + urllib.parse.urlencode(query)
    if roll < 0.85:
        return "export", rng.choice(["/export/police_station.geojson", "/export/parking.csv",
                                     "/export/pocket_park.geojson", "/export/police_station.csv"])
    page = rng.choice(["/", "/?lang=en", "/planner"])
    return ("planner" if page == "/planner" else "page"), page


def heavy_request(rng: random.Random) -> tuple[str, str]:
    """A heavy request that the caches do not answer every time: suggestions, coverage, file exports."""
    roll = rng.random()
    if roll < 0.4:
        query = {"layer": rng.choice(LAYERS), "n": str(rng.randint(5, 20)), "district": rng.choice(DISTRICTS)}
        return "heavy", "/api/suggest?" + urllib.parse.urlencode(query)
    if roll < 0.7:
        query = {"layer": rng.choice(LAYERS), "radius_m": str(rng.choice([300, 500, 800, 1000, 1500]))}
        return "heavy", "/api/coverage?" + urllib.parse.urlencode(query)
    return "heavy", rng.choice(["/export/parking.gpkg", "/export/police_station.xlsx", "/export/pocket_park.shp"])


class Recorder:
    """Thread-safe store of (end time, kind, status, seconds, deliberate 503)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: list[tuple[float, str, int, float, bool]] = []

    def add(self, kind: str, status: int, seconds: float, busy: bool) -> None:
        with self.lock:
            self.rows.append((time.monotonic(), kind, status, seconds, busy))


def worker(port: int, deadline: float, budget: list[int], rec: Recorder, seed: int, choose) -> None:
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    while time.monotonic() < deadline:
        with rec.lock:
            if budget[0] <= 0:
                break
            budget[0] -= 1
        kind, path = choose(rng)
        start = time.perf_counter()
        busy = False
        try:
            conn.request("GET", path, headers={"Accept": "text/html" if kind == "page" else "application/json"})
            res = conn.getresponse()
            res.read()
            status, busy = res.status, res.status == 503 and res.getheader("Retry-After") is not None
            if res.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        except (OSError, http.client.HTTPException):
            status = 599  # a failed connection counts as a server failure
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        rec.add(kind, status, time.perf_counter() - start, busy)
        if busy:
            time.sleep(BUSY_PAUSE_S)
    conn.close()


def run_phase(port: int, seconds: float, connections: int, max_requests: int, seed: int, choose,
              rec: Recorder | None = None) -> tuple[Recorder, float, float]:
    rec = rec or Recorder()
    budget = [max_requests]
    start = time.monotonic()
    threads = [threading.Thread(target=worker, args=(port, start + seconds, budget, rec, seed * 1000 + i, choose))
               for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 180)
    return rec, start, time.monotonic()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summarise(rec: Recorder, start: float, end: float) -> dict:
    lat = [r[3] for r in rec.rows]
    by_kind: dict[str, dict] = {}
    for kind in sorted({r[1] for r in rec.rows}):
        mine = [r for r in rec.rows if r[1] == kind]
        by_kind[kind] = {"requests": len(mine), "p50_ms": round(pct([r[3] for r in mine], 50) * 1000, 1),
                         "p99_ms": round(pct([r[3] for r in mine], 99) * 1000, 1),
                         "max_ms": round(max(r[3] for r in mine) * 1000, 1),
                         "status": {str(s): sum(1 for r in mine if r[2] == s) for s in sorted({r[2] for r in mine})}}
    light = [r[3] for r in rec.rows if r[1] in LIGHT_KINDS]
    return {
        "requests": len(rec.rows), "seconds": round(end - start, 2),
        "throughput_rps": round(len(rec.rows) / max(end - start, 1e-9), 1),
        "p50_ms": round(pct(lat, 50) * 1000, 1), "p99_ms": round(pct(lat, 99) * 1000, 1),
        "light_p99_ms": round(pct(light, 99) * 1000, 1) if light else None,
        "worst_ms": round(max(lat, default=0.0) * 1000, 1),
        "deliberate_503": sum(1 for r in rec.rows if r[4] and r[1] in HEAVY_KINDS),
        "status_5xx": sum(1 for r in rec.rows if r[2] >= 500 and not (r[4] and r[1] in HEAVY_KINDS)),
        "status_4xx": sum(1 for r in rec.rows if 400 <= r[2] < 500),
        "by_kind": by_kind,
    }


def heavy_in_parallel(port: int, seconds: float, max_requests: int, seed: int) -> dict:
    """Nearest p99 at concurrency 4, alone and beside 10 connections of heavy requests."""
    quiet = summarise(*run_phase(port, seconds, 4, max_requests, seed, nearest_request))
    heavy_rec = Recorder()
    side = threading.Thread(target=run_phase, args=(port, seconds + 2, 10, max_requests, seed + 1, heavy_request,
                                                    heavy_rec))
    side.start()
    time.sleep(1.0)
    loaded = summarise(*run_phase(port, seconds, 4, max_requests, seed + 2, nearest_request))
    side.join(timeout=seconds + 240)
    heavy = summarise(heavy_rec, 0.0, 1.0)
    return {"quiet_nearest_p99_ms": quiet["p99_ms"], "loaded_nearest_p99_ms": loaded["p99_ms"],
            "ratio": round(loaded["p99_ms"] / quiet["p99_ms"], 2) if quiet["p99_ms"] else None,
            "nearest_5xx": loaded["status_5xx"], "heavy_requests": heavy["requests"],
            "heavy_status": heavy["by_kind"].get("heavy", {}).get("status", {}), "heavy_worst_ms": heavy["worst_ms"]}


def slow_clients(port: int, probes: int = 20) -> dict:
    """Probe latency while 200 connections send headers slowly and 16 trickle a POST body."""
    socks = []
    for i in range(216):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" if i < 200 else
                  b"POST /api/admin/facilities HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n{")
        socks.append(s)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for i, s in enumerate(socks):
                with contextlib.suppress(OSError):
                    s.sendall(b"X" if i < 200 else b" ")

    feeder = threading.Thread(target=trickle, daemon=True)
    feeder.start()
    times: dict[str, list[float]] = {"healthz": [], "nearest": []}
    failures = 0
    try:
        time.sleep(1.0)
        rng = random.Random(5)
        for _ in range(probes):
            for kind, path in (("healthz", "/healthz"), ("nearest", nearest_path(rng))):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                start = time.perf_counter()
                try:
                    conn.request("GET", path)
                    failures += conn.getresponse().status != 200
                except (OSError, http.client.HTTPException):
                    failures += 1
                times[kind].append(time.perf_counter() - start)
                conn.close()
    finally:
        stop.set()
        feeder.join(timeout=5)
        for s in socks:
            s.close()
    return {"slow_connections": len(socks), "probe_failures": failures,
            **{f"{k}_p50_ms": round(statistics.median(v) * 1000, 1) for k, v in times.items()},
            **{f"{k}_max_ms": round(max(v) * 1000, 1) for k, v in times.items()}}


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


def measure(port: int, args: argparse.Namespace) -> dict:
    run_phase(port, 5.0, args.connections, args.max_requests, args.seed + 1, mix_request)  # warm-up
    ref = summarise(*run_phase(port, args.ref_seconds, args.connections, args.max_requests, args.seed + 2,
                               healthz_request))
    load = summarise(*run_phase(port, args.seconds, args.connections, args.max_requests, args.seed, mix_request))
    parallel = heavy_in_parallel(port, args.heavy_seconds, args.max_requests, args.seed + 3)
    return {"ref": ref, "load": load, "parallel": parallel, "slow": slow_clients(port)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the measured mix (s)")
    ap.add_argument("--ref-seconds", type=float, default=10.0, help="length of the /healthz reference (s)")
    ap.add_argument("--heavy-seconds", type=float, default=20.0, help="length of each heavy-in-parallel phase (s)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--server", choices=["front", "gunicorn"], default="front")
    ap.add_argument("--max-requests", type=int, default=300_000, help="upper bound on requests per phase")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args(argv)
    if not 1 <= args.connections <= 256 or not 1 <= args.seconds <= 600:
        ap.error("--connections must be 1..256 and --seconds 1..600")

    url = database_url()
    ensure_demo(url)
    if args.server == "front":
        env, port = start_front(url)
        try:
            m = measure(port, args)
            memory = front_worker_peaks_mib(env)
        finally:
            stop_front(env)
        server = "nginx front: light lane 4x4, heavy lane 2 workers (4 at once)"
    else:
        proc, port = start_gunicorn(url, 4, 8)
        try:
            m = measure(port, args)
            memory = {}
        finally:
            stop_server(proc)
        server = "bare gunicorn 4 workers x 8 threads"
    ref, load = m["ref"], m["load"]
    ratio = round(load["light_p99_ms"] / ref["p99_ms"], 2) if ref["p99_ms"] and load["light_p99_ms"] else None
    result = {
        "benchmark": "load", "host": "127.0.0.1 (loopback only)", "server": server,
        "connections": args.connections, "mix": "nearest 40%, search 25%, coverage 10%, export 10%, pages 15%",
        "reference_healthz": {k: ref[k] for k in ("requests", "throughput_rps", "p50_ms", "p99_ms", "status_5xx")},
        "load": load,
        "p99_over_reference_p99": round(load["p99_ms"] / ref["p99_ms"], 2) if ref["p99_ms"] else None,
        "light_p99_over_reference_p99": ratio,
        "heavy_in_parallel": m["parallel"], "slow_clients": m["slow"], "worker_peak_rss_mib": memory,
        "worst_request_ms": max(load["worst_ms"], m["parallel"]["heavy_worst_ms"]),
        "pass": load["status_5xx"] == 0 and ref["status_5xx"] == 0 and m["parallel"]["nearest_5xx"] == 0,
    }
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
