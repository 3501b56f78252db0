"""The sample files of ``shared/samples`` through the pure ETL (read -> normalise -> validate), no database.

Every sample behaves as its README and expected.json
say; expected values come from expected.json or are worked by hand, never
from the code's own output.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Point

from etl.errors import Reject
from etl.normalise import normalise
from etl.read import read_source
from etl.validate import validate
from geo.crs import normalise_crs
from geo.parse import geometries_to_wgs84

SHARED = Path(os.environ.get("MINSHENG_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
SAMPLES = SHARED / "samples"
BOUNDARIES = SHARED / "data" / "boundaries" / "amap2020_zaozhuang_districts.geojson"
GEOD = Geod(ellps="WGS84")

needs_samples = pytest.mark.skipif(not (SAMPLES / "expected.json").is_file(),
                                   reason=f"shared samples not found at {SAMPLES}")
EXPECTED: dict = (json.loads((SAMPLES / "expected.json").read_text("utf-8"))
                  if (SAMPLES / "expected.json").is_file() else {})
#: Metres a converted point may be from its truth (README: 1 m GCJ-02, 2 m BD-09).
TOLERANCE_M = {"gcj02": 1.0, "bd09": 2.0}
#: Files whose CRS is in the file itself (.prj; GeoJSON is WGS-84 by RFC 7946).
SELF_DESCRIBING = (".shp", ".geojson")


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance in metres between two lon/lat points (WGS-84)."""
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


@pytest.fixture(scope="session")
def city():
    """Zaozhuang in WGS-84: union of the AMap districts (GCJ-02 per the data README)."""
    if not BOUNDARIES.is_file():
        pytest.skip(f"boundary not found at {BOUNDARIES}")
    districts = gpd.read_file(BOUNDARIES)
    return shapely.union_all(geometries_to_wgs84(districts.geometry.to_numpy(), "gcj02"))


@pytest.fixture(scope="session")
def loaded(city):
    """Every sample file read, normalised and validated once."""
    out = {}
    for name, exp in EXPECTED.items():
        raw = read_source(SAMPLES / name)
        crs = None if name.endswith(SELF_DESCRIBING) else exp["crs"]
        norm = normalise(raw, exp["layer"], crs=crs)
        out[name] = (raw, norm, validate(norm.records, exp["layer"], city))
    return out


