"""The pure ETL on hand-made inputs (numbers, encodings, formats, columns, CRS, validation), no database.

Expected values are worked by hand, never taken from the code's own output.
The sample files are tested in ``tests/test_etl_samples.py``.
"""
from __future__ import annotations

import datetime as dt
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook
from shapely.geometry import LineString, Point, Polygon, box

from etl.errors import ETLError
from etl.normalise import detect_columns, normalise, resolve_crs
from etl.read import read_source
from etl.validate import validate
from geo.parse import parse_coordinate, parse_coordinates, parse_dms, parse_integer
from tests.test_etl_samples import metres

# --- numbers -----------------------------------------------------------------

DMS_CASES = [
    ("117°33′12.00″E", 117 + 33 / 60 + 12 / 3600),
    ("34°52'5\"N", 34 + 52 / 60 + 5 / 3600),
    ("117度33分12秒", 117 + 33 / 60 + 12 / 3600),
    ("北纬34度52分5秒", 34 + 52 / 60 + 5 / 3600),
    ("34°52′5″S", -(34 + 52 / 60 + 5 / 3600)),
    ("117°33′12″W", -(117 + 33 / 60 + 12 / 3600)),
    ("E117°33.5′", 117 + 33.5 / 60),
    ("117 33 12", 117 + 33 / 60 + 12 / 3600),
    ("１１７°３３′１２″Ｅ", 117 + 33 / 60 + 12 / 3600),
    ("-34°30′", -34.5),
]


class TestNumbers:
    @pytest.mark.parametrize("text, value", [
        ("１１７．５", 117.5), ("１１７．０４１２９３", 117.041293), (" 117.5 ", 117.5),
        ("117. 5", 117.5), ("１１７，５", 117.5), ("3,852,140.65", 3852140.65), ("\u3000３４．８\u3000", 34.8),
    ])
    def test_full_width_spaces_and_commas(self, text, value):
        assert parse_coordinate(text) == pytest.approx(value, abs=1e-12)

    @pytest.mark.parametrize("text, value", DMS_CASES)
    def test_dms(self, text, value):
        assert parse_coordinate(text) == pytest.approx(value, abs=1e-12)

    @pytest.mark.parametrize("text", ["abc", "", "34°61′", "34°52′61″", "N34°52′5″S", "nan", "inf"])
    def test_unreadable(self, text):
        assert parse_coordinate(text) is None

    def test_parse_dms_rejects_plain_words(self):
        assert parse_dms("north") is None

    def test_vectorised(self):
        got = parse_coordinates(pd.Series(["117.5", "", "abc", "117°30′E", None, "１１７．２５"], dtype=object))
        np.testing.assert_array_equal(np.isnan(got), [False, True, True, False, True, False])
        np.testing.assert_allclose(got[[0, 3, 5]], [117.5, 117.5, 117.25])

    @pytest.mark.parametrize("text, value", [("120", 120), ("１２０个", 120), ("1,200", 1200), ("29.0", 29),
                                             ("-5", -5), ("29.5", None), ("many", None)])
    def test_integers(self, text, value):
        assert parse_integer(text) == value


# --- reading -----------------------------------------------------------------

HEADER_ZH = "名称,经度,纬度\n"


