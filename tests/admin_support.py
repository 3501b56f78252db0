"""What the admin tests share: hand-worked places, an independent GCJ-02 formula, tokens and a fresh office.

Expected positions and districts are hand-worked: Shizhong's seat (市中区,
117.5566E 34.8640N) and Tengzhou's old town (滕州市, 117.1650E 35.0850N) are
in those districts; Beijing (116.40E 39.90N) is not in Zaozhuang. The GCJ-02
offset is computed with the public formula written out below, independently of
``geo.crs``. Test modules import the fixtures by name.
"""
from __future__ import annotations

import math

import pytest
from pyproj import Geod

from services.editing import create_token

SHIZHONG = (117.5566, 34.8640)
TENGZHOU = (117.1650, 35.0850)
BEIJING = (116.40, 39.90)
GEOD = Geod(ellps="WGS84")


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return GEOD.inv(a[0], a[1], b[0], b[1])[2]


def gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02, the published formula (Krasovsky ellipsoid)."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
            + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
            + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
            + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
            + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0)
    rad = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    sq = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * sq) * math.pi)
    dlon = (dlon * 180.0) / (a / sq * math.cos(rad) * math.pi)
    return lon + dlon, lat + dlat


@pytest.fixture(scope="module")
def tokens(engine):
    _, editor = create_token(engine, "editor", "test editor")
    _, viewer = create_token(engine, "viewer", "test viewer")
    return {"editor": editor, "viewer": viewer}


def auth(token: str, **extra) -> dict:
    return {"Authorization": f"Bearer {token}", **extra}


@pytest.fixture()
def office(client, tokens):
    """A fresh service office in Shizhong, created through the API."""
    res = client.post("/api/admin/facilities", headers=auth(tokens["editor"]),
                      json={"layer": "service_office", "name": "测试便民服务点", "address": "市中区光明路1号",
                            "lon": SHIZHONG[0], "lat": SHIZHONG[1]})
    assert res.status_code == 201, res.get_json()
    return res.get_json()


def count_active(client, layer: str) -> int:
    return next(item["count"] for item in client.get("/api/layers").get_json()["layers"] if item["key"] == layer)
