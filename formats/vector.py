"""GeoPackage and zipped Shapefile, written batch by batch with GDAL (pyogrio), UTF-8.

Rows are plain dicts with a ``wkb`` geometry (WGS-84, EPSG:4326); the file
is written in EPSG:4326. Every field gets its type from the caller's
declaration (``integer``, ``number``, ``boolean``, ``string``, ``date``,
``date-time``), so a batch whose values are all null keeps its type, an
empty export keeps its schema, and dates are Date fields in both formats
(DBF has a Date type; a Shapefile holds no time of day, so times are text).
"""
from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pyogrio.raw import write as write_raw

from formats.errors import OutOfSpace, is_out_of_space

GPKG_MIMETYPE = "application/geopackage+sqlite3"
SHP_ZIP_MIMETYPE = "application/zip"
#: Shapefile field names are at most 10 characters: the long ones, renamed.
SHP_FIELDS = {"opening_hours": "open_hours", "district_name": "dist_name", "resolution_m": "res_m",
              "drive_speed_kmh": "drive_kmh", "osm_way_id": "osm_way"}
#: Columns that are positions for spreadsheets, not attributes of a vector file.
_NOT_ATTRIBUTES = ("wkb", "longitude", "latitude")

Rows = list[dict[str, Any]]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def _column(values: list[Any], kind: str, *, shapefile: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """One field's values as the numpy array pyogrio types the field by, and its null mask."""
    missing = np.array([v is None for v in values], dtype=bool)
    mask = missing if missing.any() else None
    if kind == "integer":
        return np.array([0 if v is None else int(v) for v in values], dtype=np.int64), mask
    if kind == "number":
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64), None
    if kind == "boolean":
        return np.array([bool(v) for v in values], dtype=bool), mask
    if kind == "date":
        return np.array([v.isoformat() if v is not None else "NaT" for v in values], dtype="datetime64[D]"), None
    if kind == "date-time" and not shapefile:
        return np.array([_utc(v) if v is not None else "NaT" for v in values], dtype="datetime64[ms]"), None
    text = [v.isoformat() if isinstance(v, dt.date) else v for v in values]
    return np.array([None if v is None else str(v) for v in text], dtype=object), None


def _arrays(rows: Rows, columns: Sequence[str], types: Mapping[str, str], *,
            shapefile: bool) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray | None]]:
    geometry = np.array([bytes(r["wkb"]) for r in rows], dtype=object)
    data, masks = [], []
    for col in columns:
        values, mask = _column([r.get(col) for r in rows], types.get(col, "string"), shapefile=shapefile)
        data.append(values)
        masks.append(mask)
    return geometry, data, masks


def _write_batch(path: Path, geometry: np.ndarray, data: list[np.ndarray], names: list[str], **opts: Any) -> None:
    """One batch through GDAL; a write that finds no room says so (:class:`~formats.errors.OutOfSpace`)."""
    try:
        write_raw(path, geometry, data, names, **opts)
    except Exception as exc:
        if is_out_of_space(exc, Path(path)):
            raise OutOfSpace(str(exc)) from exc
        raise


def _write(row_batches: Iterable[Rows], path: Path, *, layer: str, driver: str, geometry_type: str,
           empty_columns: Sequence[str], types: Mapping[str, str]) -> int:
    shapefile = driver == "ESRI Shapefile"
    opts: dict[str, Any] = dict(driver=driver, layer=layer, geometry_type=geometry_type, crs="EPSG:4326",
                                promote_to_multi=geometry_type.startswith("Multi"))
    if shapefile:
        opts["encoding"] = "UTF-8"
    else:  # GeoPackage 1.2: opens without warnings in the GDAL 3.6 / QGIS 3.28 generation too
        opts["dataset_options"] = {"VERSION": "1.2"}
    columns = [c for c in empty_columns if c not in _NOT_ATTRIBUTES]
    names = [SHP_FIELDS.get(c, c) if shapefile else c for c in columns]
    n = 0
    for rows in row_batches:
        if not rows:
            continue
        geometry, data, masks = _arrays(rows, columns, types, shapefile=shapefile)
        field_mask = masks if any(m is not None for m in masks) else None
        _write_batch(path, geometry, data, names, field_mask=field_mask, append=n > 0, **opts)
        n += len(rows)
    if n == 0:
        geometry, data, _ = _arrays([], columns, types, shapefile=shapefile)
        _write_batch(path, geometry, data, names, **opts)
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
        The fields, in order (an empty export still has its schema).
    types : mapping
        Column name → ``integer``, ``number``, ``boolean``, ``string``, ``date`` or ``date-time``.
    """
    path.unlink(missing_ok=True)
    return _write(row_batches, path, layer=layer, driver="GPKG", geometry_type=geometry_type,
                  empty_columns=empty_columns, types=types)


def write_shp_zip(row_batches: Iterable[Rows], path: Path, *, layer: str, geometry_type: str,
                  empty_columns: Sequence[str], types: Mapping[str, str]) -> int:
    """A zipped Shapefile (.shp .shx .dbf .prj .cpg, UTF-8) at ``path``; return the feature count.

    Field names longer than ten characters are shortened (:data:`SHP_FIELDS`);
    dates are DBF Date fields, times ISO text. Parameters as :func:`write_gpkg`.
    """
    with tempfile.TemporaryDirectory(prefix="minsheng-shp-", dir=path.parent) as tmp:
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
