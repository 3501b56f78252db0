"""The residents' map markers: every active facility of one layer, or of all layers, as compact columns.

The page loads one answer for all layers (:func:`all_markers`, one request
on a slow network instead of one per layer) instead of carrying every
facility in its HTML. Columns, not objects, and integers as differences from the
previous value (ids; positions in units of :data:`SCALE` degrees, about
1 m), so the answer compresses to a few bytes a facility. Remembered until a
facility changes (:func:`services.cache.memo` on the ``facility`` version).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from db import markers as db_markers
from layers import LAYERS, layer_keys
from services import cache
from services.errors import InvalidRequest

#: Positions are sent as integers in units of 1 / SCALE degrees (1e-5° ≈ 1.1 m north-south).
SCALE = 100_000


def deltas(values: list[int]) -> list[int]:
    """``values`` as the first value and then each one's difference from the one before."""
    return [b - a for a, b in zip([0, *values[:-1]], values, strict=True)]


def all_markers(engine: Engine) -> dict[str, Any]:
    """Every layer's markers in one answer, in the registry's order (one connection, remembered as one value).

    Returns
    -------
    dict
        ``layers``: a list of :func:`layer_markers` answers, one per layer
        of the registry (WGS-84 positions in 1/``scale`` degrees).
    """
    def build() -> dict[str, Any]:
        with engine.connect() as conn:
            return {"layers": [_columns(key, db_markers.layer_points(conn, key)) for key in layer_keys()]}

    return cache.memo(engine, "markers", "*all*", build, families=("facility",))


def layer_markers(engine: Engine, layer: str) -> dict[str, Any]:
    """Every active facility of ``layer`` as delta-coded columns.

    Returns
    -------
    dict
        ``layer``; ``count``; ``scale``; ``id``, ``x`` and ``y`` (delta-coded
        integers: running sums give ids and WGS-84 lon/lat in 1/``scale``
        degrees); ``name``; ``kind`` (index into ``kinds``, -1 for none) when
        the layer has kinds; ``synthetic`` (0/1 per facility).
    """
    if layer not in layer_keys():
        raise InvalidRequest(f"layer was {layer[:40]!r} but is expected to be one of {', '.join(layer_keys())}",
                             parameter="layer", allowed=list(layer_keys()))

    def build() -> dict[str, Any]:
        with engine.connect() as conn:
            return _columns(layer, db_markers.layer_points(conn, layer))

    return cache.memo(engine, "markers", layer, build, families=("facility",))


def _columns(layer: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = list(LAYERS[layer].kinds)
    out: dict[str, Any] = {
        "layer": layer, "count": len(rows), "scale": SCALE, "crs": "wgs84",
        "id": deltas([int(r["id"]) for r in rows]),
        "x": deltas([round(r["lon"] * SCALE) for r in rows]),
        "y": deltas([round(r["lat"] * SCALE) for r in rows]),
        "name": [r["name"] for r in rows],
        "synthetic": [1 if r["synthetic"] else 0 for r in rows],
    }
    if kinds:
        out["kinds"] = kinds
        out["kind"] = [kinds.index(r["kind"]) if r["kind"] in kinds else -1 for r in rows]
    return out
