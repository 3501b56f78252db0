"""`make backup` and `make restore FILE=...`: the data and the change log survive a round trip.

The test database is backed up with the real Makefile targets (pg_dump -Fc)
into a temporary directory, then restored for a separate, empty home
database, twice: each restore fills a fresh database and points the home
database at it, and the second one drops the first one's copy.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from db import database_name, libpq_url, live_url, make_engine, sa_url
from db import restore as db_restore
from services.editing import create_token

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("district", "facility", "change_log", "load_run", "load_reject", "demand_cell", "village", "api_token",
          "app_meta")


pytestmark = pytest.mark.usefixtures("demo_restored")


def contents(engine) -> dict:
    """Row count and a hash of every row, per table (geometries as WKB hex)."""
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            out[table] = tuple(conn.execute(text(
                f"SELECT count(*), md5(coalesce(string_agg(to_jsonb(t)::text, '|' ORDER BY to_jsonb(t)::text), "
                f"'')) FROM {table} t")).one())
        out["alembic"] = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return out


def make(target: str, url: str, **variables: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, DATABASE_URL=libpq_url(url))
    args = ["make", "--no-print-directory", "-s", target] + [f"{k}={v}" for k, v in variables.items()]
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture()
def restore_url(database_url):
    url = database_url + "_restore"
    base, name = url.rsplit("/", 1)
    admin = create_engine(sa_url(base + "/postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url
    with admin.connect() as conn:
        for _, generation in db_restore.generations(conn, name):
            db_restore.drop_database(conn, generation, force=True)
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_backup_and_restore_round_trip_the_data_and_the_change_log(app, client, engine, restore_url, tmp_path):
    _, secret = create_token(engine, "editor", "backup test")
    res = client.post("/api/admin/facilities", headers={"Authorization": f"Bearer {secret}"},
                      json={"layer": "police_station", "name": "备份测试警务站", "lon": 117.5566, "lat": 34.8640})
    assert res.status_code == 201
    fid = res.get_json()["id"]
    res = client.patch(f"/api/admin/facilities/{fid}", json={"phone": "0632-7654321"},
                       headers={"Authorization": f"Bearer {secret}", "If-Match": res.headers["ETag"]})
    assert res.status_code == 200
    original = contents(engine)
    assert original["change_log"][0] >= 2

    done = make("backup", engine.url.render_as_string(hide_password=False), BACKUP_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    dumps = list(tmp_path.glob("minsheng-*.dump"))
    assert len(dumps) == 1 and dumps[0].stat().st_size > 100_000
    assert done.stdout.strip().endswith(dumps[0].name)

    served = []
    for _ in range(2):  # for an empty database, then again over the restored copy
        done = make("restore", restore_url, FILE=str(dumps[0]))
        assert done.returncode == 0, done.stderr
        served.append(live_url(restore_url))
        restored_engine = make_engine(served[-1])
        try:
            assert contents(restored_engine) == original
            with restored_engine.connect() as conn:
                actions = conn.execute(text("SELECT action, after->>'phone' FROM change_log WHERE facility_id = :i "
                                            "ORDER BY at, id"), {"i": fid}).all()
                wkt = conn.execute(text("SELECT ST_AsText(point) FROM facility WHERE id = :i"), {"i": fid}).scalar()
        finally:
            restored_engine.dispose()
        assert [tuple(a) for a in actions] == [("insert", None), ("update", "0632-7654321")]
        assert wkt == "POINT(117.5566 34.864)"
    home = database_name(restore_url)
    assert [database_name(u) for u in served] == [f"{home}_r1", f"{home}_r2"]
    admin = make_engine(restore_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        assert db_restore.generations(conn, home) == [(2, f"{home}_r2")]  # the first copy was dropped
    admin.dispose()


def test_restore_without_a_file_says_how(database_url):
    done = make("restore", database_url + "_restore_missing")
    assert done.returncode != 0
    assert "FILE=" in done.stderr
