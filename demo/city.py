"""A synthetic demo city on the real Zaozhuang districts: people, villages and facilities.

No real point data exists for Zaozhuang's facilities (see the shared data
README), so the demo runs on generated data that reproduces the report's
counts and capacity totals (each layer's ``demo`` record in
``layers/registry.py``) and the 2020 census population of each district.
Everything it makes is labelled synthetic: facility names contain "示例" or
"（合成）", and every record carries ``synthetic = True``.

The model works in EPSG:4548 metres (:mod:`demo.population` for the grid,
seats, towns and urban people; :mod:`demo.villages` for villages and rural
people; :mod:`demo.facilities` for the facilities, placed by each layer's
rule). The module is pure: no database, no I/O. Everything is drawn from one
seed, so the same input and seed give the same output.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np

from demo.districts import metric_districts
from demo.facilities import check_inside, make_facilities
from demo.population import apportion_cells, build_grid, cells_frame, centres_frame, urban_people
from demo.sites import Context
from demo.villages import make_villages, village_people, villages_frame
from geo.crs import WGS84_EPSG
from geo.errors import CRSError
from layers import LAYERS, URBAN_DENSITY_PER_KM2, Layer

#: Columns ``build_demo_city`` needs in its ``districts`` frame.
REQUIRED_COLUMNS = ("adcode", "name_zh", "population", "urban_population",
                    "rural_population", "seat_lon", "seat_lat", "geometry")


@dataclass
class DemoCity:
    """The generated city. All frames are WGS-84 (EPSG:4326).

    Attributes
    ----------
    cells : geopandas.GeoDataFrame
        Populated grid cells, Point at the cell centre: ``cell_id``, ``adcode``,
        ``population`` (int, >= 1), ``urban`` (bool), ``x_m``, ``y_m``
        (EPSG:4548 centre, metres), ``synthetic``.
    villages : geopandas.GeoDataFrame
        Points: ``village_id``, ``name``, ``adcode``, ``population``, ``synthetic``.
    facilities : geopandas.GeoDataFrame
        ``layer``, ``source_id``, ``kind``, ``name``, ``address``, ``phone``,
        ``opening_hours``, ``capacity``, ``opened_on``, ``attrs``, ``geometry``.
    resolution_m : float
        Cell side in metres (EPSG:4548).
    seed : int
        The seed everything was drawn from.
    centres : geopandas.GeoDataFrame
        The urban centres, Points: each district's seat (``seat`` true) and
        its secondary towns, with ``adcode``, ``people`` (urban people around
        it), ``x_m``, ``y_m`` (EPSG:4548), ``synthetic``.
    """

    cells: gpd.GeoDataFrame
    villages: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    resolution_m: float
    seed: int
    centres: gpd.GeoDataFrame


def build_demo_city(districts: gpd.GeoDataFrame, *, seed: int = 20221, resolution_m: float = 250.0,
                    scale: float = 1.0, urban_density_per_km2: float = URBAN_DENSITY_PER_KM2,
                    layers: Mapping[str, Layer] | None = None) -> DemoCity:
    """Generate a synthetic population grid, villages and facility layers.

    Parameters
    ----------
    districts : geopandas.GeoDataFrame
        One row per district in WGS-84 (EPSG:4326) with the columns in
        :data:`REQUIRED_COLUMNS`: ``adcode`` (str), ``name_zh``, ``population``,
        ``urban_population``, ``rural_population`` (int, census 2020),
        ``seat_lon``/``seat_lat`` (WGS-84 degrees) and (Multi)Polygon geometry.
    seed : int
        Seed of every random draw; same input and seed give identical output.
    resolution_m : float
        Cell side in metres in EPSG:4548 at ``scale=1``.
    scale : float
        Multiplies every facility count and capacity total, and the grid
        density: the cell side becomes ``resolution_m / sqrt(scale)``.
    urban_density_per_km2 : float
        People per km² at or above which a cell is flagged ``urban``.
    layers : mapping of str to Layer, optional
        The layers to place (default: the registry, :data:`layers.LAYERS`);
        each by the rule its ``demo.placement`` names, with its demo counts.

    Returns
    -------
    DemoCity
        Cells, villages, urban centres and facilities, all in EPSG:4326.

    Raises
    ------
    CRSError
        When ``districts`` is not in EPSG:4326.
    ValueError
        When a column is missing, a census row does not add up, a parameter
        is out of range, or a layer names an unknown placement rule.
    """
    _check_inputs(districts, seed, resolution_m, scale, urban_density_per_km2)
    dists = metric_districts(districts)
    grid = build_grid(dists, resolution_m / math.sqrt(scale))
    urban, centres = urban_people(grid, dists, seed)
    villages = make_villages(grid, dists, urban, seed)
    people = urban + village_people(grid, villages)
    cells = cells_frame(grid, dists, apportion_cells(grid, dists, people), urban_density_per_km2)
    ctx = Context(cells, villages, centres, dists, seed, grid.res)
    facilities = make_facilities(ctx, LAYERS if layers is None else layers, scale)
    check_inside(facilities, dists)
    return DemoCity(cells=cells, villages=villages_frame(villages, dists), facilities=facilities,
                    resolution_m=grid.res, seed=seed, centres=centres_frame(centres, dists))


def _check_inputs(districts: gpd.GeoDataFrame, seed: int, resolution_m: float, scale: float,
                  urban_density: float) -> None:
    """Raise on a frame or parameter ``build_demo_city`` cannot use."""
    if not isinstance(districts, gpd.GeoDataFrame):
        raise ValueError(f"`districts` was a {type(districts).__name__} but is expected to be a GeoDataFrame")
    if districts.crs is None or districts.crs.to_epsg() != WGS84_EPSG:
        raise CRSError(f"`districts` CRS was {districts.crs} but is expected to be EPSG:4326 (WGS-84)")
    missing = [c for c in REQUIRED_COLUMNS if c not in districts.columns]
    if missing:
        raise ValueError(f"`districts` lacks columns {missing}; expected all of {list(REQUIRED_COLUMNS)}")
    if len(districts) == 0 or districts["adcode"].duplicated().any():
        raise ValueError("`districts` must have at least one row and unique `adcode` values")
    total = districts["urban_population"].astype(int) + districts["rural_population"].astype(int)
    bad = districts.loc[total != districts["population"].astype(int), "adcode"].tolist()
    if bad:
        raise ValueError(f"urban + rural population differs from `population` for adcode {bad}")
    for name, value in (("resolution_m", resolution_m), ("scale", scale),
                        ("urban_density_per_km2", urban_density)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` was {value!r} but is expected to be a positive number")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"`seed` was {seed!r} but is expected to be an int")
