"""A full reload built in a fresh partition and swapped in gives what an upsert in place gives.

Each test runs both ways: ``in place`` (every load upserts row by row) and
``fresh partition`` (every load that writes rows builds the layer anew, indexes
it once and swaps it in). Expected values are the ones written into the
files and the edits made here, never the loader's own output copied in.
Runs on the scratch database (districts only, emptied per test).
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import text

from db import partitions
from db import rebuild as db_rebuild
from layers import LAYERS
from services.loading import load_file

LAYER = "service_office"


@pytest.fixture(params=["in place", "fresh partition"])
def path_taken(request, monkeypatch) -> str:
    if request.param == "fresh partition":
        monkeypatch.setattr(db_rebuild, "REBUILD_MIN_ROWS", 1)
        monkeypatch.setattr(db_rebuild, "REBUILD_MIN_SHARE", 0.0)
    else:
        monkeypatch.setattr(db_rebuild, "REBUILD_MIN_ROWS", 10 ** 12)
    return request.param


def write_offices(path: Path, ids: range, *, renamed: dict[int, str] | None = None) -> Path:
    """Offices on a grid in central Shizhong (inside Zaozhuang), WGS-84."""
    renamed = renamed or {}
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["编号", "名称", "地址", "经度", "纬度"])
        for i in ids:
            out.writerow([f"SO{i:05d}", renamed.get(i, f"便民服务点{i}"), f"市中区{i}号",
                          f"{117.50 + (i % 50) * 0.001:.6f}", f"{34.83 + (i // 50) * 0.001:.6f}"])
    return path


def rows(engine) -> dict[str, tuple]:
    with engine.connect() as conn:
        found = conn.execute(text("SELECT source_id, id, name, status, version, updated_at FROM facility "
                                  "WHERE layer = :l"), {"l": LAYER}).all()
    return {r[0]: tuple(r[1:]) for r in found}


def test_first_load_then_reload_counts_and_ids(scratch_engine, tmp_path, path_taken):
    first = load_file(scratch_engine, write_offices(tmp_path / "a.csv", range(100)), LAYER, crs="wgs84")
    assert (first.inserted, first.updated, first.unchanged) == (100, 0, 0)
    before = rows(scratch_engine)
    # 20 renamed at the source, 30 new ones; the other 80 as they were.
    renamed = {i: f"新名称{i}" for i in range(20)}
    second = load_file(scratch_engine, write_offices(tmp_path / "b.csv", range(130), renamed=renamed), LAYER,
                       crs="wgs84")
    assert (second.inserted, second.updated, second.unchanged) == (30, 20, 80)
    after = rows(scratch_engine)
    assert len(after) == 130
    for i in range(100):
        sid = f"SO{i:05d}"
        assert after[sid][0] == before[sid][0], "a facility keeps its id through a reload"
        if i in renamed:
            assert after[sid][1] == renamed[i] and after[sid][3] == before[sid][3] + 1
        else:
            assert after[sid] == before[sid], "an unchanged row is not touched (version, updated_at)"


def test_a_reload_keeps_an_editors_correction_and_retirement(scratch_engine, tmp_path, path_taken):
    path = write_offices(tmp_path / "a.csv", range(60))
    load_file(scratch_engine, path, LAYER, crs="wgs84")
    with scratch_engine.begin() as conn:
        conn.execute(text("UPDATE facility SET name = '编辑更正', status = 'retired', version = version + 1 "
                          "WHERE source_id = 'SO00007'"))
    again = load_file(scratch_engine, path, LAYER, crs="wgs84")
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 60)
    assert rows(scratch_engine)["SO00007"][1:3] == ("编辑更正", "retired")
    # The source changes the row: its data is taken, the retirement stands.
    changed = load_file(scratch_engine, write_offices(tmp_path / "b.csv", range(60), renamed={7: "源头新名"}),
                        LAYER, crs="wgs84")
    assert changed.updated == 1
    assert rows(scratch_engine)["SO00007"][1:3] == ("源头新名", "retired")


def test_each_update_is_in_the_audit_trail(scratch_engine, tmp_path, path_taken):
    load_file(scratch_engine, write_offices(tmp_path / "a.csv", range(40)), LAYER, crs="wgs84")
    result = load_file(scratch_engine, write_offices(tmp_path / "b.csv", range(40), renamed={3: "改名三", 9: "改名九"}),
                       LAYER, crs="wgs84")
    with scratch_engine.connect() as conn:
        log = conn.execute(text(
            "SELECT before->>'name', after->>'name', after->>'source_id' FROM change_log "
            "WHERE load_run_id = :run AND action = 'load' ORDER BY 3"), {"run": result.run_id}).all()
    assert [tuple(r) for r in log] == [("便民服务点3", "改名三", "SO00003"), ("便民服务点9", "改名九", "SO00009")]


def test_rows_an_editor_added_before_any_load_are_kept(scratch_engine, tmp_path, path_taken):
    with scratch_engine.begin() as conn:
        conn.execute(text("INSERT INTO facility (layer, source_id, name, geom, point) VALUES (:l, 'ED1', '编辑新增',"
                          " ST_SetSRID(ST_MakePoint(117.55, 34.86), 4326), ST_SetSRID(ST_MakePoint(117.55, 34.86),"
                          " 4326))"), {"l": LAYER})
    load_file(scratch_engine, write_offices(tmp_path / "a.csv", range(50)), LAYER, crs="wgs84")
    found = rows(scratch_engine)
    assert len(found) == 51 and found["ED1"][1] == "编辑新增"


def test_a_rebuilt_layer_has_its_own_partition_with_every_index(scratch_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(db_rebuild, "REBUILD_MIN_ROWS", 1)
    load_file(scratch_engine, write_offices(tmp_path / "a.csv", range(30)), LAYER, crs="wgs84")
    with scratch_engine.connect() as conn:
        assert partitions.has_partition(conn, LAYER)
        parent = set(partitions.parent_indexes(conn))
        own = {r[0] for r in conn.execute(text(
            "SELECT p.relname FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indexrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE x.indrelid = CAST(:t AS regclass)"),
            {"t": partitions.partition_name(LAYER)})}
        leftovers = conn.execute(text("SELECT count(*) FROM pg_class WHERE relname LIKE '%\\_\\_fresh%'")).scalar()
    assert own == parent, "every index of facility is attached on the new partition"
    assert leftovers == 0


def test_the_swap_bumps_the_data_version(scratch_engine, tmp_path, monkeypatch):
    monkeypatch.setattr(db_rebuild, "REBUILD_MIN_ROWS", 1)
    with scratch_engine.connect() as conn:
        before = conn.execute(text("SELECT version FROM data_version WHERE name = 'facility'")).scalar()
    load_file(scratch_engine, write_offices(tmp_path / "a.csv", range(30)), LAYER, crs="wgs84")
    with scratch_engine.connect() as conn:
        after = conn.execute(text("SELECT version FROM data_version WHERE name = 'facility'")).scalar()
    assert after > before, "caches keyed on the data version must see the new rows"


def test_a_new_layers_first_rows_go_to_a_partition_of_its_own(scratch_engine, tmp_path, monkeypatch):
    """A small first load of a layer that has no partition creates one (not the shared default partition)."""
    record = dataclasses.replace(LAYERS[LAYER], key="fresh_kiosk", in_composite=False, report_count=None)
    monkeypatch.setitem(LAYERS, record.key, record)
    own = partitions.partition_name(record.key)
    with scratch_engine.begin() as conn:
        conn.execute(text(partitions.formatted(conn, "DROP TABLE IF EXISTS %I", own)))
    try:
        result = load_file(scratch_engine, write_offices(tmp_path / "k.csv", range(3)), record.key, crs="wgs84")
        assert result.inserted == 3
        with scratch_engine.connect() as conn:
            where = conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM facility WHERE layer = :l"
                                      " GROUP BY 1"), {"l": record.key}).all()
        assert where == [(own, 3)]
    finally:
        with scratch_engine.begin() as conn:
            conn.execute(text("DELETE FROM facility WHERE layer = :l"), {"l": record.key})
            conn.execute(text(partitions.formatted(conn, "DROP TABLE IF EXISTS %I", own)))
