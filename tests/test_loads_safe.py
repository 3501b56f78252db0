"""Loads that cannot hurt: all or nothing, invisible until committed, serialised,
and idempotent. Runs on the scratch database (districts only, emptied per test).

Failures and slow loads are made with real PostgreSQL triggers in the scratch
database (dropped afterwards), never with mocks.
"""
from __future__ import annotations

import csv
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from services.errors import InvalidRequest
from services.loading import load_file

LAYER = "service_office"


def write_csv(path: Path, ids: range, *, prefix: str = "SO") -> Path:
    """Offices on a grid in central Shizhong (117.50-117.60E, 34.83-34.87N: inside Zaozhuang)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["编号", "名称", "地址", "经度", "纬度"])
        for i in ids:
            out.writerow([f"{prefix}{i:06d}", f"便民服务点{i}", f"市中区{i}号",
                          f"{117.50 + (i % 100) * 0.001:.6f}", f"{34.83 + (i // 100 % 40) * 0.001:.6f}"])
    return path


def fingerprint(engine) -> tuple:
    """Everything a load may touch, as one comparable value."""
    with engine.connect() as conn:
        return tuple(conn.execute(text(f"SELECT count(*), md5(coalesce(string_agg(to_jsonb(t)::text, '|' "
                                       f"ORDER BY t.id), '')) FROM {table} t")).one()
                     for table in ("facility", "change_log", "load_run", "load_reject"))


def active_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM facility WHERE layer = :l AND status = 'active'"),
                            {"l": LAYER}).scalar()


@pytest.fixture()
def trigger(scratch_engine):
    """Install a trigger for one test: ``trigger(table, body_sql)``; dropped afterwards."""
    made = []

    def install(table: str, body: str) -> None:
        name = f"test_{table}_trg"
        with scratch_engine.begin() as conn:
            conn.execute(text(f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                              f"BEGIN {body} RETURN NEW; END $$"))
            conn.execute(text(f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW "
                              f"EXECUTE FUNCTION {name}()"))
        made.append((table, name))

    yield install
    with scratch_engine.begin() as conn:
        for table, name in made:
            conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
            conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))


def test_a_load_that_fails_while_writing_leaves_the_database_exactly_as_it_was(scratch_engine, tmp_path, trigger):
    load_file(scratch_engine, write_csv(tmp_path / "first.csv", range(300)), LAYER, crs="wgs84")
    before = fingerprint(scratch_engine)
    # The database refuses row 250 of the second file half-way through the write.
    trigger("facility", "IF NEW.source_id = 'SO000550' THEN RAISE EXCEPTION 'disk on fire'; END IF;")
    with pytest.raises(Exception, match="disk on fire"):
        load_file(scratch_engine, write_csv(tmp_path / "second.csv", range(300, 600)), LAYER, crs="wgs84")
    assert fingerprint(scratch_engine) == before
    assert active_count(scratch_engine) == 300


def test_a_rejected_file_writes_no_facility_and_records_why(scratch_engine, tmp_path):
    load_file(scratch_engine, write_csv(tmp_path / "first.csv", range(100)), LAYER, crs="wgs84")
    before = fingerprint(scratch_engine)
    bad = write_csv(tmp_path / "bad.csv", range(100, 200))
    with bad.open("a", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerow(["SO999999", "北京的点", "", "116.40", "39.90"])  # Beijing: outside the city
    result = load_file(scratch_engine, bad, LAYER, crs="wgs84")
    assert result.status == "rejected"
    after = fingerprint(scratch_engine)
    assert after[0] == before[0] and after[1] == before[1]  # facilities and change log untouched
    with scratch_engine.connect() as conn:
        reason = conn.execute(text("SELECT reason FROM load_reject WHERE source_id = 'SO999999'")).scalar()
    assert "outside" in reason


def test_readers_during_a_load_see_the_old_data_or_the_new_never_half(scratch_app, scratch_engine, tmp_path,
                                                                      trigger):
    old, new = 2_000, 20_000
    load_file(scratch_engine, write_csv(tmp_path / "old.csv", range(old)), LAYER, crs="wgs84")
    # Hold the write transaction open for a while (after staging, before the upsert commits).
    trigger("load_run", "PERFORM pg_sleep(1.5);")
    path = write_csv(tmp_path / "new.csv", range(old + new))
    seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def reader() -> None:
        client = scratch_app.test_client()
        while not stop.is_set():
            layers = client.get("/api/layers").get_json()["layers"]
            seen.append((time.monotonic(), next(x["count"] for x in layers if x["key"] == LAYER)))

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    result = load_file(scratch_engine, path, LAYER, crs="wgs84")
    finished = time.monotonic()
    time.sleep(0.3)
    stop.set()
    thread.join(timeout=30)
    assert result.inserted == new and result.unchanged == old
    counts = {n for _, n in seen}
    assert counts <= {old, old + new}, f"a reader saw a half-loaded layer: {sorted(counts)}"
    assert sum(1 for t, _ in seen if started <= t <= finished) >= 5, "the reader must overlap the load"
    assert old in counts and seen[-1][1] == old + new


def test_two_loads_of_one_layer_at_once_are_serialised(scratch_engine, tmp_path, trigger):
    trigger("load_run", "IF NEW.source_name = 'slow.csv' THEN PERFORM pg_sleep(5); END IF;")
    slow = write_csv(tmp_path / "slow.csv", range(500))
    fast = write_csv(tmp_path / "fast.csv", range(500))  # the same offices
    results: dict[str, object] = {}

    def run(name: str, path: Path) -> None:
        results[name] = load_file(scratch_engine, path, LAYER, crs="wgs84")

    first = threading.Thread(target=run, args=("slow", slow))
    first.start()
    time.sleep(1.0)  # the slow load now holds the layer
    second = threading.Thread(target=run, args=("fast", fast))
    second.start()
    waited_on_advisory = False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not waited_on_advisory:
        # A fresh transaction per look: pg_stat_activity is a snapshot for the whole transaction.
        with scratch_engine.connect() as conn:
            waited_on_advisory = bool(conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND wait_event = 'advisory'")).scalar())
        time.sleep(0.05)
    first.join(60)
    second.join(60)
    assert waited_on_advisory, "the second load must wait for the first"
    # Serialised: the first inserts all 500, the second then finds them all unchanged.
    assert (results["slow"].inserted, results["slow"].unchanged) == (500, 0)
    assert (results["fast"].inserted, results["fast"].updated, results["fast"].unchanged) == (0, 0, 500)
    assert active_count(scratch_engine) == 500


def test_two_loads_of_different_layers_do_not_wait_for_each_other(scratch_engine, tmp_path, trigger):
    trigger("load_run", "IF NEW.source_name = 'slow.csv' THEN PERFORM pg_sleep(3); END IF;")
    slow = write_csv(tmp_path / "slow.csv", range(100))
    other = write_csv(tmp_path / "stations.csv", range(100), prefix="PS")
    thread = threading.Thread(target=load_file, args=(scratch_engine, slow, LAYER), kwargs={"crs": "wgs84"})
    thread.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    load_file(scratch_engine, other, "police_station", crs="wgs84")
    took = time.monotonic() - t0
    thread.join(60)
    assert took < 2.0, f"a police station load waited {took:.1f} s for an office load"


def test_reloading_the_same_file_changes_nothing(scratch_engine, tmp_path):
    path = write_csv(tmp_path / "offices.csv", range(400))
    first = load_file(scratch_engine, path, LAYER, crs="wgs84")
    assert first.inserted == 400
    with scratch_engine.connect() as conn:
        rows = conn.execute(text("SELECT id, version, updated_at, name, ST_AsText(geom) FROM facility "
                                 "ORDER BY id")).all()
        log = conn.execute(text("SELECT count(*) FROM change_log")).scalar()
    again = load_file(scratch_engine, path, LAYER, crs="wgs84")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 400)
    with scratch_engine.connect() as conn:
        assert conn.execute(text("SELECT id, version, updated_at, name, ST_AsText(geom) FROM facility "
                                 "ORDER BY id")).all() == rows
        assert conn.execute(text("SELECT count(*) FROM change_log")).scalar() == log


# ------------------------------------------------------------------ loads that stop part-way leave a failed run
def runs(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT status, source_name, notes::text FROM load_run "
                                                    "ORDER BY id")).all()]


def test_a_lost_connection_is_one_line_and_a_failed_run(scratch_app, scratch_engine, tmp_path, trigger):
    load_file(scratch_engine, write_csv(tmp_path / "first.csv", range(50)), LAYER, crs="wgs84")
    before = fingerprint(scratch_engine)[0]
    # The server ends the load's own connection as the load writes its run (a crash, a restart, a DBA).
    trigger("load_run", "IF NEW.status <> 'failed' THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;")
    path = write_csv(tmp_path / "second.csv", range(50, 300))
    result = scratch_app.test_cli_runner().invoke(args=[
        "etl", "load", str(path), "--layer", LAYER, "--crs", "wgs84"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert "connection was lost" in lines[0] and "nothing was written" in lines[0]
    assert fingerprint(scratch_engine)[0] == before
    status, source, notes = runs(scratch_engine)[-1]
    assert (status, source) == ("failed", "second.csv")
    assert "connection lost" in notes
    assert "failed load run" in lines[0]


@pytest.mark.parametrize("bad, why", [
    ('SO000250,"便民服务点250","市中区250号",117.55,34.85,"stray",field', "not a well-formed CSV"),
    ("SO000250,便民服务点250," + "长" * 40_000 + ",117.55,34.85", "MAX_CELL_CHARS"),
], ids=["malformed line", "cell past the cap"])
def test_a_refusal_deep_in_a_file_leaves_a_failed_run(scratch_engine, tmp_path, bad, why):
    load_file(scratch_engine, write_csv(tmp_path / "first.csv", range(50)), LAYER, crs="wgs84")
    before = fingerprint(scratch_engine)[0]
    path = write_csv(tmp_path / "deep.csv", range(50, 400))
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[250] = bad  # file line 251, in the third piece of 100 rows
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidRequest, match=why):
        load_file(scratch_engine, path, LAYER, crs="wgs84", chunk_rows=100)
    assert fingerprint(scratch_engine)[0] == before
    status, source, notes = runs(scratch_engine)[-1]
    assert (status, source) == ("failed", "deep.csv")
    assert why in notes


def test_an_unwritable_report_path_is_refused_before_loading(scratch_app, scratch_engine, tmp_path):
    path = write_csv(tmp_path / "offices.csv", range(20))
    report = tmp_path / "no-such-folder" / "report.json"
    result = scratch_app.test_cli_runner().invoke(args=[
        "etl", "load", str(path), "--layer", LAYER, "--crs", "wgs84", "--report-json", str(report)])
    assert result.exit_code == 2
    assert "--report-json" in result.output and "does not exist" in result.output
    assert active_count(scratch_engine) == 0 and runs(scratch_engine) == []
