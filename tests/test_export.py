"""Exports: every layer and the population grid leave as GeoJSON, GeoPackage,
zipped Shapefile, CSV and XLSX that GDAL, pandas and openpyxl open with the
Chinese text intact.

Expected figures are the demo city's published facts (2,500 offices, 37
police stations, 61 + 12 parks, 6,235 + 3,528 parking spaces, 1,496 clinics,
3,855,601 people in the 2020 census), or counted by SQL written in the test.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import socket
import subprocess
import zipfile
from pathlib import Path

import mapbox_vector_tile
import pandas as pd
import pyproj
import pytest
import shapely
import shapely.geometry
from openpyxl import load_workbook
from sqlalchemy import text

from formats import geojson, tabular
from formats.tabular import csv_stream
from geo.crs import gcj02_to_wgs84
from tests.conftest import THROWAWAY_SITES
from web import create_app
from web.downloads import csv_response, geojson_response

#: Sites per layer in the 2022 report (parking: lots of the demo, which holds the report's spaces).
REPORT_COUNTS = {"service_office": 2500, "police_station": 37, "pocket_park": 73, "parking": 170,
                 "village_clinic": 1496, "rehab_home": 21, "children_station": 10, "micro_fire_station": 16,
                 "hospice": 26, "tertiary_hospital": 8}
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
    lon, lat = shapely.get_coordinates(shapely.geometry.shape(first["geometry"]))[0]
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
    plain = json.loads(client.get("/export/police_station.geojson").get_data())
    r = client.get("/export/police_station.geojson?crs=gcj02")
    assert "non-standard" in r.headers["X-Coordinate-System"]
    shifted = json.loads(r.get_data())
    assert shifted["coordinate_system"] == "GCJ-02" and "NOT WGS-84" in shifted["crs_note"]
    geod = pyproj.Geod(ellps="WGS84")
    for a, b in zip(plain["features"], shifted["features"], strict=True):
        assert a["id"] == b["id"]
        (lon1, lat1), (lon2, lat2) = a["geometry"]["coordinates"], b["geometry"]["coordinates"]
        _, _, metres = geod.inv(lon1, lat1, lon2, lat2)
        # GCJ-02 moves positions in Shandong by a few hundred metres, never by kilometres.
        assert 100 < metres < 1000


def test_gcj02_only_for_geojson(client):
    r = client.get("/export/police_station.csv?crs=gcj02")
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == "crs"


def gcj02_shift_m(lon: float, lat: float, lon2: float, lat2: float) -> float:
    return pyproj.Geod(ellps="WGS84").inv(lon, lat, lon2, lat2)[2]


def test_gcj02_moves_every_vertex_of_polygons_whose_rings_differ_in_length():
    outer = [[117.50, 34.80], [117.60, 34.80], [117.60, 34.90], [117.50, 34.90], [117.50, 34.80]]
    hole = [[117.52, 34.82], [117.54, 34.82], [117.53, 34.84], [117.52, 34.82]]  # four positions, not five
    island = [[117.70, 34.70], [117.71, 34.70], [117.70, 34.71], [117.70, 34.70]]
    features = [{"type": "Feature", "id": 1, "properties": {}, "geometry": {"type": "Polygon",
                                                                           "coordinates": [outer, hole]}},
                {"type": "Feature", "id": 2, "properties": {}, "geometry": {"type": "MultiPolygon",
                                                                           "coordinates": [[outer, hole], [island]]}}]
    moved = json.loads("[" + ",".join(geojson.to_gcj02(geojson.feature_texts(features))) + "]")
    polygon, multi = (f["geometry"]["coordinates"] for f in moved)
    assert [len(r) for r in polygon] == [5, 4] and [[len(r) for r in p] for p in multi] == [[5, 4], [4]]
    for rings, originals in ((polygon, [outer, hole]), (multi[0], [outer, hole]), (multi[1], [island])):
        for ring, original in zip(rings, originals, strict=True):
            for (lon, lat), (lon0, lat0) in zip(ring, original, strict=True):
                assert 100 < gcj02_shift_m(lon0, lat0, lon, lat) < 1000  # hundreds of metres in Shandong
                back = gcj02_to_wgs84(lon, lat)  # the inverse, solved by iteration, leads home
                assert abs(back[0] - lon0) < 1e-6 and abs(back[1] - lat0) < 1e-6


def test_geojson_opens_in_gdal_with_chinese_names(client, tmp_path):
    path = download(client, "/export/parking.geojson", tmp_path, "parking.geojson")
    info = ogrinfo("-al", str(path))
    assert feature_count(ogrinfo("-al", "-so", str(path))) == 170
    assert "示例" in info and "停车场" in info


def test_population_geojson_sums_to_the_census_and_cells_are_250m_squares(client):
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
    frame = pd.read_csv(io.BytesIO(client.get("/export/pocket_park.csv").get_data()), encoding="utf-8-sig")
    assert len(frame) == 73
    geoms = shapely.from_wkt(frame["wkt"].tolist())
    assert all(g.geom_type in ("Polygon", "MultiPolygon") for g in geoms)


def test_xlsx_opens_in_openpyxl_with_chinese_and_a_synthetic_note(client, tmp_path):
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


def test_an_empty_geopackage_keeps_its_fields(client, tmp_path):
    path = download(client, "/export/parking.gpkg?updated_since=2999-01-01T00:00:00Z", tmp_path, "none.gpkg")
    summary = ogrinfo("-al", "-so", str(path))
    assert feature_count(summary) == 0
    assert "capacity: " in summary and "district_name: " in summary and "opened_on: " in summary


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


def test_a_bbox_of_any_size_is_accepted(client):
    # 30° × 25°, most of eastern China: every police station of the report lies inside.
    doc = json.loads(client.get("/export/police_station.geojson?bbox=100,20,130,45").get_data())
    assert len(doc["features"]) == REPORT_COUNTS["police_station"]


def test_more_rows_than_an_xlsx_sheet_holds_is_a_400_naming_the_format(client, monkeypatch):
    monkeypatch.setattr(tabular, "XLSX_MAX_ROWS", 10)  # a sheet of ten rows: 37 stations do not fit
    r = client.get("/export/police_station.xlsx")
    assert r.status_code == 400
    body = r.get_json()["error"]
    assert body["parameter"] == "format" and "csv" in body["message"] and "10 rows" in body["message"]


# ------------------------------------------------------------------ a layer added to the registry
def test_a_layer_added_to_the_registry_is_exported_published_and_tiled(client, throwaway_layer, tmp_path):
    THROWAWAY, KIOSKS = throwaway_layer.key, THROWAWAY_SITES
    doc = json.loads(client.get(f"/export/{THROWAWAY}.geojson").get_data())
    assert sorted(f["properties"]["capacity"] for f in doc["features"]) == [5, 7, 11]
    assert feature_count(ogrinfo("-al", "-so", str(download(client, f"/export/{THROWAWAY}.gpkg", tmp_path,
                                                             "kiosks.gpkg")))) == len(KIOSKS)
    collections = client.get("/ogc/collections").get_json()["collections"]
    assert any(c["id"] == THROWAWAY and "Throw-away kiosks" in c["title"] for c in collections)
    page = client.get(f"/ogc/collections/{THROWAWAY}/items").get_json()
    assert page["numberMatched"] == len(KIOSKS)
    n = 2 ** 6  # zoom 6: every kiosk (and all of Zaozhuang) lies in one tile
    lon, lat, _ = KIOSKS[0]
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    tile = mapbox_vector_tile.decode(client.get(f"/tiles/{THROWAWAY}/6/{x}/{y}.mvt").get_data())
    assert len(tile[THROWAWAY]["features"]) == len(KIOSKS)
    layer_enum = client.get("/openapi.json").get_json()["paths"]["/export/{layer}.{fmt}"]["get"]["parameters"][0]
    assert THROWAWAY in layer_enum["schema"]["enum"]


@pytest.fixture(scope="module")
def unreachable_client():
    """The app with a database URL on a port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app({"DATABASE_URL": f"postgresql://minsheng@127.0.0.1:{port}/minsheng", "TESTING": True})
    return app.test_client()


