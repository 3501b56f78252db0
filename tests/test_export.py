"""Exports: every layer and the population grid leave as GeoJSON, GeoPackage,
zipped Shapefile, CSV and XLSX that GDAL, pandas and openpyxl open with the
Chinese text intact.

Expected figures are the demo city's published facts (2,500 offices, 37
police stations, 61 + 12 parks, 6,235 + 3,528 parking spaces, 1,496 clinics,
3,855,601 people in the 2020 census), or counted by SQL written in the test.
"""
from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text

REPORT_COUNTS = {"service_office": 2500, "police_station": 37, "pocket_park": 73, "parking": 170,
                 "village_clinic": 1496}
CENSUS_TOTAL = 3_855_601
SHIZHONG = "370402"  # 市中区
# Zaozhuang lies within these degrees (WGS-84); anything outside is a wrong CRS or axis order.
LON_RANGE, LAT_RANGE = (116.7, 117.9), (34.4, 35.4)


def ogrinfo(*args: str) -> str:
    out = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def feature_count(info: str) -> int:
    return sum(int(line.split(":")[1]) for line in info.splitlines() if line.startswith("Feature Count:"))


def download(client, url: str, tmp_path: Path, name: str) -> Path:
    r = client.get(url)
    assert r.status_code == 200, r.get_data(as_text=True)[:500]
    path = tmp_path / name
    path.write_bytes(r.get_data())
    return path


def sql_count(engine, where: str, params: dict | None = None) -> int:
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM facility WHERE status = 'active' AND {where}"),
                            params or {}).scalar_one()


# ------------------------------------------------------------------ GeoJSON
@pytest.mark.parametrize("layer,count", sorted(REPORT_COUNTS.items()))
def test_geojson_has_every_facility_of_the_report(client, layer, count):
    r = client.get(f"/export/{layer}.geojson")
    assert r.status_code == 200
    assert r.mimetype == "application/geo+json"
    assert r.is_streamed
    doc = json.loads(r.get_data())
    assert doc["type"] == "FeatureCollection" and "crs" not in doc  # RFC 7946: WGS-84, no crs member
    assert len(doc["features"]) == count
    assert doc["synthetic"] is True and "SYNTHETIC" in doc["notice"]
    first = doc["features"][0]
    lon, lat = (first["geometry"]["coordinates"] if first["geometry"]["type"] == "Point"
                else first["geometry"]["coordinates"][0][0])
    assert LON_RANGE[0] < lon < LON_RANGE[1] and LAT_RANGE[0] < lat < LAT_RANGE[1]
    assert all(f["properties"]["synthetic"] is True for f in doc["features"])


def test_parks_export_as_61_pocket_parks_and_12_parks_polygons(client):
    doc = json.loads(client.get("/export/pocket_park.geojson").get_data())
    kinds = [f["properties"]["kind"] for f in doc["features"]]
    assert kinds.count("pocket_park") == 61 and kinds.count("park") == 12
    assert {f["geometry"]["type"] for f in doc["features"]} <= {"Polygon", "MultiPolygon"}


def test_file_name_carries_layer_and_date(client):
    today = dt.date.today().isoformat()
    for fmt, ext in (("geojson", "geojson"), ("csv", "csv"), ("gpkg", "gpkg"), ("shp", "shp.zip"),
                     ("xlsx", "xlsx")):
        r = client.get(f"/export/police_station.{fmt}")
        assert r.status_code == 200
        assert r.headers["Content-Disposition"] == f'attachment; filename="police_station_{today}.{ext}"'


def test_district_filter_keeps_only_that_district(client, engine):
    doc = json.loads(client.get(f"/export/service_office.geojson?district={SHIZHONG}").get_data())
    assert {f["properties"]["district"] for f in doc["features"]} == {SHIZHONG}
    assert {f["properties"]["district_name"] for f in doc["features"]} == {"市中区"}
    expected = sql_count(engine, "layer = 'service_office' AND district_adcode = :d", {"d": SHIZHONG})
    assert len(doc["features"]) == expected > 0


def test_bbox_filter_keeps_features_inside(client, engine):
    box = (117.5, 34.8, 117.6, 34.9)
    doc = json.loads(client.get("/export/service_office.geojson?bbox=" + ",".join(map(str, box))).get_data())
    for f in doc["features"]:
        lon, lat = f["geometry"]["coordinates"]
        assert box[0] <= lon <= box[2] and box[1] <= lat <= box[3]
    expected = sql_count(engine, "layer = 'service_office' AND ST_X(geom) BETWEEN 117.5 AND 117.6"
                                 " AND ST_Y(geom) BETWEEN 34.8 AND 34.9")
    assert len(doc["features"]) == expected > 0