class TestEncodings:
    def test_gbk(self, tmp_path):
        path = tmp_path / "gbk.csv"
        path.write_bytes((HEADER_ZH + "枣庄市中区便民服务中心,117.5,34.8\n").encode("gbk"))
        raw = read_source(path)
        assert raw.encoding == "gbk"
        assert list(raw.frame.columns) == ["名称", "经度", "纬度"]
        assert raw.frame.iloc[0, 0] == "枣庄市中区便民服务中心"

    def test_gb18030_only_characters(self, tmp_path):
        path = tmp_path / "gb18030.csv"
        text = HEADER_ZH + "𠮷村卫生室,117.5,34.8\n"  # U+20BB7 is not in GBK
        path.write_bytes(text.encode("gb18030"))
        raw = read_source(path)
        assert raw.encoding == "gb18030"
        assert raw.frame.iloc[0, 0] == "𠮷村卫生室"

    def test_utf8_bom(self, tmp_path):
        path = tmp_path / "bom.csv"
        path.write_bytes((HEADER_ZH + "示例,117.5,34.8\n").encode("utf-8-sig"))
        raw = read_source(path)
        assert raw.encoding == "utf-8-sig"
        assert list(raw.frame.columns) == ["名称", "经度", "纬度"]

    def test_utf8(self, tmp_path):
        path = tmp_path / "utf8.csv"
        path.write_text(HEADER_ZH + "滕州市示例,117.5,34.8\n", encoding="utf-8")
        raw = read_source(path)
        assert raw.encoding == "utf-8" and raw.frame.iloc[0, 0] == "滕州市示例"

    def test_row_numbers_skip_blank_lines(self, tmp_path):
        path = tmp_path / "blank.csv"
        path.write_text(HEADER_ZH + "a,117.5,34.8\n\nb,117.6,34.9\n", encoding="utf-8")
        raw = read_source(path)
        assert raw.row_numbers == [2, 4]

    def test_shapefile_gbk_without_cpg(self, tmp_path):
        path = tmp_path / "gbk.shp"
        frame = gpd.GeoDataFrame({"名称": ["山亭区示例警务站"]}, geometry=[Point(117.4, 35.1)], crs=4326)
        frame.to_file(path, encoding="GBK")
        path.with_suffix(".cpg").unlink(missing_ok=True)
        raw = read_source(path)
        assert raw.frame["名称"].tolist() == ["山亭区示例警务站"]

    def test_shapefile_utf8_without_cpg(self, tmp_path):
        path = tmp_path / "utf8.shp"
        frame = gpd.GeoDataFrame({"name": ["台儿庄区示例警务站"]}, geometry=[Point(117.7, 34.6)], crs=4326)
        frame.to_file(path, encoding="UTF-8")
        path.with_suffix(".cpg").unlink(missing_ok=True)
        raw = read_source(path)
        assert raw.frame["name"].tolist() == ["台儿庄区示例警务站"]
        assert raw.encoding == "utf-8"


class TestFormats:
    @pytest.mark.parametrize("suffix", [".txt", ".xls", ".kml", ""])
    def test_unknown_extension_names_allowed(self, tmp_path, suffix):
        path = tmp_path / f"facilities{suffix}"
        path.write_text("x", encoding="utf-8")
        with pytest.raises(ETLError, match=r"\.csv.*\.xlsx.*\.geojson.*\.shp.*\.gpkg"):
            read_source(path)

    def test_geopackage_round_trip(self, tmp_path):
        # Truth points (WGS-84) written in EPSG:4548 metres by geopandas/pyproj.
        truth = {"JWZ000": (117.543781, 34.796401), "JWZ001": (117.653878, 34.876835)}
        frame = gpd.GeoDataFrame({"编号": list(truth), "名称": ["示例站一", "示例站二"]},
                                 geometry=[Point(*p) for p in truth.values()], crs=4326).to_crs(4548)
        path = tmp_path / "stations.gpkg"
        frame.to_file(path, layer="stations", driver="GPKG")
        raw = read_source(path)
        assert raw.format == "gpkg" and raw.crs == "EPSG:4548" and raw.row_numbers == [1, 2]
        norm = normalise(raw, "police_station")
        assert [r["name"] for r in norm.records] == ["示例站一", "示例站二"]
        for rec in norm.records:
            assert metres(truth[rec["source_id"]], (rec["geom"].x, rec["geom"].y)) < 0.01

    def test_xlsx_title_row_and_row_numbers(self, tmp_path):
        book = Workbook()
        sheet = book.active
        sheet.append(["枣庄市公共停车场名录"])
        sheet.append(["停车场名称", "车位数", "经度", "纬度"])
        sheet.append(["示例停车场", 12, 117.5, 34.8])
        path = tmp_path / "parking.xlsx"
        book.save(path)
        raw = read_source(path)
        assert list(raw.frame.columns) == ["停车场名称", "车位数", "经度", "纬度"]
        assert raw.row_numbers == [3]
        norm = normalise(raw, "parking", crs="wgs84")
        assert norm.records[0]["capacity"] == 12
        assert (norm.records[0]["geom"].x, norm.records[0]["geom"].y) == (117.5, 34.8)


# --- columns and CRS ---------------------------------------------------------

