"""Loading the agencies' sample files into PostGIS: all or nothing, with reasons."""
from __future__ import annotations

import json
import math

import pytest
from pyproj import Geod
from sqlalchemy import text

from services.errors import InvalidRequest
from services.loading import load_file

GEOD = Geod(ellps="WGS84")


@pytest.fixture(scope="module")
def expected(samples):
    return json.loads((samples / "expected.json").read_text(encoding="utf-8"))


def _count(engine, layer=None):
    with engine.connect() as conn:
        if layer:
            return conn.execute(text("SELECT count(*) FROM facility WHERE layer = :l"), {"l": layer}).scalar_one()
        return conn.execute(text("SELECT count(*) FROM facility")).scalar_one()


def _positions(engine, layer):
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT source_id, name, ST_X(point), ST_Y(point) FROM facility WHERE layer = :l"),
                            {"l": layer}).all()
    return {r[0]: (r[2], r[3]) for r in rows} | {r[1]: (r[2], r[3]) for r in rows}


def _assert_near_truth(engine, layer, truth, tol_m):
    stored = _positions(engine, layer)
    checked = 0
    for key, (lon, lat) in truth.items():
        if key in stored:
            d = GEOD.inv(lon, lat, *stored[key])[2]
            assert d <= tol_m, f"{key} is {d:.2f} m from its true position"
            checked += 1
    return checked


class TestSampleFiles:
    def test_gbk_gcj02_offices_rejected_whole_then_partial(self, scratch_engine, samples, expected):
        path = samples / "service_offices_gcj02_gbk.csv"
        exp = expected[path.name]
        result = load_file(scratch_engine, path, "service_office", crs="gcj02")
        assert result.status == "rejected"
        assert _count(scratch_engine) == 0, "a rejected file must write nothing"
        reasons = {r.source_id: r.reason for r in result.rejects}
        assert "ZZ-ZW-70003" in reasons  # missing latitude
        assert "ZZ-ZW-70011" in reasons and "outside" in reasons["ZZ-ZW-70011"].lower()  # Shanghai
        assert all(r.row >= 2 for r in result.rejects)
        with scratch_engine.connect() as conn:
            stored = conn.execute(text("SELECT status, rejected FROM load_run WHERE id = :i"),
                                  {"i": result.run_id}).one()
        assert stored == ("rejected", len(result.rejects))

        result = load_file(scratch_engine, path, "service_office", crs="gcj02", accept_partial=True)
        assert result.status == "partial"
        # 41 rows, one duplicate collapses, missing-lat and Shanghai rejected; the swapped row is fixed or rejected.
        assert _count(scratch_engine) in (37, 38)
        assert _assert_near_truth(scratch_engine, "service_office", exp["truth_wgs84"], 1.0) >= 37
        with scratch_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM facility WHERE source_id = 'ZZ-ZW-70021'")).scalar_one() == 1
            names = conn.execute(text("SELECT name FROM facility WHERE source_id IN ('ZZ-ZW-70015', 'ZZ-ZW-70019') "
                                      "ORDER BY source_id")).scalars().all()
            assert names == ["<script>alert(1)</script>服务点", "x'); DROP TABLE facility; --"]
            # the swapped row is never stored as (lat, lon)
            assert conn.execute(text("SELECT count(*) FROM facility WHERE ST_X(point) < 90")).scalar_one() == 0

    def test_reloading_the_same_file_changes_nothing(self, scratch_engine, samples):
        path = samples / "service_offices_gcj02_gbk.csv"
        load_file(scratch_engine, path, "service_office", crs="gcj02", accept_partial=True)
        with scratch_engine.connect() as conn:
            before = conn.execute(text("SELECT count(*), max(updated_at), sum(version) FROM facility")).one()
        again = load_file(scratch_engine, path, "service_office", crs="gcj02", accept_partial=True)
        assert (again.inserted, again.updated) == (0, 0)
        with scratch_engine.connect() as conn:
            assert conn.execute(text("SELECT count(*), max(updated_at), sum(version) FROM facility")).one() == before

    def test_bd09_clinics_with_bom(self, scratch_engine, samples, expected):
        path = samples / "village_clinics_bd09.csv"
        result = load_file(scratch_engine, path, "village_clinic", crs="bd09")
        assert result.status == "loaded", [r.reason for r in result.rejects]
        assert _count(scratch_engine, "village_clinic") == 30
        assert _assert_near_truth(scratch_engine, "village_clinic", expected[path.name]["truth_wgs84"], 2.0) == 30

    def test_shapefile_crs_comes_from_the_prj(self, scratch_engine, samples, expected):
        path = samples / "police_stations_cgcs2000_gk.shp"
        result = load_file(scratch_engine, path, "police_station")
        assert result.status == "loaded", [r.reason for r in result.rejects]
        assert result.crs == "EPSG:4548"
        assert _assert_near_truth(scratch_engine, "police_station", expected[path.name]["truth_wgs84"], 1.0) == 12

    def test_parks_polygons_repaired_or_rejected(self, scratch_engine, samples):
        path = samples / "pocket_parks_wgs84.geojson"
        result = load_file(scratch_engine, path, "pocket_park")
        assert result.status == "rejected"
        assert any(r.source_id == "KDGY009" for r in result.rejects)
        result = load_file(scratch_engine, path, "pocket_park", accept_partial=True)
        with scratch_engine.connect() as conn:
            rows = conn.execute(text("SELECT source_id, ST_IsValid(geom), GeometryType(geom), "
                                     "ST_Intersects(geom, point) FROM facility WHERE layer = 'pocket_park'")).all()
        ids = {r[0] for r in rows}
        assert "KDGY009" not in ids and len(rows) in (13, 14)
        assert all(r[1] and r[2] in ("POLYGON", "MULTIPOLYGON") and r[3] for r in rows)

    def test_excel_parking_full_width_dms_negative(self, scratch_engine, samples, expected):
        path = samples / "parking_lots_wgs84.xlsx"
        result = load_file(scratch_engine, path, "parking", crs="wgs84", accept_partial=True)
        rejected = {r.source_id or "": r.reason for r in result.rejects}
        assert any("capacity" in reason for reason in rejected.values())
        assert _count(scratch_engine, "parking") == 19
        truth = expected[path.name]["truth_wgs84"]
        assert _assert_near_truth(scratch_engine, "parking", truth, 1.0) == 19
        stored = _positions(scratch_engine, "parking")
        assert "示例机关停车场3" in stored and "示例机关停车场7" in stored
        assert "示例机关停车场10" not in stored

    def test_every_facility_gets_its_district(self, scratch_engine, samples):
        load_file(scratch_engine, samples / "village_clinics_bd09.csv", "village_clinic", crs="bd09")
        with scratch_engine.connect() as conn:
            wrong = conn.execute(text(
                "SELECT count(*) FROM facility f JOIN district d ON ST_Intersects(d.geom, f.point) "
                "WHERE d.adcode IS DISTINCT FROM f.district_adcode")).scalar_one()
            missing = conn.execute(text("SELECT count(*) FROM facility WHERE district_adcode IS NULL")).scalar_one()
        assert (wrong, missing) == (0, 0)


