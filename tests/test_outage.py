"""A database outage: the API says 503 in JSON, pages say the data is unavailable,
and both recover when the database returns, without restarting the app.

The test never stops the shared cluster (other people use it). It starts its
own throw-away PostgreSQL cluster in a temporary directory
(``scripts/pgcluster.py --state`` with ``PGCLUSTER_DIR``), loads the real
districts into it, and stops and restarts *that* cluster.
"""
from __future__ import annotations

import threading
import time

import pytest
import requests
from flask import render_template_string
from playwright.sync_api import sync_playwright
from sqlalchemy import text
from werkzeug.serving import make_server

from db import make_engine, migrate
from etl.boundaries import read_districts
from services.loading import write_districts
from tests.throwaway_cluster import AVAILABLE, cluster_command, throwaway_cluster
from web import create_app
from web.database import get_engine

SIX_DISTRICTS_POPULATION = 3_855_601  # census 2020, Zaozhuang

pytestmark = [pytest.mark.db,
              pytest.mark.skipif(not AVAILABLE, reason="PostgreSQL server binaries are needed for a throw-away "
                                                       "cluster")]


@pytest.fixture(scope="module")
def cluster():
    """A private PostGIS cluster of our own with the real districts: yields (url, env for pgcluster.py)."""
    with throwaway_cluster("minsheng_outage") as (url, env):
        migrate(url)
        engine = make_engine(url)
        write_districts(engine, read_districts())
        engine.dispose()
        yield url, env


@pytest.fixture(scope="module")
def outage_app(cluster):
    app = create_app({"DATABASE_URL": cluster[0], "TESTING": True})

    @app.get("/outage-probe-page")
    def probe_page():  # a page that reads the database, as every data page does
        with get_engine().connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM district")).scalar()
        return render_template_string("<p>{{ n }} districts</p>", n=n)

    return app


def page_routes(app) -> list[str]:
    """GET routes without path arguments that serve pages (not API, assets or docs)."""
    skip = ("/api", "/vendor", "/static", "/healthz", "/openapi", "/ogc", "/export", "/tiles", "/docs")
    return sorted({r.rule for r in app.url_map.iter_rules() if "GET" in r.methods and not r.arguments
                   and not r.rule.startswith(skip)})


def api_routes(app) -> list[str]:
    return sorted({r.rule for r in app.url_map.iter_rules() if "GET" in r.methods and not r.arguments
                   and r.rule.startswith(("/api/", "/healthz")) and not r.rule.startswith("/api/admin")})


def test_outage_then_recovery_without_restart(cluster, outage_app):
    url, env = cluster
    client = outage_app.test_client()
    html = {"Accept": "text/html,application/xhtml+xml"}

    # Up: the real figures.
    body = client.get("/api/districts").get_json()
    assert body["total_population"] == SIX_DISTRICTS_POPULATION
    assert client.get("/healthz").status_code == 200
    assert client.get("/outage-probe-page", headers=html).status_code == 200

    cluster_command("stop", env)
    try:
        for path in ("/healthz", "/api/layers", "/api/districts"):
            res = client.get(path)
            assert res.status_code == 503, (path, res.status_code)
            assert res.is_json and res.get_json()["error"]["status"] == 503
            assert "unavailable" in res.get_json()["error"]["message"] or "unreachable" in \
                res.get_json()["error"]["message"]
            assert res.headers["Retry-After"]
        for path in api_routes(outage_app):  # every parameterless API route: never a 500
            res = client.get(path)  # (200 for routes that need no data, e.g. the API docs page)
            assert res.status_code in (200, 400, 503), (path, res.status_code, res.get_data(as_text=True)[:200])
        for path in page_routes(outage_app):
            res = client.get(path, headers=html)
            assert res.status_code in (200, 503), (path, res.status_code)
            if res.status_code == 503:
                page = res.get_data(as_text=True)
                assert "数据暂不可用" in page and "Data unavailable" in page, path
                assert res.mimetype == "text/html"
        assert "/outage-probe-page" in page_routes(outage_app)
    finally:
        cluster_command("ensure", env, "--db", "minsheng_outage")

    # Back: the same app answers again, no restart.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and client.get("/healthz").status_code != 200:
        time.sleep(0.5)
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/districts").get_json()["total_population"] == SIX_DISTRICTS_POPULATION
    assert "6 districts" in client.get("/outage-probe-page", headers=html).get_data(as_text=True)
    assert client.get("/api/layers").status_code == 200


def test_pages_served_while_down_say_so_in_a_browser(cluster, outage_app):
    """A page that is a static shell (200 while down) must tell the reader the data is unavailable."""
    url, env = cluster
    server = make_server("127.0.0.1", 0, outage_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    cluster_command("stop", env)
    try:
        shells = [p for p in page_routes(outage_app)
                  if requests.get(base + p, headers={"Accept": "text/html"}, timeout=30).status_code == 200]
        if shells:

            pw = sync_playwright().start()
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic"])
            try:
                page = browser.new_page()
                for path in shells:
                    page.goto(base + path)
                    page.wait_for_function(
                        "() => /不可用|unavailable/i.test(document.body.innerText)", timeout=15000)
            finally:
                browser.close()
                pw.stop()
        res = requests.get(base + "/outage-probe-page", headers={"Accept": "text/html"}, timeout=30)
        assert res.status_code == 503 and "数据暂不可用" in res.text
    finally:
        cluster_command("ensure", env, "--db", "minsheng_outage")
        server.shutdown()
