"""The districts as the generator works with them: polygons and seats in metres (EPSG:4548)."""
from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import shapely

from geo.crs import to_metric, transform_geometry

#: Metres a facility keeps from its district edge, so that rounding in the
#: WGS-84 round trip cannot put it across the border.
INSET_M = 60.0


@dataclass
class District:
    """One district in EPSG:4548 metres; ``index`` is its position in adcode order."""

    index: int
    adcode: str
    name_zh: str
    population: int
    urban_population: int
    rural_population: int
    poly: shapely.Geometry
    inset: shapely.Geometry  # ``poly`` shrunk by INSET_M
    seat: tuple[float, float]


def metric_districts(districts: gpd.GeoDataFrame) -> list[District]:
    """Districts (WGS-84 frame) in EPSG:4548 metres, sorted by adcode so row order does not matter."""
    rows = districts.sort_values("adcode", key=lambda s: s.astype(str))
    out = []
    for i, row in enumerate(rows.itertuples(index=False)):
        poly = shapely.make_valid(transform_geometry(row.geometry, to_metric))
        inset = poly.buffer(-INSET_M)
        shapely.prepare(poly)
        shapely.prepare(inset)
        sx, sy = to_metric(float(row.seat_lon), float(row.seat_lat))
        out.append(District(i, str(row.adcode), str(row.name_zh), int(row.population),
                            int(row.urban_population), int(row.rural_population),
                            poly, inset, (float(sx), float(sy))))
    return out