class TestColumns:
    def test_english_headers(self, tmp_path):
        path = tmp_path / "english.csv"
        path.write_text("ID,Name,Longitude,Latitude,Address,Tel,Hours,Capacity,Type,Opened,Notes\n"
                        "P1,Lot One,117.5,34.8,1 Example Rd,0632-1,8-18,40,new_public,2023/5/1,quiet\n",
                        encoding="utf-8")
        norm = normalise(read_source(path), "parking", crs="wgs84")
        assert norm.columns == {"lon": "Longitude", "lat": "Latitude", "source_id": "ID", "name": "Name",
                                "address": "Address", "phone": "Tel", "opening_hours": "Hours",
                                "capacity": "Capacity", "opened_on": "Opened", "kind": "Type"}
        [rec] = norm.records
        assert rec["source_id"] == "P1" and rec["name"] == "Lot One" and rec["capacity"] == 40
        assert rec["opened_on"] == dt.date(2023, 5, 1) and rec["kind"] == "new_public"
        assert rec["attrs"] == {"Notes": "quiet"}
        assert (rec["geom"].x, rec["geom"].y) == (117.5, 34.8)

    @pytest.mark.parametrize("headers, lon, lat", [
        (["经度(GCJ-02)", "纬度(GCJ-02)", "名称"], "经度(GCJ-02)", "纬度(GCJ-02)"),
        (["X坐标", "Y坐标"], "X坐标", "Y坐标"),
        (["LNG", "LAT"], "LNG", "LAT"),
        (["东经", "北纬"], "东经", "北纬"),
    ])
    def test_coordinate_names(self, headers, lon, lat):
        found = detect_columns(headers)
        assert (found["lon"], found["lat"]) == (lon, lat)

    def test_no_coordinate_columns(self):
        with pytest.raises(ETLError, match="no coordinate columns.*经度"):
            detect_columns(["名称", "地址"])

    def test_combined_column(self, tmp_path):
        path = tmp_path / "pair.csv"
        path.write_text('名称,经纬度\n示例,"117.5,34.8"\n', encoding="utf-8")
        [rec] = normalise(read_source(path), "service_office", crs="wgs84").records
        assert (rec["geom"].x, rec["geom"].y) == (117.5, 34.8)

    def test_unreadable_coordinate_names_column_and_value(self, tmp_path):
        path = tmp_path / "bad.csv"
        path.write_text(HEADER_ZH + "a,117.5,abc\n", encoding="utf-8")
        norm = normalise(read_source(path), "service_office", crs="wgs84")
        [reject] = norm.rejects
        assert reject.row == 2 and "纬度 is 'abc'" in reject.reason


class TestCrs:
    def test_precedence(self):
        assert resolve_crs("gcj02", "wgs84", "bd09")[0] == "gcj02"
        assert resolve_crs(None, "EPSG:4548", "gcj02")[0] == "EPSG:4548"
        assert resolve_crs(None, None, "bd09")[0] == "bd09"

    def test_no_crs_is_an_error(self, tmp_path):
        path = tmp_path / "nocrs.csv"
        path.write_text(HEADER_ZH + "a,117.5,34.8\n", encoding="utf-8")
        with pytest.raises(ETLError, match="no CRS: .*--crs"):
            normalise(read_source(path), "service_office")

    def test_unknown_crs_names_allowed(self, tmp_path):
        path = tmp_path / "x.csv"
        path.write_text(HEADER_ZH + "a,117.5,34.8\n", encoding="utf-8")
        with pytest.raises(ETLError, match="gcj02"):
            normalise(read_source(path), "service_office", crs="mars-ish")

    def test_default_used_only_when_nothing_else(self, tmp_path):
        path = tmp_path / "x.csv"
        path.write_text(HEADER_ZH + "a,117.5,34.8\n", encoding="utf-8")
        assert normalise(read_source(path), "service_office", default_crs="wgs84").crs == "wgs84"

    def test_explicit_crs_overrides_the_file(self, tmp_path):
        # ZZ-ZW-70000 as typed in the sample (GCJ-02) in a GeoJSON that claims
        # nothing, i.e. WGS-84 by RFC 7946; its truth is in expected.json.
        gcj, truth = (117.476290, 34.523707), (117.470376, 34.524759)
        path = tmp_path / "labelled_wgs84.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"id": "ZZ-ZW-70000", "name": "示例"},
             "geometry": {"type": "Point", "coordinates": list(gcj)}}]}), encoding="utf-8")
        raw = read_source(path)
        assert raw.crs == "wgs84"
        as_file = normalise(raw, "service_office").records[0]["geom"]
        assert (as_file.x, as_file.y) == gcj
        norm = normalise(raw, "service_office", crs="gcj02")
        assert norm.crs == "gcj02"
        geom = norm.records[0]["geom"]
        assert metres(truth, (geom.x, geom.y)) <= 1.0
        assert any("--crs wins" in n for n in norm.notes)


# --- validate ----------------------------------------------------------------

CITY = box(117.0, 34.5, 117.8, 35.3)


def record(row: int, sid: str | None, name: str | None, geom, **extra) -> dict:
    rec = {"row": row, "source_id": sid, "name": name, "address": None, "phone": None,
           "opening_hours": None, "capacity": None, "opened_on": None, "kind": None, "attrs": {},
           "geom": geom}
    rec.update(extra)
    return rec


