"""Facility rows as the GeoJSON features residents get from nearest and search.

Geometry is WGS-84 (RFC 7946), the facility's representative point. Each
feature carries its position in GCJ-02 and BD-09 for Chinese map apps and
AMap / Baidu / ``geo:`` navigation links (filled into templates, each
facility's converted position remembered: this is the hot path of ``/api/nearest``). A nearest
answer adds ``by``, ``distance_m``, ``straight_m``, ``minutes`` and ``route``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from geo.nearest import links_and_coordinates, minutes_at
from layers import LAYERS
from services.routing import routes_geojson

#: Said with every answer that holds a synthetic facility.
SYNTHETIC_NOTE = {"zh": "演示数据：设施为合成数据（非真实位置）",
                  "en": "Demo data: these facilities are SYNTHETIC (not real places)"}

Row = dict[str, Any]


def features(rows: list[Row], *, by: str | None = None, speed: float | None = None,
             origin: tuple[float, float] | None = None) -> list[dict[str, Any]]:
    """GeoJSON Features of facility rows (WGS-84 ``lon``/``lat``), in the rows' order.

    With ``by`` (a nearest answer), each row needs ``distance_m`` and
    ``straight_m`` (metres), and for ``walk``/``drive`` ``route_xy``
    (EPSG:4548); ``minutes`` is ``distance_m`` at ``speed`` (metres per
    minute) rounded up, null for ``straight``. ``origin`` (WGS-84) is where the
    navigation links start.
    """
    if not rows:
        return []
    app_mode = "drive" if by == "drive" else "walk"
    extras = links_and_coordinates([r["lon"] for r in rows], [r["lat"] for r in rows], [r["name"] for r in rows],
                                   origin, app_mode)
    out = []
    minutes = None
    lines = routes_geojson([r.get("route_xy") for r in rows]) if by not in (None, "straight") else [None] * len(rows)
    if by is not None and by != "straight" and speed is not None:
        minutes = np.atleast_1d(minutes_at(np.array([r["distance_m"] for r in rows], dtype=float), speed))
    for i, (row, (coords, links)) in enumerate(zip(rows, extras, strict=True)):
        props = _properties(row)
        if by is not None:
            props.update(by=by, distance_m=round(row["distance_m"], 1), straight_m=round(row["straight_m"], 1),
                         minutes=None if minutes is None else int(minutes[i]),
                         route=lines[i])
        props["coordinates"] = coords
        props["navigation"] = links
        out.append({"type": "Feature", "id": row["id"], "geometry": {"type": "Point", "coordinates": coords["wgs84"]},
                    "properties": props})
    return out


def _properties(row: Row) -> dict[str, Any]:
    layer = LAYERS[row["layer"]]
    kind = layer.kinds.get(row["kind"] or "")
    props: dict[str, Any] = {
        "id": row["id"], "layer": layer.key, "layer_name_zh": layer.name_zh, "layer_name_en": layer.name_en,
        "kind": row["kind"], "kind_name_zh": kind[0] if kind else None, "kind_name_en": kind[1] if kind else None,
        "name": row["name"], "address": row["address"], "phone": row["phone"],
        "opening_hours": row["opening_hours"],
        "district": row["district_adcode"], "district_zh": row["district_zh"], "district_en": row["district_en"],
        "synthetic": bool(row["synthetic"]),
    }
    if layer.capacity_field or row["capacity"] is not None:
        props.update(capacity=row["capacity"], capacity_unit_zh=layer.capacity_unit_zh,
                     capacity_unit_en=layer.capacity_unit_en)
    return props