class TestCommandLine:
    def test_dry_run_writes_nothing_and_reports(self, scratch_app, scratch_engine, samples, tmp_path):
        report = tmp_path / "report.json"
        result = scratch_app.test_cli_runner().invoke(args=[
            "etl", "load", str(samples / "village_clinics_bd09.csv"), "--layer", "village_clinic",
            "--crs", "bd09", "--dry-run", "--report-json", str(report)])
        assert result.exit_code == 0, result.output
        assert _count(scratch_engine) == 0
        body = json.loads(report.read_text(encoding="utf-8"))
        assert body["status"] == "dry_run" and body["accepted"] == 30
        assert len(body["accepted_rows"]) == 30 and {"lon", "lat", "row"} <= set(body["accepted_rows"][0])

    def test_rejected_rows_are_printed_with_row_and_reason(self, scratch_app, scratch_engine, samples):
        result = scratch_app.test_cli_runner().invoke(args=[
            "etl", "load", str(samples / "parking_lots_wgs84.xlsx"), "--layer", "parking", "--crs", "wgs84"])
        assert result.exit_code == 1
        assert "rejected row" in result.output and "capacity" in result.output
        assert "nothing was written" in result.output
        assert _count(scratch_engine) == 0

    def test_missing_crs_is_an_error_not_a_guess(self, scratch_app, samples):
        result = scratch_app.test_cli_runner().invoke(args=[
            "etl", "load", str(samples / "village_clinics_bd09.csv"), "--layer", "village_clinic"])
        assert result.exit_code == 2
        assert "crs" in result.output.lower()

    def test_unknown_layer_lists_the_keys(self, scratch_app, samples):
        result = scratch_app.test_cli_runner().invoke(args=[
            "etl", "load", str(samples / "village_clinics_bd09.csv"), "--layer", "parks"])
        assert result.exit_code != 0 and "village_clinic" in result.output

    def test_unreadable_file_is_a_clear_error(self, scratch_engine, tmp_path):
        bad = tmp_path / "facilities.docx"
        bad.write_bytes(b"not a table")
        with pytest.raises(InvalidRequest, match="docx"):
            load_file(scratch_engine, bad, "service_office", crs="wgs84")