def by_id(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for rec in records:
        out.setdefault(rec["source_id"], []).append(rec)
    return out


def all_rejects(norm, val) -> list[Reject]:
    return norm.rejects + val.rejects


def all_notes(norm, val) -> str:
    return "\n".join(norm.notes + val.notes)


# --- the sample files --------------------------------------------------------

@needs_samples
class TestSamples:
    @pytest.mark.parametrize("name", list(EXPECTED))
    def test_row_count(self, loaded, name):
        raw, _, _ = loaded[name]
        assert len(raw.frame) == EXPECTED[name]["rows"]
        assert len(raw.row_numbers) == EXPECTED[name]["rows"]

    @pytest.mark.parametrize("name", list(EXPECTED))
    def test_every_row_is_accepted_rejected_or_collapsed(self, loaded, name):
        raw, norm, val = loaded[name]
        rows = set(raw.row_numbers)
        accepted = {r["row"] for r in val.accepted}
        rejected = {r.row for r in all_rejects(norm, val)}
        assert not accepted & rejected
        assert accepted | rejected <= rows

    @pytest.mark.parametrize("name", [n for n in EXPECTED if "truth_wgs84" in EXPECTED[n]])
    def test_points_match_truth(self, loaded, name):
        exp = EXPECTED[name]
        tolerance = TOLERANCE_M.get(normalise_crs(exp["crs"]), 1.0)
        _, _, val = loaded[name]
        assert val.accepted
        for rec in val.accepted:
            truth = exp["truth_wgs84"][rec["source_id"]]
            assert metres(truth, (rec["point"].x, rec["point"].y)) <= tolerance, rec["source_id"]

    @pytest.mark.parametrize("name", [n for n in EXPECTED if "truth_wgs84" in EXPECTED[n]])
    def test_truth_ids_not_named_in_cases_all_load(self, loaded, name):
        exp = EXPECTED[name]
        _, _, val = loaded[name]
        loaded_ids = {r["source_id"] for r in val.accepted}
        ordinary = set(exp["truth_wgs84"]) - set(exp.get("cases", {}))
        assert ordinary <= loaded_ids

    @pytest.mark.parametrize("name", list(EXPECTED))
    def test_rejects_name_row_and_reason(self, loaded, name):
        raw, norm, val = loaded[name]
        for reject in all_rejects(norm, val):
            assert reject.row in raw.row_numbers
            assert reject.reason.strip()
            assert reject.as_dict() == {"row": reject.row, "source_id": reject.source_id,
                                        "reason": reject.reason}

    @pytest.mark.parametrize("name", list(EXPECTED))
    def test_accepted_records_have_the_contract_keys(self, loaded, name):
        keys = {"row", "source_id", "name", "address", "phone", "opening_hours", "capacity",
                "opened_on", "kind", "attrs", "geom", "point"}
        _, _, val = loaded[name]
        for rec in val.accepted:
            assert keys <= set(rec)
            assert isinstance(rec["point"], Point)
            assert rec["capacity"] is None or isinstance(rec["capacity"], int)


@needs_samples
class TestServiceOfficesGbkGcj02:
    NAME = "service_offices_gcj02_gbk.csv"

    def test_gbk_headers_come_out_right(self, loaded):
        raw, norm, _ = loaded[self.NAME]
        assert raw.encoding in ("gbk", "gb18030")
        assert list(raw.frame.columns) == ["机构编号", "机构名称", "地址", "联系电话", "经度", "纬度", "办公时间"]
        assert norm.columns["lon"] == "经度" and norm.columns["lat"] == "纬度"
        assert norm.columns["name"] == "机构名称" and norm.columns["source_id"] == "机构编号"
        assert "coordinates from columns 经度/纬度 (GCJ-02)" in all_notes(norm, _)

    def test_missing_latitude_rejected_naming_column(self, loaded):
        _, norm, val = loaded[self.NAME]
        [reject] = [r for r in all_rejects(norm, val) if r.source_id == "ZZ-ZW-70003"]
        assert reject.row == 5  # header line 1, ZZ-ZW-70000 on line 2
        assert "纬度" in reject.reason and "empty" in reject.reason

    def test_swapped_never_loaded_as_is(self, loaded):
        _, norm, val = loaded[self.NAME]
        truth = EXPECTED[self.NAME]["truth_wgs84"]["ZZ-ZW-70007"]
        recs = by_id(val.accepted).get("ZZ-ZW-70007", [])
        if recs:
            assert metres(truth, (recs[0]["point"].x, recs[0]["point"].y)) <= 1.0
            assert "ZZ-ZW-70007" in all_notes(norm, val) and "swapped" in all_notes(norm, val)
        else:
            assert any(r.source_id == "ZZ-ZW-70007" for r in all_rejects(norm, val))

    def test_shanghai_rejected_as_outside(self, loaded):
        _, norm, val = loaded[self.NAME]
        [reject] = [r for r in all_rejects(norm, val) if r.source_id == "ZZ-ZW-70011"]
        assert reject.row == 13
        assert reject.reason.startswith("outside Zaozhuang")

    @pytest.mark.parametrize("sid, text", [("ZZ-ZW-70015", "<script>alert(1)</script>服务点"),
                                           ("ZZ-ZW-70019", "x'); DROP TABLE facility; --")])
    def test_html_and_sql_names_load_as_plain_text(self, loaded, sid, text):
        _, _, val = loaded[self.NAME]
        [rec] = by_id(val.accepted)[sid]
        assert rec["name"] == text

    def test_duplicate_collapses_to_one(self, loaded):
        _, norm, val = loaded[self.NAME]
        assert len(by_id(val.accepted)["ZZ-ZW-70021"]) == 1
        assert not any(r.source_id == "ZZ-ZW-70021" for r in all_rejects(norm, val))
        assert any("ZZ-ZW-70021" in n and "row 23" in n for n in val.notes)

    def test_accepted_count(self, loaded):
        # 41 rows - missing latitude - Shanghai - the repeated row
        assert len(loaded[self.NAME][2].accepted) == 38


@needs_samples
class TestVillageClinicsBd09:
    NAME = "village_clinics_bd09.csv"

    def test_utf8_bom(self, loaded):
        raw, _, _ = loaded[self.NAME]
        assert raw.encoding == "utf-8-sig"
        assert raw.frame.columns[0] == "名称"

    def test_yes_no_columns_are_booleans(self, loaded):
        _, _, val = loaded[self.NAME]
        attrs = {r["name"]: r["attrs"] for r in val.accepted}
        assert attrs["示例村1卫生室"] == {"所属村": "示例村1", "康复理疗设备": True, "智慧随访设备": True}
        assert attrs["示例村6卫生室"]["康复理疗设备"] is False

    def test_name_is_the_id_and_the_notes_say_so(self, loaded):
        _, norm, val = loaded[self.NAME]
        assert all(r["source_id"] == r["name"] for r in val.accepted)
        assert any("used as source_id" in n for n in norm.notes)
        assert len(val.accepted) == 30


@needs_samples
class TestPoliceStationsShapefile:
    NAME = "police_stations_cgcs2000_gk.shp"

    def test_crs_from_prj(self, loaded):
        raw, norm, _ = loaded[self.NAME]
        assert raw.format == "shapefile"
        assert raw.crs == normalise_crs(EXPECTED[self.NAME]["crs"]) == norm.crs
        assert raw.row_numbers == list(range(1, 13))

    def test_fields(self, loaded):
        _, _, val = loaded[self.NAME]
        [rec] = by_id(val.accepted)["JWZ000"]
        assert rec["name"] == "示例便民警务站1"
        assert rec["opened_on"] == dt.date(2022, 3, 1)
        assert len(val.accepted) == 12


@needs_samples
class TestPocketParksGeojson:
    NAME = "pocket_parks_wgs84.geojson"

    def test_null_geometry_rejected(self, loaded):
        _, norm, val = loaded[self.NAME]
        [reject] = [r for r in all_rejects(norm, val) if r.source_id == "KDGY009"]
        assert reject.row == 10 and "geometry is null" in reject.reason

    def test_self_intersection_repaired_or_rejected(self, loaded):
        _, norm, val = loaded[self.NAME]
        recs = by_id(val.accepted).get("KDGY005", [])
        if recs:
            assert recs[0]["geom"].is_valid
            assert any("KDGY005" in n and "repaired" in n for n in val.notes)
        else:
            assert any(r.source_id == "KDGY005" for r in all_rejects(norm, val))

    def test_parks_stay_polygons(self, loaded):
        raw, _, val = loaded[self.NAME]
        assert raw.crs == "wgs84"
        assert len(val.accepted) >= 13
        for rec in val.accepted:
            assert rec["geom"].geom_type in ("Polygon", "MultiPolygon") and rec["geom"].is_valid
            assert rec["geom"].contains(rec["point"])


@needs_samples
class TestParkingXlsx:
    NAME = "parking_lots_wgs84.xlsx"

    def test_negative_capacity_rejected(self, loaded):
        _, norm, val = loaded[self.NAME]
        [reject] = [r for r in all_rejects(norm, val) if r.source_id == "示例机关停车场10"]
        assert reject.row == 11
        assert "capacity is -5; must be 0 or more" in reject.reason

    @pytest.mark.parametrize("sid", ["示例机关停车场3", "示例机关停车场7"])
    def test_full_width_and_dms_load(self, loaded, sid):
        _, _, val = loaded[self.NAME]
        [rec] = by_id(val.accepted)[sid]
        truth = EXPECTED[self.NAME]["truth_wgs84"][sid]
        assert metres(truth, (rec["point"].x, rec["point"].y)) <= 1.0

    def test_fields(self, loaded):
        _, norm, val = loaded[self.NAME]
        [rec] = by_id(val.accepted)["示例机关停车场1"]
        assert rec["capacity"] == 29
        assert rec["opening_hours"] == "工作日18:00-次日8:00，节假日全天"
        assert norm.columns["capacity"] == "车位数"
        assert len(val.accepted) == 19
