"""Benchmark: the residents' map page against today's page, on a slow phone on a slow network.

Both pages come from this repository: ours from the working tree, the
reference from an earlier commit (by default the one before the page was
rebuilt, ``--reference-commit``) checked out with ``git worktree`` into a
temporary folder and served by its own app on the same benchmark database,
with the same npm assets. Headless Chromium (Debian's ``chromium``, driven by
Playwright) loads each page in a fresh context with its cache disabled,
the CPU slowed 4× and the network emulated at 1.6 Mbps down, 750 kbps up,
150 ms latency (Chromium's DevTools emulation). We count the bytes
transferred (CDP ``encodedDataLength``: compressed, as sent), the HTML's
bytes, the requests, and the time from navigation start until the first
marker or cluster icon is drawn (and, for ours, until every layer's markers
are: ``body[data-markers=ready]``). Median of ``--runs`` after a warm-up.
``--waterfall`` prints each request's start, first byte and end, and the
long tasks, of one load of each page (where the time goes).

Goals (issue 12): HTML ≤ 50 KB, total transfer ≤ 250 KB on a first visit,
markers drawn ≤ 1.5 s, with the reference measured side by side.

    python -m bench.bench_page [--runs 3] [--json PATH] [--waterfall]
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from bench.common import ROOT, bench_url, write_json
from db import make_engine
from services.loading import load_demo
from web import create_app

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
DRAWN = "() => document.querySelectorAll('.leaflet-marker-icon').length > 0"
#: Ours only: every layer's markers clustered and drawn, the nearest list loaded.
ALL_DRAWN = "() => document.body.getAttribute('data-markers') === 'ready'"
#: Long tasks (≥ 50 ms on the main thread) as the page records them: [start, duration] in ms.
LONG_TASKS = ("window.__longTasks = []; new PerformanceObserver(function (l) { l.getEntries().forEach(function (e) {"
              " window.__longTasks.push([Math.round(e.startTime), Math.round(e.duration)]); }); })"
              ".observe({type: 'longtask', buffered: true});")
#: The page as it was before issue 12 (every facility embedded in a Folium page).
REFERENCE_COMMIT = "4250a05"
#: A slow phone on a slow network (Chromium DevTools emulation).
CPU_SLOWDOWN = 4
NETWORK = {"offline": False, "latency": 150, "downloadThroughput": 1_600_000 / 8, "uploadThroughput": 750_000 / 8}
GOALS = {"html_bytes": 50_000, "total_bytes": 250_000, "drawn_ms": 1500}


def serve_app(url: str):
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app({"DATABASE_URL": url})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_reference(url: str, commit: str, folder: Path) -> tuple[subprocess.Popen, str]:
    """Today's page: ``commit`` checked out into ``folder`` and served by its own app (a subprocess)."""
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), commit], cwd=ROOT, check=True,
                   capture_output=True)
    os.symlink(ROOT / "node_modules", folder / "node_modules")
    port = _free_port()
    code = ("import logging; logging.disable(logging.CRITICAL);"
            "from werkzeug.serving import run_simple; from web import create_app;"
            f"run_simple('127.0.0.1', {port}, create_app({{'DATABASE_URL': {url!r}}}), threaded=True)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=folder, env={**os.environ, "PYTHONPATH": str(folder)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "healthz", timeout=1)  # noqa: S310 - loopback only
            break
        except OSError:
            time.sleep(0.2)
    return proc, base


def measure(browser, url: str, waterfall: bool = False) -> dict:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.add_init_script(LONG_TASKS)
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    cdp.send("Network.emulateNetworkConditions", NETWORK)
    cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
    total = {"bytes": 0, "requests": 0, "outside": 0, "html": 0}
    host = url.split("/")[2]
    docs: set[str] = set()
    timings: dict[str, dict] = {}

    def sent(event):
        timings[event["requestId"]] = {"url": event["request"]["url"], "start": event["timestamp"]}

    def response(event):
        if event.get("type") == "Document":
            docs.add(event["requestId"])
        timings.get(event["requestId"], {})["first_byte"] = event["timestamp"]

    def finished(event):
        timings.get(event["requestId"], {}).update(end=event["timestamp"], bytes=event.get("encodedDataLength", 0))
        total["bytes"] += int(event.get("encodedDataLength", 0))
        total["requests"] += 1
        if event["requestId"] in docs:
            total["html"] += int(event.get("encodedDataLength", 0))

    def request(req):
        if req.url.split("/")[2] != host and not req.url.startswith("data:"):
            total["outside"] += 1

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.responseReceived", response)
    cdp.on("Network.loadingFinished", finished)
    page.on("request", request)
    page.goto(url, wait_until="commit")
    page.wait_for_function(DRAWN, polling="raf", timeout=120_000)
    drawn_ms = page.evaluate("() => performance.now()")
    all_drawn_ms = None
    if page.evaluate("() => !!window.Resident"):  # ours (today's page has no such object)
        page.wait_for_function(ALL_DRAWN, polling="raf", timeout=120_000)
        all_drawn_ms = page.evaluate("() => performance.now()")
    page.wait_for_load_state("networkidle", timeout=120_000)
    if waterfall:
        print_waterfall(url, timings, drawn_ms, all_drawn_ms, page.evaluate("() => window.__longTasks"))
    context.close()
    return {"bytes": total["bytes"], "html_bytes": total["html"], "requests": total["requests"],
            "drawn_ms": drawn_ms, "all_drawn_ms": all_drawn_ms, "outside_requests": total["outside"]}


def print_waterfall(url: str, timings: dict[str, dict], drawn_ms: float, all_drawn_ms: float | None,
                    long_tasks: list[list[int]]) -> None:
    """Each request's start, first byte and end (ms from the first request), its bytes and path; then the long
    tasks and when markers were drawn."""
    rows = sorted(timings.values(), key=lambda r: r["start"])
    t0 = rows[0]["start"]
    print(f"# {url}\n#  start  first    end    bytes  path", file=sys.stderr)
    for r in rows:
        ms = [round((r.get(k, r["start"]) - t0) * 1000) for k in ("start", "first_byte", "end")]
        print(f"  {ms[0]:6d} {ms[1]:6d} {ms[2]:6d} {int(r.get('bytes', 0)):8d}  {r['url'].replace(url, '/')[:80]}",
              file=sys.stderr)
    print(f"  long tasks [start, ms]: {long_tasks}", file=sys.stderr)
    print(f"  first markers drawn {drawn_ms:.0f} ms; every layer {all_drawn_ms or drawn_ms:.0f} ms", file=sys.stderr)


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def run(runs: int, url: str | None = None, commit: str = REFERENCE_COMMIT, waterfall: bool = False) -> dict:
    url = url or bench_url()
    engine = make_engine(url)
    load_demo(engine, echo=lambda *_: None)
    engine.dispose()
    with tempfile.TemporaryDirectory(prefix="minsheng-page-ref-") as tmp:
        folder = Path(tmp) / "reference"
        app_server = serve_app(url)
        ref_proc, ref_url = serve_reference(url, commit, folder)
        ours_url = f"http://127.0.0.1:{app_server.server_port}/"
        pw = sync_playwright().start()
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            measure(browser, ours_url), measure(browser, ref_url)  # warm-up (server caches, tile cache)
            if waterfall:
                measure(browser, ours_url, waterfall=True), measure(browser, ref_url, waterfall=True)
            ours, ref = [], []
            for _ in range(runs):
                ours.append(measure(browser, ours_url))
                ref.append(measure(browser, ref_url))
        finally:
            browser.close()
            pw.stop()
            app_server.shutdown()
            ref_proc.terminate()
            ref_proc.wait(timeout=10)
            subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=ROOT, capture_output=True)
    figures = {side: {"bytes": _median(rows, "bytes"), "html_bytes": _median(rows, "html_bytes"),
                      "drawn_ms": round(_median(rows, "drawn_ms"), 1), "requests": _median(rows, "requests")}
               for side, rows in (("ours", ours), ("reference", ref))}
    figures["ours"]["all_drawn_ms"] = round(statistics.median(r["all_drawn_ms"] or r["drawn_ms"] for r in ours), 1)
    o = figures["ours"]
    return {
        "task": "Residents' page, first visit on a 4× slower CPU at 1.6 Mbps / 150 ms, headless Chromium",
        "conditions": {"cpu_slowdown": CPU_SLOWDOWN, **NETWORK, "viewport": "390×844"},
        "ours": o, "reference": {"name": f"today's page (commit {commit}, every facility in the HTML)",
                                 **figures["reference"]},
        "bytes_ratio": round(o["bytes"] / figures["reference"]["bytes"], 3),
        "drawn_ratio": round(o["drawn_ms"] / figures["reference"]["drawn_ms"], 3),
        "outside_requests": sum(r["outside_requests"] for r in ours),
        "goal": "HTML ≤ 50 KB; total ≤ 250 KB compressed; markers drawn ≤ 1.5 s",
        "met": bool(o["html_bytes"] <= GOALS["html_bytes"] and o["bytes"] <= GOALS["total_bytes"]
                    and o["drawn_ms"] <= GOALS["drawn_ms"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--reference-commit", default=REFERENCE_COMMIT)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--waterfall", action="store_true", help="print one load of each page, request by request")
    args = parser.parse_args(argv)
    write_json(run(args.runs, commit=args.reference_commit, waterfall=args.waterfall), args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
