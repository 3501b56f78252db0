"""Vector tiles: decode a tile with mapbox-vector-tile and find the features that
should be in it, where they should be.

Tile addresses and pixel positions are worked out here with the Web Mercator
("slippy map") formulas, independently of PostGIS.
"""
from __future__ import annotations

import gzip
import math

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from web import create_app

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


# ------------------------------------------------------------------ low zoom, compression, metadata, CORS
CENSUS_TOTAL = 3_855_601
#: Tiles holding Zaozhuang (116.8–117.9 E, 34.4–35.4 N) at zooms 0 to 10, worked out by the slippy-map formulas.
CITY_TILES = [(z, *tile_of(117.35, 34.9, z)[:2]) for z in range(0, 11)]


@pytest.mark.parametrize("z,x,y", CITY_TILES)
def test_population_tiles_at_low_zoom_are_merged_small_and_keep_every_person(client, z, x, y):
    r = client.get(f"/tiles/population/{z}/{x}/{y}.mvt")
    assert r.status_code == 200 and 0 < len(r.get_data()) <= 500 * 1024
    people = sum(f["properties"]["population"] for f in decode(r.get_data())["population"]["features"])
    if z <= 6:  # the whole city lies in this one tile
        assert people == CENSUS_TOTAL


@pytest.mark.parametrize("z", [0, 1])
def test_parks_show_at_zoom_0_and_1(client, z):
    x, y, *_ = tile_of(117.35, 34.9, z)
    layer = decode(client.get(f"/tiles/pocket_park/{z}/{x}/{y}.mvt").get_data())["pocket_park"]
    assert len(layer["features"]) == 73 and {f["geometry"]["type"] for f in layer["features"]} == {"Point"}


def test_tiles_are_compressed_when_the_client_asks(client):
    x, y, *_ = tile_of(117.35, 34.9, 8)
    plain = client.get(f"/tiles/population/8/{x}/{y}.mvt")
    packed = client.get(f"/tiles/population/8/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip" and len(packed.get_data()) < len(plain.get_data())
    assert gzip.decompress(packed.get_data()) == plain.get_data()


def test_roads_and_villages_are_tiled(client, engine):
    with engine.connect() as conn:
        edge = conn.execute(text("SELECT id, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom)) FROM road_edge"
                                 " ORDER BY length_m DESC LIMIT 1")).one()
    x, y, *_ = tile_of(edge[1], edge[2], 14)
    roads = decode(client.get(f"/tiles/roads/14/{x}/{y}.mvt").get_data())["roads"]
    assert any(f["id"] == edge[0] and f["geometry"]["type"] in ("LineString", "MultiLineString")
               for f in roads["features"])
    x, y, *_ = tile_of(117.35, 34.9, 6)
    assert decode(client.get(f"/tiles/village/6/{x}/{y}.mvt").get_data())["village"]["features"]


def test_ogc_tiles_metadata_leads_to_the_same_tile(client):
    tilesets = client.get("/ogc/collections/parking/tiles").get_json()["tilesets"]
    assert tilesets[0]["dataType"] == "vector" and tilesets[0]["tileMatrixSetURI"].endswith("WebMercatorQuad")
    meta = client.get("/ogc/collections/parking/tiles/WebMercatorQuad").get_json()
    template = next(lk["href"] for lk in meta["links"] if lk["rel"] == "item")
    x, y, *_ = tile_of(117.35, 34.9, 9)
    url = template.replace("http://localhost", "").format(tileMatrix=9, tileRow=y, tileCol=x)
    assert client.get(url).get_data() == client.get(f"/tiles/parking/9/{x}/{y}.mvt").get_data() != b""
    tms = client.get("/ogc/tileMatrixSets/WebMercatorQuad").get_json()
    z5 = tms["tileMatrices"][5]
    assert z5["matrixWidth"] == 32 and abs(z5["cellSize"] * 256 * 32 - 40075016.68557849) < 1e-3


def test_tiles_are_open_to_other_origins(client):
    r = client.get("/tiles/parking/6/53/25.mvt", headers={"Origin": "http://maps.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_origins_are_configurable(database_url):
    app = create_app({"DATABASE_URL": database_url, "TESTING": True, "CORS_ORIGINS": ["https://maps.example.cn"]})
    client = app.test_client()
    allowed = client.get("/ogc/collections", headers={"Origin": "https://maps.example.cn"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://maps.example.cn"
    assert "Origin" in allowed.headers["Vary"]
    other = client.get("/ogc/collections", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    admin = client.get("/api/admin/facilities/1", headers={"Origin": "https://maps.example.cn"})
    assert "Access-Control-Allow-Origin" not in admin.headers
