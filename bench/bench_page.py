"""Benchmark: the residents' map page against a plain Folium MarkerCluster page.

Both pages show every facility of every layer, clustered, with the same
Leaflet and Leaflet.markercluster served locally (no internet). Ours is
``/`` of the app; the reference is what a plain Folium script makes: one
``folium.Marker`` with a popup per facility inside a ``MarkerCluster``.
Headless Chromium (Debian's ``chromium``, driven by Playwright) loads each
page in a fresh context; we count the bytes transferred (CDP
``encodedDataLength``) and the time from navigation start until the first
marker or cluster icon is drawn. Median of ``--runs`` after a warm-up.

Goals (issue 7): at least 3× fewer bytes than the reference, markers drawn
within 1.5 s.

    python -m bench.bench_page [--runs 5] [--json PATH]
"""
from __future__ import annotations

import argparse
import functools
import http.server
import logging
import os
import statistics
import tempfile
import threading
from pathlib import Path

import folium
from folium.plugins import MarkerCluster
from playwright.sync_api import sync_playwright
from sqlalchemy import text
from werkzeug.serving import make_server

from bench.common import ROOT, bench_url, write_json
from db import make_engine
from services.loading import load_demo
from web import create_app

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
DRAWN = "() => document.querySelectorAll('.leaflet-marker-icon').length > 0"


def reference_html(engine) -> str:
    """The plain Folium page: every facility a Marker with a popup, in one MarkerCluster."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, ST_Y(point), ST_X(point) FROM facility WHERE status = 'active'")).all()
    fmap = folium.Map(location=[34.86, 117.45], zoom_start=9, tiles=None)
    fmap.options["maxZoom"] = 18  # clusters need it; Folium puts max_zoom on tiles only
    # Folium's own defaults, minus Bootstrap and Font Awesome, served locally (popups need jQuery).
    fmap.default_js = [("leaflet", "/vendor/leaflet/dist/leaflet.js"), ("jquery", "/vendor/jquery/dist/jquery.min.js")]
    fmap.default_css = [("leaflet_css", "/vendor/leaflet/dist/leaflet.css")]
    cluster = MarkerCluster()
    cluster.default_js = [("mc", "/vendor/leaflet.markercluster/dist/leaflet.markercluster.js")]
    cluster.default_css = [("mcc", "/vendor/leaflet.markercluster/dist/MarkerCluster.css"),
                           ("mcd", "/vendor/leaflet.markercluster/dist/MarkerCluster.Default.css")]
    cluster.add_to(fmap)
    for name, lat, lon in rows:
        folium.Marker([lat, lon], popup=folium.Popup(name)).add_to(cluster)
    return fmap.get_root().render(), len(rows)


def serve_dir(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_app(url: str):
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    app = create_app({"DATABASE_URL": url})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def measure(browser, url: str) -> dict:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    total = {"bytes": 0, "requests": 0, "outside": 0}
    host = url.split("/")[2]

    def finished(event):
        total["bytes"] += int(event.get("encodedDataLength", 0))
        total["requests"] += 1

    def request(req):
        if req.url.split("/")[2] != host and not req.url.startswith("data:"):
            total["outside"] += 1

    cdp.on("Network.loadingFinished", finished)
    page.on("request", request)
    page.goto(url, wait_until="commit")
    page.wait_for_function(DRAWN, polling="raf", timeout=60_000)
    drawn_ms = page.evaluate("() => performance.now()")
    page.wait_for_load_state("networkidle")
    context.close()
    return {"bytes": total["bytes"], "requests": total["requests"], "drawn_ms": drawn_ms,
            "outside_requests": total["outside"]}


def run(runs: int, url: str | None = None) -> dict:
    url = url or bench_url()
    engine = make_engine(url)
    load_demo(engine, echo=lambda *_: None)
    html, n = reference_html(engine)
    engine.dispose()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "reference.html").write_text(html, encoding="utf-8")
        os.symlink(ROOT / "node_modules", Path(tmp) / "vendor")
        ref_server, app_server = serve_dir(Path(tmp)), serve_app(url)
        ours_url = f"http://127.0.0.1:{app_server.server_port}/"
        ref_url = f"http://127.0.0.1:{ref_server.server_port}/reference.html"
        pw = sync_playwright().start()
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            measure(browser, ours_url), measure(browser, ref_url)  # warm-up
            ours, ref = [], []
            for _ in range(runs):
                ours.append(measure(browser, ours_url))
                ref.append(measure(browser, ref_url))
        finally:
            browser.close()
            pw.stop()
            ref_server.shutdown()
            app_server.shutdown()

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    ours_bytes, ref_bytes = med(ours, "bytes"), med(ref, "bytes")
    ours_ms, ref_ms = med(ours, "drawn_ms"), med(ref, "drawn_ms")
    return {
        "task": f"Map page with every layer ({n:,} facilities) in headless Chromium",
        "facilities": n,
        "ours": {"bytes": ours_bytes, "drawn_ms": round(ours_ms, 1), "requests": med(ours, "requests")},
        "reference": {"name": "plain Folium page, one Marker+popup per facility in a MarkerCluster",
                      "bytes": ref_bytes, "drawn_ms": round(ref_ms, 1), "requests": med(ref, "requests")},
        "bytes_ratio": round(ref_bytes / ours_bytes, 2),
        "outside_requests": sum(r["outside_requests"] for r in ours),
        "goal": "≥ 3× fewer bytes than the reference; markers drawn within 1.5 s",
        "met": bool(ref_bytes / ours_bytes >= 3 and ours_ms <= 1500),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    write_json(run(args.runs), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