@pytest.mark.parametrize("url", ["/export/parking.geojson", "/export/parking.csv", "/export/parking.gpkg",
                                 "/ogc/collections", "/ogc/collections/parking/items",
                                 "/ogc/collections/parking/items/1", "/tiles/parking/6/53/25.mvt"])
def test_an_unreachable_database_is_a_503_before_any_download_starts(unreachable_client, url):
    r = unreachable_client.get(url)
    assert r.status_code == 503 and r.is_json and r.get_json()["error"]["status"] == 503
    assert r.headers["Retry-After"]


# ------------------------------------------------------------------ the CLI and the helpers
def test_flask_export_command_writes_a_geopackage(runner, tmp_path):
    out = tmp_path / "parking.gpkg"
    result = runner.invoke(args=["export", "parking", "--format", "gpkg", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert feature_count(ogrinfo("-al", "-so", str(out))) == 170


def test_flask_export_command_rejects_an_unknown_layer(runner, tmp_path):
    result = runner.invoke(args=["export", "parks", "--format", "csv", "-o", str(tmp_path / "x.csv")])
    assert result.exit_code != 0 and "parks" in result.output


def test_flask_export_command_says_why_it_cannot_write(runner, tmp_path):
    result = runner.invoke(args=["export", "parking", "--format", "csv", "--crs", "gcj02", "-o",
                                 str(tmp_path / "parking.csv")])
    assert result.exit_code == 2 and "only offered for geojson" in result.output


def test_helpers_for_analysis_results(app):
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
    rows = [{"name": '=HYPERLINK("http://evil.example","点我")', "address": "@SUM(A1)", "capacity": -3,
             "phone": "0632-1234567"}]
    header, row = list(csv.reader(io.StringIO("".join(csv_stream([rows])).lstrip("\ufeff"))))
    assert row[0] == "'" + rows[0]["name"] and row[1] == "'@SUM(A1)"
    assert row[2:] == ["-3", "0632-1234567"]  # numbers and ordinary text untouched
