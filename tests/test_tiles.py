"""Vector tiles: decode a tile with mapbox-vector-tile and find the features that
should be in it, where they should be.

Tile addresses and pixel positions are worked out here with the Web Mercator
("slippy map") formulas, independently of PostGIS.
"""
from __future__ import annotations

import math

import mapbox_vector_tile
import pytest
from sqlalchemy import text

EXTENT = 4096


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, float, float]:
    """Tile column/row of a position at zoom z, and its pixel position inside the tile (y up)."""
    n = 2 ** z
    fx = (lon + 180.0) / 360.0 * n
    lat_r = math.radians(lat)
    fy = (1.0 - math.log(math.tan(lat_r) + 1.0 / math.cos(lat_r)) / math.pi) / 2.0 * n
    x, y = int(fx), int(fy)
    return x, y, (fx - x) * EXTENT, (1.0 - (fy - y)) * EXTENT  # MVT decoders flip y to point up


@pytest.fixture(scope="module")
def station(engine) -> dict:
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT id, name, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM facility"
            " WHERE layer = 'police_station' ORDER BY id LIMIT 1")).mappings().one()
    return dict(row)


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data)


def test_tile_holds_the_police_station_where_it_is(client, station):
    x, y, px, py = tile_of(station["lon"], station["lat"], 15)
    r = client.get(f"/tiles/police_station/15/{x}/{y}.mvt")
    assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile"
    assert "max-age" in r.headers["Cache-Control"]
    layer = decode(r.get_data())["police_station"]
    assert layer["extent"] == EXTENT
    found = [f for f in layer["features"] if f["id"] == station["id"]]
    assert len(found) == 1
    feature = found[0]
    assert feature["properties"]["name"] == station["name"] and "警务站" in station["name"]
    gx, gy = feature["geometry"]["coordinates"]
    assert abs(gx - px) <= 2 and abs(gy - py) <= 2  # within 2 of 4,096 tile units


def test_low_zoom_tile_has_all_37_stations(client):
    # Zaozhuang (116.8–117.9 E, 34.4–35.4 N) lies inside one zoom-6 tile.
    x1, y1, *_ = tile_of(116.8, 35.4, 6)
    x2, y2, *_ = tile_of(117.9, 34.4, 6)
    assert (x1, y1) == (x2, y2)
    layer = decode(client.get(f"/tiles/police_station/6/{x1}/{y1}.mvt").get_data())["police_station"]
    assert len(layer["features"]) == 37


def test_park_polygons_in_tiles(client, engine):
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT id, ST_X(ST_PointOnSurface(geom)) AS lon, ST_Y(ST_PointOnSurface(geom)) AS lat FROM facility"
            " WHERE layer = 'pocket_park' AND kind = 'park' ORDER BY id LIMIT 1")).mappings().one()
    x, y, *_ = tile_of(row["lon"], row["lat"], 14)
    layer = decode(client.get(f"/tiles/pocket_park/14/{x}/{y}.mvt").get_data())["pocket_park"]
    park = next(f for f in layer["features"] if f["id"] == row["id"])
    assert park["geometry"]["type"] in ("Polygon", "MultiPolygon") and park["properties"]["kind"] == "park"


def test_population_tile_carries_people(client, engine):
    with engine.connect() as conn:
        row = conn.execute(text("SELECT cell_id, population, ST_X(geom) AS lon, ST_Y(geom) AS lat"
                                " FROM demand_cell ORDER BY population DESC LIMIT 1")).mappings().one()
    x, y, *_ = tile_of(row["lon"], row["lat"], 14)
    layer = decode(client.get(f"/tiles/population/14/{x}/{y}.mvt").get_data())["population"]
    cell = next(f for f in layer["features"] if f["properties"]["cell_id"] == row["cell_id"])
    assert cell["properties"]["population"] == row["population"] and cell["properties"]["class"] == "urban"


def test_a_tile_far_from_zaozhuang_is_empty(client):
    r = client.get("/tiles/service_office/10/0/0.mvt")
    assert r.status_code == 200 and r.get_data() == b""


def test_etag_gives_304(client, station):
    x, y, *_ = tile_of(station["lon"], station["lat"], 12)
    first = client.get(f"/tiles/police_station/12/{x}/{y}.mvt")
    again = client.get(f"/tiles/police_station/12/{x}/{y}.mvt", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("url,parameter", [
    ("/tiles/parks/10/1/1.mvt", "layer"),
    ("/tiles/parking/23/1/1.mvt", "z"),
    ("/tiles/parking/-1/0/0.mvt", "z"),
    ("/tiles/parking/2/4/0.mvt", "x"),
    ("/tiles/parking/2/0/4.mvt", "y"),
    ("/tiles/parking/2/a/0.mvt", "x"),
])
def test_bad_tile_addresses_are_400(client, url, parameter):
    r = client.get(url)
    assert r.status_code == 400 and r.get_json()["error"]["parameter"] == parameter
