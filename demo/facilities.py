"""Facility rows for every layer with a demo record: placed by its rule, labelled synthetic.

For each layer (in registry order) the rule its ``demo.placement`` names
(:data:`demo.placement.RULES`) places each demo kind; this module turns the
placed sites into rows with ids (``DEMO-<prefix>-0001``), names (``示例…``),
addresses (``…（合成）``), phones (``0632-0xxxxxx``, not a real landline),
hours and opening dates, and converts them to WGS-84.
"""
from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from demo.districts import District
from demo.placement import RULES, Placed
from demo.sites import Context
from geo.crs import WGS84_EPSG, from_metric, to_metric, transform_geometry
from layers.model import DemoKind, Layer

#: Columns of the facilities frame (besides ``geometry``).
COLUMNS = ("layer", "source_id", "kind", "name", "address", "phone", "opening_hours", "capacity", "opened_on",
           "attrs")


def make_facilities(ctx: Context, layers: Mapping[str, Layer], scale: float) -> gpd.GeoDataFrame:
    """Every layer's demo facilities, concatenated, in WGS-84 (EPSG:4326).

    Raises
    ------
    ValueError
        When a layer names a placement rule the generator does not know.
    """
    frames = []
    for layer in layers.values():
        rule = RULES.get(layer.demo.placement)
        if rule is None:
            raise ValueError(f"layer {layer.key}: demo placement was {layer.demo.placement!r} but is expected "
                             f"to be one of {', '.join(RULES)}")
        frames += [_frame(ctx, layer.key, placed, layer.demo.kinds[placed.kind])
                   for placed in rule(ctx, layer, scale)]
    frames = [f for f in frames if len(f)]
    if not frames:
        return gpd.GeoDataFrame(columns=[*COLUMNS, "geometry"], geometry="geometry", crs=f"EPSG:{WGS84_EPSG}")
    facilities = pd.concat(frames, ignore_index=True)
    geom = transform_geometry(facilities.pop("geom_m").to_numpy(), from_metric)
    phones = [f"0632-0{i:06d}" for i in range(1, len(facilities) + 1)]  # 0xxxxxx: not a real landline
    facilities.insert(5, "phone", phones)
    return gpd.GeoDataFrame(facilities, geometry=geom, crs=f"EPSG:{WGS84_EPSG}")


def _frame(ctx: Context, layer: str, placed: Placed, spec: DemoKind) -> pd.DataFrame:
    """One kind's rows with ids, names and addresses; geometry still in metres (``geom_m``)."""
    n = len(placed.geom)
    width = max(4, len(str(n)))
    names = np.array([d.name_zh for d in ctx.dists], dtype=object)[placed.district]
    return pd.DataFrame({
        "layer": layer,
        "source_id": [f"DEMO-{spec.prefix}-{i:0{width}d}" for i in range(1, n + 1)],
        "kind": placed.kind,
        "name": [f"示例{spec.name_zh}{i:0{width}d}" for i in range(1, n + 1)],
        "address": [f"山东省枣庄市{nm}示例路{i}号（合成）" for i, nm in enumerate(names, start=1)],
        "opening_hours": spec.hours,
        "capacity": pd.Series(placed.capacity if placed.capacity is not None else [None] * n, dtype=object),
        "opened_on": pd.Series(placed.opened, dtype=object),
        "attrs": [{**(placed.attrs[i] if placed.attrs else {}), "adcode": ctx.dists[placed.district[i]].adcode,
                   "synthetic": True} for i in range(n)],
        "geom_m": placed.geom,
    })


def check_inside(facilities: gpd.GeoDataFrame, dists: list[District]) -> None:
    """Raise if any facility is not wholly inside its district (tested in EPSG:4548)."""
    if len(facilities) == 0:
        return
    polys = {d.adcode: d.poly for d in dists}
    metric = transform_geometry(facilities.geometry.to_numpy(), to_metric)
    adcodes = [a["adcode"] for a in facilities["attrs"]]
    inside = shapely.within(metric, np.array([polys[a] for a in adcodes], dtype=object))
    if not inside.all():
        bad = facilities.loc[~inside, "source_id"].tolist()[:10]
        raise RuntimeError(f"{(~inside).sum()} facilities fall outside their district, e.g. {bad}")