class TestValidate:
    def test_swapped_point_is_fixed_with_a_note(self):
        val = validate([record(2, "A", "a", Point(34.8, 117.5))], "service_office", CITY)
        [rec] = val.accepted
        assert (rec["geom"].x, rec["geom"].y) == (117.5, 34.8) and rec["point"] == rec["geom"]
        assert "row 2 (A)" in val.notes[0] and "swapped" in val.notes[0]

    def test_outside(self):
        val = validate([record(3, "B", "b", Point(121.47, 31.23))], "service_office", CITY)
        [reject] = val.rejects
        assert (reject.row, reject.source_id) == (3, "B")
        assert reject.reason.startswith("outside Zaozhuang: (121.470000, 31.230000)")

    @pytest.mark.parametrize("name", [None, "", "   "])
    def test_empty_name(self, name):
        [reject] = validate([record(2, "A", name, Point(117.5, 34.8))], "service_office", CITY).rejects
        assert reject.reason == "name is empty"

    @pytest.mark.parametrize("capacity, reason", [
        (-5, "capacity is -5; must be 0 or more"),
        ("-5", "capacity is -5; must be 0 or more"),
        ("lots", "capacity is 'lots'; must be a whole number, 0 or more"),
        (2.5, "capacity is 2.5; must be a whole number, 0 or more"),
    ])
    def test_bad_capacity(self, capacity, reason):
        [reject] = validate([record(2, "A", "a", Point(117.5, 34.8), capacity=capacity)], "parking", CITY).rejects
        assert reject.reason == reason

    def test_capacity_text_becomes_int(self):
        [rec] = validate([record(2, "A", "a", Point(117.5, 34.8), capacity="12")], "parking", CITY).accepted
        assert rec["capacity"] == 12

    def test_bowtie_polygon_repaired(self):
        bowtie = Polygon([(117.1, 34.6), (117.2, 34.7), (117.2, 34.6), (117.1, 34.7), (117.1, 34.6)])
        val = validate([record(2, "P", "p", bowtie)], "pocket_park", CITY)
        [rec] = val.accepted
        assert rec["geom"].is_valid and rec["geom"].geom_type in ("Polygon", "MultiPolygon")
        assert rec["geom"].area == pytest.approx(0.005)  # two triangles of 0.1 x 0.05 / 2
        assert "repaired" in val.notes[0]

    def test_collapsed_polygon_rejected(self):
        flat = Polygon([(117.1, 34.6), (117.2, 34.6), (117.3, 34.6), (117.1, 34.6)])
        [reject] = validate([record(2, "P", "p", flat)], "pocket_park", CITY).rejects
        assert "nothing polygonal remains" in reject.reason

    def test_point_for_polygon_layer_rejected(self):
        [reject] = validate([record(2, "P", "p", Point(117.5, 34.8))], "pocket_park", CITY).rejects
        assert "needs polygons" in reject.reason

    def test_polygon_for_point_layer_uses_a_point(self):
        square = box(117.5, 34.8, 117.51, 34.81)
        val = validate([record(2, "A", "a", square)], "service_office", CITY)
        [rec] = val.accepted
        assert rec["geom"].geom_type == "Point" and square.contains(rec["geom"])
        assert "representative point" in val.notes[0]

    def test_line_for_point_layer_rejected(self):
        line = LineString([(117.5, 34.8), (117.6, 34.9)])
        [reject] = validate([record(2, "A", "a", line)], "service_office", CITY).rejects
        assert "LineString" in reject.reason

    def test_duplicates(self):
        records = [record(2, "A", "a", Point(117.5, 34.8)),
                   record(3, "A", "a", Point(117.5, 34.8001)),   # ~11 m: the same place
                   record(4, "A", "other", Point(117.5, 34.8)),  # another name
                   record(5, "A", "a", Point(117.5, 34.801))]    # ~111 m: another place
        val = validate(records, "service_office", CITY)
        assert [r["row"] for r in val.accepted] == [2]
        assert val.notes == ["row 3 (A) repeats row 2; loaded once"]
        assert [r.row for r in val.rejects] == [4, 5]
        assert all("row 2" in r.reason for r in val.rejects)
        assert "111 m" in val.rejects[1].reason

    def test_city_must_be_lon_lat_polygon(self):
        with pytest.raises(ETLError, match="Polygon or MultiPolygon"):
            validate([], "service_office", Point(117.5, 34.8))
        with pytest.raises(ETLError, match="lon/lat"):
            validate([], "service_office", box(500000, 3800000, 600000, 3900000))
