"""District boundaries and census population for the demo city.

The boundaries in ``data/boundaries`` are GCJ-02 (AMap). They are converted
to WGS-84 here with :mod:`geo.crs` before anything else sees them.
"""
from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, shape
from shapely.geometry.base import BaseGeometry

from geo.crs import gcj02_to_wgs84, transform_geometry
from layers.districts import DISTRICTS

DATA = Path(__file__).resolve().parents[1] / "data"
BOUNDARIES = DATA / "boundaries" / "amap2020_zaozhuang_districts.geojson"
CENSUS = DATA / "census" / "census2020_county_leiii_3704.csv"

_GEOD = Geod(ellps="WGS84")

NAMES_EN = {code: names[1] for code, names in DISTRICTS.items()}

SOURCE = ("Boundaries: AMap JS API 2020-06 via GaryBikini/ChinaAdminDivisonSHP (GCJ-02, converted to "
          "WGS-84); population: 7th national census 2020 (leiii/census, NBS tabulation).")


def read_census(path: Path = CENSUS) -> pd.DataFrame:
    """Census 2020 resident, urban and rural population per county-level division."""
    frame = pd.read_csv(path, dtype={"区划代码": str}, encoding="utf-8-sig")
    frame = frame[frame["区划代码"] != "370400"]
    return pd.DataFrame({
        "adcode": frame["区划代码"].astype(str),
        "population": frame["人口数_合计"].astype(int),
        "urban_population": frame["城镇人口"].astype(int),
        "rural_population": frame["乡村人口"].astype(int),
    })


def read_districts(boundaries: Path = BOUNDARIES, census: Path = CENSUS) -> gpd.GeoDataFrame:
    """The six districts in WGS-84 with census population, seat and area.

    Returns
    -------
    GeoDataFrame
        EPSG:4326; columns ``adcode``, ``name_zh``, ``name_en``, ``population``,
        ``urban_population``, ``rural_population``, ``seat_lon``, ``seat_lat``
        (WGS-84), ``area_km2`` (ellipsoidal), ``geometry`` (MultiPolygon).
    """
    doc = json.loads(boundaries.read_text(encoding="utf-8"))
    rows = []
    for feature in doc["features"]:
        props = feature["properties"]
        geom = shapely.make_valid(transform_geometry(shape(feature["geometry"]), gcj02_to_wgs84))
        if geom.geom_type == "Polygon":
            geom = MultiPolygon([geom])
        geom = shapely.geometry.polygon.orient(geom.geoms[0], 1) if len(geom.geoms) == 1 else geom
        if geom.geom_type == "Polygon":
            geom = MultiPolygon([geom])
        seat_lon, seat_lat = gcj02_to_wgs84(float(props["centerlng"]), float(props["centerlat"]))
        rows.append({"adcode": str(props["adcode"]), "name_zh": props["name"],
                     "name_en": NAMES_EN[str(props["adcode"])],
                     "seat_lon": seat_lon, "seat_lat": seat_lat, "geometry": geom})
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    frame = frame.merge(read_census(census), on="adcode", how="left", validate="one_to_one")
    missing = frame[frame["population"].isna()]["adcode"].tolist()
    if missing:
        raise ValueError(f"no census row for districts {missing}")
    frame["area_km2"] = frame.geometry.apply(_geodesic_area_km2)
    return frame.sort_values("adcode").reset_index(drop=True)


def _geodesic_area_km2(geom: BaseGeometry) -> float:
    """Area on the WGS-84 ellipsoid, km²."""
    area, _ = _GEOD.geometry_area_perimeter(geom)
    return abs(area) / 1e6
