"""A restore is a service operation: the app answers throughout (old data, then new, never an error), a slow
reader does not block it, nothing cached from before is served after it, and /healthz fails when requests
would.

The served database is a copy of the test database made by the project's own backup and restore
(``<test db>_home``, pointed at its restored generations), so the shared test database is never switched.
"""
from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.pool import NullPool
from werkzeug.serving import make_server

from db import database_name, live_url, make_engine, with_database
from db import restore as db_restore
from services import cache, ops
from services.editing import Edit, create_facility
from tests.traffic import Traffic
from web import create_app

MARK = "恢复演练标记警务站"
WHERE = (117.5566, 34.8640)  # Shizhong's seat
#: What the residents' map draws (the page itself holds no facilities), per layer.
POLICE_MAP, PARKING_MAP = "/api/markers?layer=police_station", "/api/markers?layer=parking"


@pytest.fixture(scope="module")
def archive(database_url, tmp_path_factory):
    """A backup of the test database, made by the project's backup."""
    return ops.backup(database_url, tmp_path_factory.mktemp("backups"))


def drop_home(admin, home: str) -> None:
    with admin.connect() as conn:
        for _, name in db_restore.generations(conn, home):
            db_restore.drop_database(conn, name, force=True)
        db_restore.drop_database(conn, home, force=True)


@pytest.fixture(scope="module")
def home(database_url, archive):
    """An empty home database into which the backup has been restored once (so a restore generation serves)."""
    name = database_name(database_url) + "_home"
    url = with_database(database_url, name)
    admin = make_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    drop_home(admin, name)
    with admin.connect() as conn:
        db_restore.create_database(conn, name)
    ops.restore(url, archive, drain_s=0, echo=lambda *_: None)
    yield url
    drop_home(admin, name)
    admin.dispose()


@pytest.fixture(scope="module")
def served(home):
    """The app on the home database over real HTTP (threaded)."""
    app = create_app({"DATABASE_URL": home, "TESTING": True})
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def shows_marker(path: str, body: str) -> bool:
    """Whether a page or a search answer lists the marker facility (a search also echoes its query)."""
    if path.startswith("/api/search"):
        return any(f["properties"]["name"] == MARK for f in json.loads(body)["features"])
    return MARK in body


def test_healthz_fails_when_the_live_schema_cannot_answer_a_spatial_query(database_url):
    """A database that answers ``SELECT 1`` but has no schema is not healthy: requests would fail on it."""
    name = database_name(database_url) + "_bare"
    admin = make_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        db_restore.drop_database(conn, name, force=True)
        db_restore.create_database(conn, name)
    try:
        app = create_app({"DATABASE_URL": with_database(database_url, name), "TESTING": True})
        res = app.test_client().get("/healthz")
        assert res.status_code == 503 and res.is_json
        app.extensions["serving"].dispose()
    finally:
        with admin.connect() as conn:
            db_restore.drop_database(conn, name, force=True)
        admin.dispose()


def test_restore_while_serving_old_data_then_new_never_an_error(home, archive, served):
    live = make_engine(live_url(home))
    marker = create_facility(live, "police_station", Edit(values={"name": MARK}, lon=WHERE[0], lat=WHERE[1]),
                             source_id=None, actor="restore test")["id"]
    search = "/api/search?" + urllib.parse.urlencode({"q": MARK, "limit": 5})
    nearest = "/api/nearest?" + urllib.parse.urlencode({"lon": WHERE[0], "lat": WHERE[1], "layer": "all"})
    assert MARK in requests.get(served + POLICE_MAP, timeout=60).text  # the map (cached) shows the marker

    # A slow reader of the old data: a download holding its transaction and its lock on the facility table.
    reader = live.connect()
    reader.begin()
    reader.execute(text("SELECT count(*) FROM facility")).scalar()

    traffic = Traffic(served, [search, "/healthz", nearest, POLICE_MAP])
    time.sleep(1.0)
    done: list[ops.RestoreReport] = []
    started = time.monotonic()
    restorer = threading.Thread(target=lambda: done.append(ops.restore(home, archive, drain_s=2,
                                                                       echo=lambda *_: None)))
    restorer.start()
    restorer.join(timeout=600)
    finished = time.monotonic()
    time.sleep(1.0)
    rows = traffic.finish()
    reader.rollback()
    reader.close()
    live.dispose()

    assert done, "the restore did not finish while a reader held the old data"
    assert done[0].previous in done[0].kept  # the old database stays while it is read, and blocks nothing
    assert [(r.path, r.status) for r in rows if r.status >= 500] == []
    assert len([r for r in rows if r.start < finished and r.end > started]) > 20, "traffic ran during the restore"
    showing = [r for r in rows if r.path in (search, POLICE_MAP)]
    old = [r for r in showing if shows_marker(r.path, r.body)]
    new = [r for r in showing if not shows_marker(r.path, r.body)]
    assert old and new
    assert max(r.start for r in old) <= min(r.end for r in new), "old data was served after new data"
    assert all(r.start < finished for r in old), "old data was served after the restore returned"

    # One unrelated edit after the restore: the counters it bumps equal those the cached markers were made
    # at, but the restore epoch differs, so they are made again (without the facility the backup lacks).
    after = make_engine(live_url(home))
    create_facility(after, "parking", Edit(values={"name": "恢复后无关编辑"}, lon=117.32, lat=34.81),
                    source_id=None, actor="restore test")
    after.dispose()
    for _ in range(5):
        assert MARK not in requests.get(served + POLICE_MAP, timeout=60).text
        assert "恢复后无关编辑" in requests.get(served + PARKING_MAP, timeout=60).text
    hits = requests.get(served + search, timeout=60).json()["features"]
    assert marker not in {f["id"] for f in hits} and hits == []


def test_the_cache_key_changes_when_a_restore_rewinds_the_counters(home):
    """``pg_restore --clean`` in place re-creates ``data_version`` with a backup's (lower) counters; a value
    cached at the same counters before is not served from the other data."""
    engine = make_engine(live_url(home))
    calls: list[int] = []
    cache.clear()
    assert cache.memo(engine, "restore-test", 1, lambda: calls.append(1) or "before") == "before"
    assert cache.memo(engine, "restore-test", 1, lambda: calls.append(1) or "again") == "before"
    with engine.begin() as conn:  # what pg_restore --clean does to the table: drop it, make it anew
        conn.execute(text("CREATE TABLE data_version_copy AS TABLE data_version"))
        conn.execute(text("DROP TABLE data_version"))
        conn.execute(text("ALTER TABLE data_version_copy RENAME TO data_version"))
    try:
        assert cache.memo(engine, "restore-test", 1, lambda: calls.append(1) or "after") == "after"
        assert len(calls) == 2
    finally:
        engine.dispose()
