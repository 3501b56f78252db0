"""A file's CRS that cannot be read: the load stops and names it, unless ``--crs`` says what it is.

A shapefile's ``.prj``, a GeoPackage's spatial reference table and a GeoJSON ``crs`` member are
made unreadable here; the positions expected are the ones written into the files.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import geopandas as gpd
import pytest
from pyproj import Transformer
from shapely.geometry import Point

from etl.errors import ETLError
from tests.test_etl_robust import load_file

TO_WGS84 = Transformer.from_crs("EPSG:4548", "EPSG:4326", always_xy=True)
#: Offices inside Zaozhuang in CGCS2000 / 3-degree Gauss-Kruger CM 117E (EPSG:4548), metres.
OFFICES_4548 = {"SO1": (547_000.0, 3_857_000.0), "SO2": (552_500.0, 3_861_200.0)}


class TestMalformedPrj:
    @pytest.fixture()
    def shapefile(self, samples, tmp_path) -> Path:
        for part in samples.glob("police_stations_cgcs2000_gk.*"):
            shutil.copy(part, tmp_path / part.name)
        (tmp_path / "police_stations_cgcs2000_gk.prj").write_text('PROJCS["broken', encoding="ascii")
        return tmp_path / "police_stations_cgcs2000_gk.shp"

    def test_crs_overrides_an_unreadable_prj(self, scratch_engine, shapefile, samples):
        expected = json.loads((samples / "expected.json").read_text("utf-8"))[shapefile.name]
        result = load_file(scratch_engine, shapefile, "police_station", crs="EPSG:4548", dry_run=True)
        assert result.crs == "EPSG:4548"
        assert any(".prj could not be read" in n and "--crs wins" in n for n in result.notes)
        truth = expected["truth_wgs84"]
        positions = zip(result.accepted.lon, result.accepted.lat, strict=True)
        got = dict(zip(result.accepted.source_id, positions, strict=True))
        checked = [k for k in truth if k in got]
        assert checked
        for key in checked:
            assert got[key] == pytest.approx(truth[key], abs=1e-5)

    def test_without_crs_the_message_names_the_prj(self, scratch_engine, shapefile):
        with pytest.raises(ETLError, match=r"police_stations_cgcs2000_gk\.prj could not be read.*--crs"):
            load_file(scratch_engine, shapefile, "police_station")


def _offices(path: Path, driver: str, crs: str | int) -> Path:
    frame = gpd.GeoDataFrame({"编号": list(OFFICES_4548), "名称": ["市民服务中心一", "市民服务中心二"]},
                             geometry=[Point(xy) for xy in OFFICES_4548.values()], crs=4548)
    frame.to_crs(crs).to_file(path, driver=driver)
    return path


def assert_converted_from_4548(result) -> None:
    """Each office loaded where its EPSG:4548 metres put it in WGS-84 (pyproj, 1e-6 degrees)."""
    got = dict(zip(result.accepted.source_id, zip(result.accepted.lon, result.accepted.lat, strict=True),
                   strict=True))
    for key, (x, y) in OFFICES_4548.items():
        lon, lat = TO_WGS84.transform(x, y)
        assert got[key] == pytest.approx((lon, lat), abs=1e-6)


class TestUnreadableGeoPackageCrs:
    @pytest.fixture()
    def geopackage(self, tmp_path) -> Path:
        """EPSG:4548 points whose spatial reference row holds a broken definition under a private code."""
        path = _offices(tmp_path / "offices.gpkg", "GPKG", 4548)
        with sqlite3.connect(path) as db:
            db.execute("INSERT INTO gpkg_spatial_ref_sys VALUES ('broken', 990001, 'NONE', 990001, "
                       "'PROJCS[\"broken', '')")
            db.execute("UPDATE gpkg_geometry_columns SET srs_id = 990001")
            db.execute("UPDATE gpkg_contents SET srs_id = 990001")
        return path

    def test_without_crs_the_message_names_the_geopackage(self, scratch_engine, geopackage):
        with pytest.raises(ETLError, match=r"CRS in offices\.gpkg could not be read.*--crs"):
            load_file(scratch_engine, geopackage, "service_office")

    def test_crs_overrides_it(self, scratch_engine, geopackage):
        result = load_file(scratch_engine, geopackage, "service_office", crs="EPSG:4548", dry_run=True)
        assert result.crs == "EPSG:4548"
        assert any("offices.gpkg could not be read" in n and "--crs wins" in n for n in result.notes)
        assert_converted_from_4548(result)


class TestUnreadableGeoJsonCrs:
    @pytest.fixture()
    def geojson(self, tmp_path) -> Path:
        """EPSG:4548 coordinates under a ``crs`` member that names no CRS (GDAL would read it as WGS-84)."""
        body = json.loads(_offices(tmp_path / "plain.geojson", "GeoJSON", 4548).read_text(encoding="utf-8"))
        body["crs"] = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4548x"}}
        path = tmp_path / "offices.geojson"
        path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")
        return path

    def test_without_crs_it_is_refused_not_read_as_wgs84(self, scratch_engine, geojson):
        with pytest.raises(ETLError, match=r"crs member of offices\.geojson names .*4548x.*--crs"):
            load_file(scratch_engine, geojson, "service_office")

    def test_crs_overrides_it(self, scratch_engine, geojson):
        result = load_file(scratch_engine, geojson, "service_office", crs="EPSG:4548", dry_run=True)
        assert result.crs == "EPSG:4548" and any("--crs wins" in n for n in result.notes)
        assert_converted_from_4548(result)
