"""Exports as files: typed fields, one geometry type per layer, nothing left on disk, a full disk said
clearly, HEAD without work, a bounded XLSX, and the village and roads collections.

Field types are read back with GDAL (ogrinfo); counts are SQL written here.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import shapely
from openpyxl import load_workbook
from sqlalchemy import text

from services import exporting
from tests.test_export import download, feature_count, ogrinfo
from web import create_app

ROOT = Path(__file__).resolve().parents[1]


def field_types(info: str) -> dict[str, str]:
    """``name: Type (width)`` lines of ``ogrinfo -so`` as {name: Type}."""
    out = {}
    for line in info.splitlines():
        if ": " in line and line.rstrip().endswith(")") and "(" in line:
            name, rest = line.split(": ", 1)
            out[name.strip()] = rest.split(" ")[0]
    return out


# ------------------------------------------------------------------ typed fields
def test_geopackage_keeps_dates_as_dates_and_capacity_as_integers(client, tmp_path):
    types = field_types(ogrinfo("-al", "-so", str(download(client, "/export/parking.gpkg", tmp_path, "p.gpkg"))))
    assert types["opened_on"] == "Date" and types["updated_at"] == "DateTime"
    assert types["capacity"].startswith("Integer") and types["synthetic"].startswith("Integer")


def test_shapefile_dates_are_dbf_dates(client, tmp_path):
    path = download(client, "/export/parking.shp", tmp_path, "p.zip")
    assert field_types(ogrinfo("-al", "-so", f"/vsizip/{path}"))["opened_on"] == "Date"
    full = ogrinfo("-al", "-where", "opened_on >= '2022/01/01'", f"/vsizip/{path}")
    assert "opened_on (Date) = 2022/" in full  # compared as dates, not as text


def test_parks_are_multipolygons_in_every_format(client, tmp_path):
    geojson = json.loads(client.get("/export/pocket_park.geojson").get_data())
    assert {f["geometry"]["type"] for f in geojson["features"]} == {"MultiPolygon"}
    assert "Multi Polygon" in ogrinfo("-al", "-so", str(download(client, "/export/pocket_park.gpkg", tmp_path,
                                                                  "p.gpkg")))
    frame = pd.read_csv(io.BytesIO(client.get("/export/pocket_park.csv").get_data()), encoding="utf-8-sig")
    assert {g.geom_type for g in shapely.from_wkt(frame["wkt"].tolist())} == {"MultiPolygon"}
    sheet = load_workbook(download(client, "/export/pocket_park.xlsx", tmp_path, "p.xlsx"), read_only=True)
    rows = list(sheet["pocket_park"].iter_rows(values_only=True))
    wkt = rows[0].index("wkt")
    assert {r[wkt].split(" ")[0] for r in rows[1:]} == {"MULTIPOLYGON"}


# ------------------------------------------------------------------ nothing left on disk
@pytest.fixture()
def export_dir_client(database_url, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    return create_app({"DATABASE_URL": database_url, "TESTING": True, "EXPORT_DIR": str(folder)}).test_client(), folder


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "xlsx"])
def test_file_exports_leave_nothing_in_the_export_folder(export_dir_client, fmt):
    client, folder = export_dir_client
    response = client.get(f"/export/police_station.{fmt}", buffered=False)
    assert response.status_code == 200
    assert list(folder.iterdir()) == []  # unlinked before the first byte is sent
    body = response.get_data()
    response.close()
    assert len(body) == int(response.headers["Content-Length"]) > 0 and list(folder.iterdir()) == []


def test_head_builds_no_file(export_dir_client, monkeypatch):
    client, folder = export_dir_client
    monkeypatch.setattr(exporting, "download", lambda *a, **k: pytest.fail("HEAD built the export"))
    r = client.head("/export/population.xlsx")
    assert r.status_code == 200 and r.headers["Content-Disposition"].startswith('attachment; filename="population_')
    assert r.mimetype == exporting.FORMATS["xlsx"].media_type and list(folder.iterdir()) == []
    assert client.head("/export/parks.xlsx").status_code == 400


# ------------------------------------------------------------------ a full disk
_SERVER = """
import resource, signal, sys
from werkzeug.serving import make_server
from web import create_app
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
limit = int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
server = make_server("127.0.0.1", 0, create_app({"DATABASE_URL": sys.argv[1], "EXPORT_DIR": sys.argv[2]}))
print(server.server_port, flush=True)
server.serve_forever()
"""


@pytest.fixture()
def cramped_server(database_url, tmp_path):
    """The app in a process that may not grow any file past 1 MiB (RLIMIT_FSIZE): the export folder is 'full'
    for anything bigger. A tmpfs of 1 MiB would do the same but needs mount rights; this needs none."""
    folder = tmp_path / "exports"
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", _SERVER, database_url, str(folder), str(1024 * 1024)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    yield f"http://127.0.0.1:{port}", folder
    proc.terminate()
    proc.wait(timeout=30)


def _fetch(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=300) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_a_full_disk_is_a_clear_507_and_small_exports_still_work(cramped_server):
    base, folder = cramped_server
    status, headers, body = _fetch(f"{base}/export/population.gpkg")  # about 18 MB: cannot be written
    assert status == 507 and headers["Content-Type"].startswith("application/json") and headers["Retry-After"]
    error = json.loads(body)["error"]
    assert "no space left" in error["message"] and "geojson" in error["allowed"]
    status, _, body = _fetch(f"{base}/export/police_station.gpkg")  # tens of kB: fits
    assert status == 200 and body[:16] == b"SQLite format 3\x00"
    status, _, body = _fetch(f"{base}/export/population.csv?district=370402")  # streamed: needs no file
    assert status == 200 and body.startswith("\ufeff".encode())
    time.sleep(0.2)
    assert list(folder.iterdir()) == []


# ------------------------------------------------------------------ bounded XLSX
def test_the_grid_as_one_spreadsheet_is_refused_before_any_work(client, engine):
    with engine.connect() as conn:
        cells = conn.execute(text("SELECT count(*) FROM demand_cell")).scalar_one()
    r = client.get("/export/population.xlsx")
    assert cells > exporting.XLSX_ROW_CAP and r.status_code == 400
    error = r.get_json()["error"]
    assert error["parameter"] == "format" and f"{cells:,}" in error["message"] and "csv" in error["allowed"]


# ------------------------------------------------------------------ villages and roads
def test_villages_and_roads_leave_in_every_format(client, engine, tmp_path):
    with engine.connect() as conn:
        villages = conn.execute(text("SELECT count(*) FROM village")).scalar_one()
        roads = conn.execute(text("SELECT count(*) FROM road_edge")).scalar_one()
        oneway = conn.execute(text("SELECT count(*) FROM road_edge WHERE drive AND (cost < 0) <> (reverse_cost < 0)"
                                   )).scalar_one()
    doc = json.loads(client.get("/export/village.geojson").get_data())
    assert len(doc["features"]) == villages > 0 and {"name", "district", "population"} <= set(
        doc["features"][0]["properties"])
    gpkg = ogrinfo("-al", "-so", str(download(client, "/export/roads.gpkg", tmp_path, "roads.gpkg")))
    assert feature_count(gpkg) == roads > 0 and "Line String" in gpkg
    types = field_types(gpkg)
    assert types["length_m"] == "Real" and types["oneway"].startswith("Integer")
    frame = pd.read_csv(io.BytesIO(client.get("/export/roads.csv").get_data()), encoding="utf-8-sig")
    assert len(frame) == roads and frame["oneway"].sum() == oneway
    with zipfile.ZipFile(download(client, "/export/roads.shp", tmp_path, "roads.zip")) as zf:
        assert "roads.dbf" in zf.namelist()
    assert os.path.getsize(tmp_path / "roads.zip") > 0
