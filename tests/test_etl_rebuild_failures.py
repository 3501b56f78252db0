"""A full reload that fails or crashes between its fill and its swap leaves nothing behind.

A rebuild commits its fresh table (``facility__<layer>__fresh``) so that
several connections can index it, and swaps it in later. Whatever stops it
after that commit, ``facility``, the change log and the runs must be as they
were, no fresh table may stay, and the layer must be loadable again at once.
Failures are made with real PostgreSQL triggers (dropped afterwards), never
mocks. Runs on the scratch database.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from db import partitions
from db import rebuild as db_rebuild
from services.loading import LoadFailed, load_file
from tests.test_loads_safe import fingerprint, write_csv

LAYER = "service_office"


@pytest.fixture(autouse=True)
def always_rebuild(monkeypatch):
    """Every load that writes rows builds the layer anew (the path a million-row reload takes)."""
    monkeypatch.setattr(db_rebuild, "REBUILD_MIN_ROWS", 1)
    monkeypatch.setattr(db_rebuild, "REBUILD_MIN_SHARE", 0.0)


@pytest.fixture()
def load_run_trigger(scratch_engine):
    """``install(body)``: a BEFORE INSERT trigger on load_run for one test."""
    def install(body: str) -> None:
        with scratch_engine.begin() as conn:
            conn.execute(text("CREATE OR REPLACE FUNCTION test_rebuild_trg() RETURNS trigger LANGUAGE plpgsql AS "
                              f"$$ BEGIN {body} RETURN NEW; END $$"))
            conn.execute(text("CREATE TRIGGER test_rebuild_trg BEFORE INSERT ON load_run FOR EACH ROW "
                              "EXECUTE FUNCTION test_rebuild_trg()"))

    yield install
    with scratch_engine.begin() as conn:
        conn.execute(text("DROP TRIGGER IF EXISTS test_rebuild_trg ON load_run"))
        conn.execute(text("DROP FUNCTION IF EXISTS test_rebuild_trg()"))


def fresh_tables(engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text("SELECT relname FROM pg_class WHERE relname LIKE '%\\_\\_fresh%'"))]


def names(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT source_id, name FROM facility WHERE layer = :l"), {"l": LAYER}).all())


def test_a_failure_at_the_swap_leaves_everything_as_it_was(scratch_engine, tmp_path, load_run_trigger):
    load_file(scratch_engine, write_csv(tmp_path / "first.csv", range(200)), LAYER, crs="wgs84")
    before = fingerprint(scratch_engine)
    # The fresh table is filled, committed and indexed; recording the run, just before the swap, fails.
    load_run_trigger("IF NEW.source_name = 'second.csv' THEN RAISE EXCEPTION 'disk on fire'; END IF;")
    with pytest.raises(Exception, match="disk on fire"):
        load_file(scratch_engine, write_csv(tmp_path / "second.csv", range(100, 400)), LAYER, crs="wgs84")
    assert fingerprint(scratch_engine) == before
    assert fresh_tables(scratch_engine) == []
    # The layer's locks were let go: the next load runs at once and writes the 200 new offices.
    again = load_file(scratch_engine, write_csv(tmp_path / "third.csv", range(100, 400)), LAYER, crs="wgs84")
    assert (again.inserted, again.unchanged) == (200, 100)
    assert len(names(scratch_engine)) == 400


def test_a_lost_connection_before_the_swap_leaves_no_fresh_table(scratch_engine, tmp_path, load_run_trigger):
    load_file(scratch_engine, write_csv(tmp_path / "first.csv", range(50)), LAYER, crs="wgs84")
    before = fingerprint(scratch_engine)[0]
    # The server ends the load's connection as it records the run (after the fresh table was committed).
    load_run_trigger("IF NEW.status <> 'failed' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;")
    with pytest.raises(LoadFailed, match="nothing was written"):
        load_file(scratch_engine, write_csv(tmp_path / "second.csv", range(50, 300)), LAYER, crs="wgs84")
    assert fingerprint(scratch_engine)[0] == before
    assert fresh_tables(scratch_engine) == [], "the fresh table is dropped on a new connection"


def test_a_fresh_table_left_by_a_crash_is_dropped_by_the_next_rebuild(scratch_engine, tmp_path):
    load_file(scratch_engine, write_csv(tmp_path / "first.csv", range(20)), LAYER, crs="wgs84")
    # What a load killed between its fill and its swap leaves: a committed fresh table with rows.
    with scratch_engine.begin() as conn:
        stale = partitions.create_fresh(conn, LAYER)
        conn.execute(text(partitions.formatted(conn, "INSERT INTO %I SELECT * FROM facility WHERE layer = %L",
                                               stale, LAYER)))
        conn.execute(text(partitions.formatted(conn, "UPDATE %I SET name = '崩溃残留'", stale)))
    result = load_file(scratch_engine, write_csv(tmp_path / "second.csv", range(40)), LAYER, crs="wgs84")
    assert (result.inserted, result.unchanged) == (20, 20)
    found = names(scratch_engine)
    assert len(found) == 40 and "崩溃残留" not in found.values()
    assert found["SO000007"] == "便民服务点7"
    assert fresh_tables(scratch_engine) == []