def test_updated_since_filter(client):
    past = json.loads(client.get("/export/police_station.geojson?updated_since=2000-01-01").get_data())
    future = json.loads(client.get("/export/police_station.geojson?updated_since=2999-01-01T00:00:00Z").get_data())
    assert len(past["features"]) == 37
    assert future["features"] == []


def test_gcj02_geojson_says_it_is_non_standard_and_is_shifted(client):
    import pyproj

    plain = json.loads(client.get("/export/police_station.geojson").get_data())
    r = client.get("/export/police_station.geojson?crs=gcj02")
    assert "non-standard" in r.headers["X-Coordinate-System"]
    shifted = json.loads(r.get_data())
    assert shifted["coordinate_system"] == "GCJ-02" and "NOT WGS-84" in shifted["crs_note"]
    geod = pyproj.Geod(ellps="WGS84")
    for a, b in zip(plain["features"], shifted["features"]):
        assert a["id"] == b["id"]
        (lon1, lat1), (lon2, lat2) = a["geometry"]["coordinates"], b["geometry"]["coordinates"]
        _, _, metres = geod.inv(lon1, lat1, lon2, lat2)
        # GCJ-02 moves positions in Shandong by a few hundred metres, never by kilometres.
        assert 100 < metres < 1000


def test_gcj02_only_for_geojson(client):
    r = client.get("/export/police_station.csv?crs=gcj02")
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == "crs"


def test_geojson_opens_in_gdal_with_chinese_names(client, tmp_path):
    path = download(client, "/export/parking.geojson", tmp_path, "parking.geojson")
    info = ogrinfo("-al", str(path))
    assert feature_count(ogrinfo("-al", "-so", str(path))) == 170
    assert "示例" in info and "停车场" in info


