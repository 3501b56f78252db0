"""GeoPackage and zipped Shapefile, written batch by batch with GDAL (pyogrio), UTF-8.

Rows are plain dicts with a ``wkb`` geometry (WGS-84, EPSG:4326); the file
is written in EPSG:4326. Column types are fixed up front from the caller's
declaration (``integer``, ``number``, ``boolean``), so a batch whose values
are all null keeps its type.
"""
from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
import shapely

GPKG_MIMETYPE = "application/geopackage+sqlite3"
SHP_ZIP_MIMETYPE = "application/zip"
#: Shapefile field names are at most 10 characters: the long ones, renamed.
SHP_FIELDS = {"opening_hours": "open_hours", "district_name": "dist_name", "resolution_m": "res_m"}
#: pandas column types for the declared column types.
_PANDAS_TYPES = {"integer": "Int64", "number": "float64", "boolean": "boolean"}
#: Columns that are positions for spreadsheets, not attributes of a vector file.
_NOT_ATTRIBUTES = ("wkb", "longitude", "latitude")

Rows = list[dict[str, Any]]


def _frame(rows: Rows, *, types: Mapping[str, str], shapefile: bool) -> gpd.GeoDataFrame:
    """A GeoDataFrame (EPSG:4326) of one batch; a Shapefile's dates become text and long names short."""
    geoms = shapely.from_wkb([bytes(r["wkb"]) for r in rows])
    data = pd.DataFrame([{k: v for k, v in r.items() if k not in _NOT_ATTRIBUTES} for r in rows])
    for col in data.columns:
        sample = next((v for v in data[col] if v is not None), None)
        if isinstance(sample, (dt.date, dt.datetime)) and shapefile:
            data[col] = [v.isoformat() if v is not None else None for v in data[col]]
        elif isinstance(sample, dt.datetime):
            data[col] = pd.to_datetime(data[col], utc=True)
        elif isinstance(sample, dt.date):
            data[col] = pd.to_datetime(data[col]).dt.date
    for col, kind in types.items():
        if col in data.columns and kind in _PANDAS_TYPES:
            data[col] = data[col].astype(_PANDAS_TYPES[kind])
    if shapefile:
        data = data.rename(columns=SHP_FIELDS)
    return gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326")


def _write(row_batches: Iterable[Rows], path: Path, *, layer: str, driver: str, geometry_type: str,
           empty_columns: Sequence[str], types: Mapping[str, str]) -> int:
    shapefile = driver == "ESRI Shapefile"
    opts: dict[str, Any] = dict(driver=driver, layer=layer, geometry_type=geometry_type,
                                promote_to_multi=geometry_type.startswith("Multi"))
    if shapefile:
        opts["encoding"] = "UTF-8"
    else:  # GeoPackage 1.2: opens without warnings in the GDAL 3.6 / QGIS 3.28 generation too
        opts["dataset_options"] = {"VERSION": "1.2"}
    n = 0
    for rows in row_batches:
        if not rows:
            continue
        pyogrio.write_dataframe(_frame(rows, types=types, shapefile=shapefile), path, append=n > 0, **opts)
        n += len(rows)
    if n == 0:
        cols = [SHP_FIELDS.get(c, c) if shapefile else c for c in empty_columns]
        frame = gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs="EPSG:4326")
        pyogrio.write_dataframe(frame.astype({c: object for c in cols}), path, **opts)
    return n


def write_gpkg(row_batches: Iterable[Rows], path: Path, *, layer: str, geometry_type: str,
               empty_columns: Sequence[str], types: Mapping[str, str]) -> int:
    """A GeoPackage 1.2 at ``path`` (replaced if it exists) with one layer; return the feature count.

    Parameters
    ----------
    row_batches : iterable of list of dict
        Rows with a ``wkb`` geometry in WGS-84; ``longitude``/``latitude`` are dropped.
    layer : str
        The table's name in the file.
    geometry_type : str
        ``Point``, ``Polygon`` or ``MultiPolygon`` (polygons promoted to multi).
    empty_columns : sequence of str
        Fields for an empty export, so the file still has its schema.
    types : mapping
        Column name → ``integer``, ``number`` or ``boolean``.
    """
    path.unlink(missing_ok=True)
    return _write(row_batches, path, layer=layer, driver="GPKG", geometry_type=geometry_type,
                  empty_columns=empty_columns, types=types)


def write_shp_zip(row_batches: Iterable[Rows], path: Path, *, layer: str, geometry_type: str,
                  empty_columns: Sequence[str], types: Mapping[str, str]) -> int:
    """A zipped Shapefile (.shp .shx .dbf .prj .cpg, UTF-8) at ``path``; return the feature count.

    Field names longer than ten characters are shortened (:data:`SHP_FIELDS`)
    and dates written as ISO text. Parameters as :func:`write_gpkg`.
    """
    with tempfile.TemporaryDirectory(prefix="minsheng-shp-") as tmp:
        shp_path = Path(tmp) / f"{layer}.shp"
        n = _write(row_batches, shp_path, layer=layer, driver="ESRI Shapefile", geometry_type=geometry_type,
                   empty_columns=empty_columns, types=types)
        cpg = shp_path.with_suffix(".cpg")
        if not cpg.exists():
            cpg.write_text("UTF-8", encoding="ascii")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(Path(tmp).iterdir()):
                zf.write(part, part.name)
    return n
