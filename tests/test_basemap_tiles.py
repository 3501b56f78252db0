"""The offline basemap: vector tiles of roads, districts and place names from PostGIS, and operator archives.

Tiles are decoded with mapbox-vector-tile (an independent decoder) and
compared with the source tables; MBTiles and PMTiles archives are made here
with sqlite3 and the pmtiles writer and read back through the app.
"""
from __future__ import annotations

import gzip
import math
import sqlite3

import mapbox_vector_tile
import pytest
from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import write
from sqlalchemy import text

from web import create_app

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """Web Mercator XYZ tile holding a WGS-84 position (the slippy-map formula)."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _tile(client, z, x, y) -> dict:
    r = client.get(f"/tiles/basemap/{z}/{x}/{y}.mvt")
    assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile"
    return mapbox_vector_tile.decode(r.data)


def test_a_street_tile_holds_its_roads_and_names(client, engine):
    with engine.connect() as conn:
        name, lon, lat = conn.execute(text(
            "SELECT name, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM road_edge"
            " WHERE highway = 'residential' AND name IS NOT NULL ORDER BY id LIMIT 1")).one()
    x, y = tile_of(lon, lat, 15)
    layers = _tile(client, 15, x, y)
    assert name in {f["properties"].get("name") for f in layers["transportation"]["features"]}
    assert "district" in layers


def test_low_zooms_carry_only_major_roads_and_district_names(client, engine):
    x, y = tile_of(117.5566, 34.8640, 9)
    layers = _tile(client, 9, x, y)
    classes = {f["properties"]["class"] for f in layers["transportation"]["features"]}
    assert classes <= {"primary"}
    labels = {f["properties"]["name"] for f in layers["place"]["features"]}
    with engine.connect() as conn:
        districts = {n for (n,) in conn.execute(text("SELECT name_zh FROM district"))}
    assert labels & districts and labels <= districts


def test_townships_and_villages_appear_as_you_zoom_in(client, engine):
    client.get("/api/places?q=店子镇")
    with engine.connect() as conn:
        lon, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM place WHERE name = '店子镇'")).one()
        vname, vlon, vlat = conn.execute(text("SELECT name, ST_X(geom), ST_Y(geom) FROM village ORDER BY village_id"
                                              " LIMIT 1")).one()
    z11 = _tile(client, 11, *tile_of(lon, lat, 11))
    town = [f for f in z11["place"]["features"] if f["properties"]["name"] == "店子镇"]
    assert town and town[0]["properties"]["synthetic"] is True and town[0]["properties"]["name_en"] == "Dianzi Town"
    z14 = _tile(client, 14, *tile_of(vlon, vlat, 14))
    assert vname in {f["properties"]["name"] for f in z14["place"]["features"]}
    z12 = _tile(client, 12, *tile_of(vlon, vlat, 12))
    assert vname not in {f["properties"]["name"] for f in z12.get("place", {}).get("features", [])}


def test_far_away_tile_is_empty_and_etag_gives_304(client):
    r = client.get("/tiles/basemap/10/0/0.mvt")
    assert r.status_code == 200 and r.data == b""
    x, y = tile_of(117.5566, 34.8640, 12)
    first = client.get(f"/tiles/basemap/12/{x}/{y}.mvt")
    again = client.get(f"/tiles/basemap/12/{x}/{y}.mvt", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(("url", "parameter"), [("/tiles/basemap/3/0/0.mvt", "z"), ("/tiles/basemap/25/0/0.mvt", "z"),
                                                ("/tiles/basemap/5/32/0.mvt", "x"), ("/tiles/basemap/5/0/x.mvt", "y")])
def test_bad_tile_addresses_are_400(client, url, parameter):
    r = client.get(url)
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == parameter


def _mbtiles(path, fmt: str, data: bytes, z: int, x: int, y: int) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE metadata (name text, value text)")
    db.execute("CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob)")
    db.executemany("INSERT INTO metadata VALUES (?, ?)", [("format", fmt), ("minzoom", str(z)), ("maxzoom", str(z)),
                                                          ("attribution", "test archive")])
    db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, (1 << z) - 1 - y, data))
    db.commit()
    db.close()


def test_an_mbtiles_raster_archive_is_served_and_named_on_the_page(database_url, tmp_path):
    path = tmp_path / "city.mbtiles"
    x, y = tile_of(117.5566, 34.8640, 12)
    _mbtiles(path, "png", PNG, 12, x, y)
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "BASEMAP_FILE": str(path)})
    client = app.test_client()
    r = client.get(f"/tiles/archive/12/{x}/{y}")
    assert r.status_code == 200 and r.mimetype == "image/png" and r.data == PNG
    assert client.get(f"/tiles/archive/12/{x}/{y + 1}").status_code == 404
    assert client.get(f"/tiles/archive/13/{x}/{y}").get_json()["error"]["parameter"] == "z"
    page = client.get("/").get_data(as_text=True)
    assert '"kind": "raster"' in page and "/tiles/archive/{z}/{x}/{y}" in page


def test_a_pmtiles_vector_archive_is_served_without_gzip(database_url, tmp_path):
    path = tmp_path / "city.pmtiles"
    x, y = tile_of(117.5566, 34.8640, 10)
    mvt = mapbox_vector_tile.encode([{"name": "place", "features": [
        {"geometry": "POINT(100 100)", "properties": {"name": "测试地名", "class": "town"}}]}])
    with write(str(path)) as writer:
        writer.write_tile(zxy_to_tileid(10, x, y), gzip.compress(mvt))
        writer.finalize({"tile_type": TileType.MVT, "tile_compression": Compression.GZIP, "min_zoom": 10,
                         "max_zoom": 10, "min_lon_e7": int(116.8e7), "min_lat_e7": int(34.4e7),
                         "max_lon_e7": int(117.9e7), "max_lat_e7": int(35.4e7), "center_zoom": 10,
                         "center_lon_e7": int(117.5e7), "center_lat_e7": int(34.9e7)}, {"attribution": "test"})
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "BASEMAP_FILE": str(path)})
    r = app.test_client().get(f"/tiles/archive/10/{x}/{y}")
    assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile"
    assert mapbox_vector_tile.decode(r.data)["place"]["features"][0]["properties"]["name"] == "测试地名"


def test_a_missing_archive_is_named(database_url, tmp_path):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "BASEMAP_FILE": str(tmp_path / "no.mbtiles")})
    r = app.test_client().get("/tiles/archive/10/0/0")
    assert r.status_code == 400 and "no.mbtiles" in r.get_json()["error"]["message"]
