"""GeoJSON FeatureCollections as a stream of text chunks (RFC 7946), and the GCJ-02 variant.

Features arrive as *batches of text* (one or more Feature objects joined by
commas, as PostGIS builds them) so a layer of a million features streams
without being parsed. Coordinates are WGS-84 (EPSG:4326) longitude/latitude
in degrees; :func:`to_gcj02` re-projects them for AMap front ends and the
collection must then say so (:data:`GCJ02_NOTE`).
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from geo.crs import wgs84_to_gcj02

MEDIA_TYPE = "application/geo+json"
#: Decimal places of written coordinates (1e-7 degrees ≈ 1 cm).
COORD_DECIMALS = 7
GCJ02_NOTE = ("Coordinates are GCJ-02 (the offset system of AMap/Tencent maps), NOT WGS-84: this is "
              "non-standard GeoJSON (RFC 7946 requires WGS-84). Use only with GCJ-02 base maps.")


def feature_collection(feature_batches: Iterable[str], *, name: str,
                       members: dict[str, Any] | None = None) -> Iterator[str]:
    """A GeoJSON FeatureCollection as text chunks.

    Parameters
    ----------
    feature_batches : iterable of str
        Each item is one or more Feature texts joined by commas; empty items
        are skipped. Coordinates WGS-84 degrees (or GCJ-02 after :func:`to_gcj02`).
    name : str
        Collection name (a foreign member, as GDAL writes it).
    members : dict, optional
        More foreign members for the top level (notices, CRS notes).

    Yields
    ------
    str
        The opening (with the members), the feature batches joined by
        commas, and the closing brackets.
    """
    head = {"type": "FeatureCollection", "name": name, **(members or {})}
    yield json.dumps(head, ensure_ascii=False)[:-1] + ', "features": [\n'
    first = True
    for chunk in feature_batches:
        if not chunk:
            continue
        yield chunk if first else ",\n" + chunk
        first = False
    yield "\n]}\n"


def feature_texts(features: Iterable[dict[str, Any] | str], batch: int = 1000) -> Iterator[str]:
    """Feature dicts (or texts) joined into comma-separated batches of ``batch`` for :func:`feature_collection`.

    Dates and times are written as ISO 8601 text, numpy scalars as numbers.
    """
    buf: list[str] = []
    for f in features:
        buf.append(f if isinstance(f, str) else json.dumps(f, ensure_ascii=False, default=_json_default))
        if len(buf) >= batch:
            yield ",\n".join(buf)
            buf = []
    if buf:
        yield ",\n".join(buf)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _gcj02_coords(coords: Any) -> Any:
    """Every position of a GeoJSON coordinate tree (WGS-84 degrees) moved to GCJ-02, rounded to 1e-7°.

    A regular tree (a position, a line, rings of equal length) is converted as
    one array; a ragged one (rings or parts of different lengths) part by part.
    """
    try:
        arr = np.asarray(coords, dtype=float)
    except ValueError:  # ragged
        return [_gcj02_coords(c) for c in coords]
    lon, lat = wgs84_to_gcj02(arr[..., 0], arr[..., 1])
    out = arr.copy()
    out[..., 0], out[..., 1] = np.round(lon, COORD_DECIMALS), np.round(lat, COORD_DECIMALS)
    return out.tolist()


def to_gcj02(feature_batches: Iterable[str]) -> Iterator[str]:
    """WGS-84 Feature texts re-projected to GCJ-02 (for AMap front ends only; non-standard GeoJSON).

    Positions outside mainland China are left as they are (GCJ-02 does not shift them).
    """
    for chunk in feature_batches:
        if not chunk:
            continue
        feats = json.loads("[" + chunk + "]")
        for f in feats:
            geom = f.get("geometry")
            if geom and "coordinates" in geom:
                geom["coordinates"] = _gcj02_coords(geom["coordinates"])
        yield ",\n".join(json.dumps(f, ensure_ascii=False) for f in feats)