def test_population_geojson_sums_to_the_census_and_cells_are_250m_squares(client):
    import pyproj
    import shapely.geometry

    doc = json.loads(client.get("/export/population.geojson").get_data())
    cells = doc["features"]
    assert sum(f["properties"]["population"] for f in cells) == CENSUS_TOTAL
    geod = pyproj.Geod(ellps="WGS84")
    for f in cells[:: max(1, len(cells) // 200)]:
        poly = shapely.geometry.shape(f["geometry"])
        area, perimeter = geod.geometry_area_perimeter(poly)
        assert abs(abs(area) - 250 * 250) < 0.01 * 250 * 250  # a 250 m square, within 1 %
        assert abs(perimeter - 1000) < 10
        density = f["properties"]["population"] / 0.0625  # people per km²
        assert f["properties"]["class"] == ("urban" if density >= 1500 else "rural")
        assert f["properties"]["synthetic"] is True


# ------------------------------------------------------------------ GeoPackage and Shapefile
def test_geopackage_opens_in_gdal(client, tmp_path):
    path = download(client, "/export/pocket_park.gpkg", tmp_path, "parks.gpkg")
    summary = ogrinfo("-al", "-so", str(path))
    assert feature_count(summary) == 73
    assert "Multi Polygon" in summary and 'ID["EPSG",4326]' in summary
    full = ogrinfo("-al", str(path))
    assert "示例口袋公园" in full and "市中区" in full


def test_shapefile_zip_has_prj_and_cpg_and_opens_in_gdal(client, tmp_path):
    path = download(client, "/export/village_clinic.shp", tmp_path, "clinics.zip")
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"village_clinic.shp", "village_clinic.shx", "village_clinic.dbf", "village_clinic.prj",
                "village_clinic.cpg"} <= names
        assert zf.read("village_clinic.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
        assert "WGS" in zf.read("village_clinic.prj").decode()
    summary = ogrinfo("-al", "-so", f"/vsizip/{path}")
    assert feature_count(summary) == 1496
    full = ogrinfo("-al", "-where", "dist_name = '市中区'", f"/vsizip/{path}")
    assert "村卫生室" in full


def test_population_as_geopackage_polygons(client, tmp_path, engine):
    path = download(client, f"/export/population.gpkg?district={SHIZHONG}", tmp_path, "pop.gpkg")
    with engine.connect() as conn:
        expected = conn.execute(text("SELECT count(*) FROM demand_cell WHERE district_adcode = :d"),
                                {"d": SHIZHONG}).scalar_one()
    summary = ogrinfo("-al", "-so", str(path))
    assert feature_count(summary) == expected > 0 and "Polygon" in summary


# ------------------------------------------------------------------ CSV and XLSX
def test_csv_has_bom_and_excel_reads_chinese(client):
    import pandas as pd

    r = client.get("/export/parking.csv")
    raw = r.get_data()
    assert raw.startswith("\ufeff".encode("utf-8"))
    frame = pd.read_csv(io.BytesIO(raw), encoding="utf-8-sig", dtype={"district": str})
    assert len(frame) == 170
    assert {"longitude", "latitude", "name", "capacity"} <= set(frame.columns)
    spaces = frame.groupby("kind")["capacity"].sum().to_dict()
    assert spaces == {"government_offhours": 6235, "new_public": 3528}
    assert frame["longitude"].between(*LON_RANGE).all() and frame["latitude"].between(*LAT_RANGE).all()
    assert frame["name"].str.contains("停车场").all()


def test_polygon_csv_carries_wkt(client):
    import pandas as pd
    import shapely

    frame = pd.read_csv(io.BytesIO(client.get("/export/pocket_park.csv").get_data()), encoding="utf-8-sig")
    assert len(frame) == 73
    geoms = shapely.from_wkt(frame["wkt"].tolist())
    assert all(g.geom_type in ("Polygon", "MultiPolygon") for g in geoms)


def test_xlsx_opens_in_openpyxl_with_chinese_and_a_synthetic_note(client, tmp_path):
    from openpyxl import load_workbook

    path = download(client, "/export/police_station.xlsx", tmp_path, "police.xlsx")
    wb = load_workbook(path, read_only=True)
    rows = list(wb["police_station"].iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    assert len(body) == 37
    assert "longitude" in header and "latitude" in header
    names = [r[header.index("name")] for r in body]
    assert all("警务站" in n for n in names)
    about = " ".join(str(r[0]) for r in wb["说明 About"].iter_rows(values_only=True))
    assert "SYNTHETIC" in about and "WGS-84" in about


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("url,parameter", [
    ("/export/parks.geojson", "layer"),
    ("/export/parking.kml", "format"),
    ("/export/parking.geojson?district=110000", "district"),
    ("/export/parking.geojson?bbox=1,2,3", "bbox"),
    ("/export/parking.geojson?bbox=117.6,34.8,117.5,34.9", "bbox"),
    ("/export/parking.geojson?updated_since=yesterday", "updated_since"),
    ("/export/parking.geojson?crs=bd09", "crs"),
])
def test_bad_input_is_a_400_naming_the_parameter(client, url, parameter):
    r = client.get(url)
    assert r.status_code == 400
    body = r.get_json()["error"]
    assert body["parameter"] == parameter and body["message"]


# ------------------------------------------------------------------ the CLI and the helpers
def test_flask_export_command_writes_a_geopackage(runner, tmp_path):
    out = tmp_path / "parking.gpkg"
    result = runner.invoke(args=["export", "parking", "--format", "gpkg", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert feature_count(ogrinfo("-al", "-so", str(out))) == 170


def test_flask_export_command_rejects_an_unknown_layer(runner, tmp_path):
    result = runner.invoke(args=["export", "parks", "--format", "csv", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code != 0 and "parks" in result.output


def test_helpers_for_analysis_results(app):
    from web.downloads import csv_response, geojson_response

    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [117.55, 34.86]},
                 "properties": {"name": "缺口 gap", "population": 120}}]
    with app.test_request_context():
        g = geojson_response(iter(features), "gaps_parking_2022-06-30.geojson", members={"radius_m": 500})
        doc = json.loads(g.get_data())
        c = csv_response([{"name": "缺口", "longitude": 117.55, "latitude": 34.86}], "gaps.csv")
        body = c.get_data(as_text=True)
    assert g.mimetype == "application/geo+json"
    assert 'filename="gaps_parking_2022-06-30.geojson"' in g.headers["Content-Disposition"]
    assert doc["radius_m"] == 500 and doc["features"][0]["properties"]["name"] == "缺口 gap"
    assert body.startswith("\ufeffname,longitude,latitude\r\n缺口,117.55,34.86")


def test_spreadsheet_formulas_in_names_are_defused():
    from formats.tabular import csv_stream

    rows = [{"name": '=HYPERLINK("http://evil.example","点我")', "address": "@SUM(A1)", "capacity": -3,
             "phone": "0632-1234567"}]
    import csv

    header, row = list(csv.reader(io.StringIO("".join(csv_stream([rows])).lstrip("\ufeff"))))
    assert row[0] == "'" + rows[0]["name"] and row[1] == "'@SUM(A1)"
    assert row[2:] == ["-3", "0632-1234567"]  # numbers and ordinary text untouched
