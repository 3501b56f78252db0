"""Fixtures: a real PostGIS test database (never the demo's), the app, a client.

``TEST_DATABASE_URL`` names the test database (``make test`` sets it to the
private cluster's ``minsheng_test``). The session migrates it and loads the
demo city once (idempotent). A second database, ``<name>_scratch``, holds only
the districts, for tests that load files and must start from empty layers.
"""
from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from db import libpq_url, make_engine, migrate, sa_url
from layers import LAYERS
from services.loading import load_demo, load_districts
from web import create_app

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MINSHENG_SHARED", ROOT.parent / "shared"))
SAMPLES = SHARED / "samples"


#: Fixtures that reach the project's PostGIS; a test using any of them is marked ``db``
#: (``make test-pure`` runs the others, with no database at all).
DB_FIXTURES = frozenset({"database_url", "engine", "app", "client", "runner", "scratch_url", "scratch_engine",
                         "scratch_app", "pg_url_libpq", "live_server", "demo_restored", "throwaway_layer"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def _test_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.exit("TEST_DATABASE_URL is not set: run the tests with `make test`", returncode=2)
    return url


def _ensure_database(url: str) -> None:
    base, name = url.rsplit("/", 1)
    admin = create_engine(sa_url(base + "/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    migrate(url)


@pytest.fixture(scope="session")
def database_url() -> str:
    url = _test_url()
    _ensure_database(url)
    engine = make_engine(url)
    load_demo(engine, echo=lambda *_: None)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(database_url):
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def app(database_url):
    return create_app({"DATABASE_URL": database_url, "TESTING": True})


@pytest.fixture()
def client(app):
    return app.test_client()


@pytest.fixture()
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def scratch_url() -> str:
    url = _test_url() + "_scratch"
    _ensure_database(url)
    engine = make_engine(url)
    load_districts(engine)
    with engine.begin() as conn:  # no road network left by an earlier run (tests that need one import it)
        conn.execute(text("TRUNCATE road_edge, road_vertex, road_import"))
    engine.dispose()
    return url


@pytest.fixture()
def scratch_engine(scratch_url):
    """An engine on a database with districts and no facilities (emptied per test)."""
    eng = make_engine(scratch_url)
    with eng.begin() as conn:
        conn.execute(text("TRUNCATE facility, load_run, load_reject, change_log RESTART IDENTITY CASCADE"))
    yield eng
    eng.dispose()


@pytest.fixture()
def scratch_app(scratch_url, scratch_engine):
    return create_app({"DATABASE_URL": scratch_url, "TESTING": True})


@pytest.fixture(scope="session")
def samples() -> Path:
    if not SAMPLES.exists():
        pytest.fail(f"sample files not found at {SAMPLES}; set MINSHENG_SHARED to the shared folder")
    return SAMPLES


@pytest.fixture(scope="session")
def pg_url_libpq(database_url) -> str:
    return libpq_url(database_url)


@pytest.fixture(scope="session")
def live_server(app):
    """The app served over real HTTP on 127.0.0.1 (for the browser, GDAL and load tests).

    Yields the base URL, e.g. ``http://127.0.0.1:41234``.
    """
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def demo_restored(engine):
    """Facilities a test module adds to the demo database (not by a load) are deleted afterwards,
    so every other module still sees the demo city's counts."""
    with engine.connect() as conn:
        start = conn.execute(text("SELECT coalesce(max(id), 0) FROM facility")).scalar()
    yield
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM change_log WHERE facility_id IN (SELECT id FROM facility WHERE id > :s "
                          "AND load_run_id IS NULL)"), {"s": start})
        conn.execute(text("DELETE FROM facility WHERE id > :s AND load_run_id IS NULL"), {"s": start})


# ------------------------------------------------------------------ a layer added to the registry at run time
#: Three sites of the throw-away layer: (lon, lat, capacity), WGS-84.
THROWAWAY_SITES = [(117.5566, 34.8640, 5), (117.5601, 34.8702, 7), (117.3210, 35.0860, 11)]


@pytest.fixture()
def throwaway_layer(engine, monkeypatch):
    """One more layer record (a copy of the first capacity layer's under a new key) and three sites of it.

    Nothing but the registry entry is added: every route must pick the layer up with no code change.
    """
    template = next(layer for layer in LAYERS.values() if layer.capacity_field)
    record = dataclasses.replace(template, key="throwaway_kiosk", name_zh="测试亭", name_en="Throw-away kiosks",
                                 in_composite=False, report_count=None)
    monkeypatch.setitem(LAYERS, record.key, record)
    with engine.begin() as conn:
        for i, (lon, lat, capacity) in enumerate(THROWAWAY_SITES):
            conn.execute(text(
                "INSERT INTO facility (layer, source_id, name, capacity, geom, point, synthetic) VALUES"
                " (:layer, :sid, :name, :cap, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),"
                " ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), true)"),
                {"layer": record.key, "sid": f"K{i}", "name": f"测试亭{i}", "cap": capacity, "lon": lon, "lat": lat})
    yield record
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM facility WHERE layer = :layer"), {"layer": record.key})