class TestReloadsRespectEdits:
    def test_a_reload_keeps_an_editors_correction_and_retirement(self, scratch_engine, samples, tmp_path):
        path = samples / "village_clinics_bd09.csv"
        load_file(scratch_engine, path, "village_clinic", crs="bd09")
        with scratch_engine.begin() as conn:
            conn.execute(text("UPDATE facility SET name = '更正后的名称', status = 'retired' "
                              "WHERE source_id = '示例村1卫生室'"))
        again = load_file(scratch_engine, path, "village_clinic", crs="bd09")
        assert (again.inserted, again.updated) == (0, 0)
        with scratch_engine.connect() as conn:
            row = conn.execute(text("SELECT name, status FROM facility WHERE source_id = '示例村1卫生室'")).one()
        assert tuple(row) == ("更正后的名称", "retired")

        # When the source itself changes the row, the new data is taken, but a retirement stands.
        changed = tmp_path / "clinics.csv"
        changed.write_text(path.read_text(encoding="utf-8-sig").replace("示例村1,", "示例村1（新址）,"),
                           encoding="utf-8-sig")
        result = load_file(scratch_engine, changed, "village_clinic", crs="bd09")
        assert (result.inserted, result.updated) == (0, 1)
        with scratch_engine.connect() as conn:
            row = conn.execute(text("SELECT name, status, attrs::text FROM facility "
                                    "WHERE source_id = '示例村1卫生室'")).one()
        assert row[0] == "示例村1卫生室" and row[1] == "retired" and "示例村1（新址）" in row[2]


class TestLargeFilesInPieces:
    def test_a_file_read_in_pieces_loads_exactly_as_whole(self, scratch_engine, samples):
        """Row numbers run on across pieces; a repeat in a later piece still collapses."""
        path = samples / "service_offices_gcj02_gbk.csv"
        whole = load_file(scratch_engine, path, "service_office", crs="gcj02", dry_run=True)
        pieces = load_file(scratch_engine, path, "service_office", crs="gcj02", dry_run=True, chunk_rows=4)
        assert [(r.row, r.source_id) for r in pieces.rejects] == [(r.row, r.source_id) for r in whole.rejects]
        assert pieces.accepted.row == whole.accepted.row
        assert pieces.accepted.source_id.count("ZZ-ZW-70021") == 1
        loaded = load_file(scratch_engine, path, "service_office", crs="gcj02", accept_partial=True, chunk_rows=4)
        assert loaded.inserted == len(whole.accepted) == _count(scratch_engine)

    def test_a_repeat_is_judged_by_one_rule_whole_or_in_pieces(self, scratch_engine, tmp_path):
        """A repeat 49.9 m due north (geodesic, WGS-84 ellipsoid) is the same place, read whole or in
        pieces; a sphere of radius 6,370,986 m would put it 50.02 m away, past the 50 m rule."""
        lon, lat = 117.555, 34.86
        north_lon, north_lat, _ = GEOD.fwd(lon, lat, 0.0, 49.9)
        assert GEOD.inv(lon, lat, north_lon, north_lat)[2] < 50.0 < math.radians(north_lat - lat) * 6_370_986
        path = tmp_path / "offices.csv"
        rows = [f"SO{i},便民服务点{i},117.56{i},34.87" for i in range(4)]
        rows.insert(1, f"SO9,便民服务点9,{lon},{lat}")
        rows.append(f"SO9,便民服务点9,{north_lon:.9f},{north_lat:.9f}")  # line 7 repeats line 3
        path.write_text("\n".join(["编号,名称,经度,纬度", *rows]) + "\n", encoding="utf-8")
        whole = load_file(scratch_engine, path, "service_office", crs="wgs84", dry_run=True)
        pieces = load_file(scratch_engine, path, "service_office", crs="wgs84", chunk_rows=2)
        for result in (whole, pieces):
            assert result.rejects == [] and len(result.accepted) == 5
            assert any("row 7 (SO9) repeats row 3" in n for n in result.notes), result.notes
        assert pieces.status == "loaded" and _count(scratch_engine) == 5

    def test_a_conflicting_repeat_in_a_later_piece_is_rejected(self, scratch_engine, tmp_path):
        path = tmp_path / "offices.csv"
        lines = ["编号,名称,经度,纬度"] + [f"SO{i},便民服务点{i},117.55{i},34.86" for i in range(6)]
        lines.append("SO1,另一个名字,117.551,34.86")  # line 8 repeats SO1 (line 3) with another name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        result = load_file(scratch_engine, path, "service_office", crs="wgs84", chunk_rows=3)
        assert result.status == "rejected" and _count(scratch_engine) == 0
        assert [(r.row, r.source_id) for r in result.rejects] == [(8, "SO1")]
        assert "row 3" in result.rejects[0].reason
