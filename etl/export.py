"""Writers for the export formats: GeoJSON, GeoPackage, zipped Shapefile, CSV and XLSX.

Each writer takes *batches* of features or rows (as produced by
:mod:`db.export`) so no format holds a whole layer in memory, except where
the format itself needs a file on disk (GeoPackage, Shapefile, XLSX: written
to a path batch by batch).

Coordinates are WGS-84 (EPSG:4326) longitude/latitude in degrees, except the
opt-in, non-standard GCJ-02 GeoJSON for AMap-based front ends.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from geo.crs import wgs84_to_gcj02

#: Export format keys and their media types.
FORMATS: dict[str, str] = {
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "shp": "application/zip",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
#: Shapefile field names are at most 10 characters: the long ones, renamed.
SHP_FIELDS = {"opening_hours": "open_hours", "district_name": "dist_name", "resolution_m": "res_m"}
#: Rows an XLSX sheet can hold (Excel's limit, header included).
XLSX_MAX_ROWS = 1_048_575
GCJ02_NOTE = ("Coordinates are GCJ-02 (the offset system of AMap/Tencent maps), NOT WGS-84: this is "
              "non-standard GeoJSON (RFC 7946 requires WGS-84). Use only with GCJ-02 base maps.")
SYNTHETIC_NOTE = ("SYNTHETIC DEMO DATA: these features were generated for the demo city and are not real "
                  "facilities or people. 合成演示数据，非真实设施或人口。")


class ExportError(ValueError):
    """An export that cannot be written as asked (e.g. too many rows for XLSX)."""


# ------------------------------------------------------------------ GeoJSON
def geojson_stream(feature_batches: Iterable[str], *, name: str, members: dict[str, Any] | None = None
                   ) -> Iterator[str]:
    """A GeoJSON FeatureCollection as text chunks.

    Parameters
    ----------
    feature_batches : iterable of str
        Each item is one or more Feature texts joined by commas (as from
        :func:`db.export.iter_geojson_features`); empty items are skipped.
    name : str
        Collection name (a foreign member, as GDAL writes it).
    members : dict, optional
        More foreign members for the top level (notices, CRS notes).
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


def feature_texts(features: Iterable[dict | str], batch: int = 1000) -> Iterator[str]:
    """Feature dicts (or texts) joined into comma-separated batches for :func:`geojson_stream`."""
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


def _map_coords(coords: Any, fn: Callable) -> Any:
    """Apply ``fn(lon_array, lat_array)`` to every position of a GeoJSON coordinate tree."""
    arr = np.asarray(coords, dtype=float)
    if arr.dtype != object and arr.ndim >= 1 and arr.shape[-1] >= 2:
        lon, lat = fn(arr[..., 0], arr[..., 1])
        out = arr.copy()
        out[..., 0], out[..., 1] = np.round(lon, 7), np.round(lat, 7)
        return out.tolist()
    return [_map_coords(c, fn) for c in coords]


def to_gcj02_batches(feature_batches: Iterable[str]) -> Iterator[str]:
    """Re-project WGS-84 Feature texts to GCJ-02 (for AMap front ends only)."""
    def conv(lon, lat):
        return wgs84_to_gcj02(np.asarray(lon), np.asarray(lat))

    for chunk in feature_batches:
        if not chunk:
            continue
        feats = json.loads("[" + chunk + "]")
        for f in feats:
            geom = f.get("geometry")
            if geom and "coordinates" in geom:
                geom["coordinates"] = _map_coords(geom["coordinates"], conv)
        yield ",\n".join(json.dumps(f, ensure_ascii=False) for f in feats)


# ------------------------------------------------------------------ CSV
#: First characters that make Excel or LibreOffice read a text cell as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula, prefixed with ``'`` (OWASP CSV injection);
    numbers and other text unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (bytes, memoryview)):
        return None
    return defuse(value)


def csv_stream(row_batches: Iterable[list[dict[str, Any]]], columns: list[str] | None = None) -> Iterator[str]:
    """CSV text chunks, UTF-8 with a BOM (so Excel shows Chinese), header first.

    Text cells that a spreadsheet would run as formulas are prefixed with ``'``.

    ``columns`` fixes the column order; by default the first row's keys (minus
    ``wkb``). With no rows and no columns, only the BOM is written.
    """
    yield "\ufeff"
    writer = None
    buf = io.StringIO()
    for rows in row_batches:
        for row in rows:
            if writer is None:
                columns = columns or [k for k in row if k != "wkb"]
                writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
                writer.writeheader()
            writer.writerow({k: _cell(row.get(k)) for k in columns})
        if buf.tell():
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    if writer is None and columns:
        csv.writer(buf, lineterminator="\r\n").writerow(columns)
        yield buf.getvalue()


def with_wkt(row_batches: Iterable[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    """Add a ``wkt`` column (WGS-84) made from each row's ``wkb``."""
    import shapely

    for rows in row_batches:
        geoms = shapely.from_wkb([bytes(r["wkb"]) for r in rows]) if rows else []
        wkts = shapely.to_wkt(geoms, rounding_precision=7) if rows else []
        for r, w in zip(rows, wkts):
            r["wkt"] = w
        yield rows


# ------------------------------------------------------------------ XLSX
def write_xlsx(row_batches: Iterable[list[dict[str, Any]]], path: Path, *, columns: list[str],
               sheet: str, notes: list[str]) -> int:
    """Write rows to an XLSX file with openpyxl's write-only mode; return the row count.

    A second sheet, ``说明 About``, carries ``notes`` (CRS, synthetic data, date).
    """
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31])
    ws.append(columns)
    n = 0
    for rows in row_batches:
        for row in rows:
            n += 1
            if n > XLSX_MAX_ROWS:
                raise ExportError(f"XLSX holds at most {XLSX_MAX_ROWS:,} rows; this export has more: "
                                  "use csv, gpkg or geojson")
            ws.append([_xlsx_cell(row.get(c)) for c in columns])
    about = wb.create_sheet(title="说明 About")
    for line in notes:
        about.append([line])
    wb.save(path)
    return n


def _xlsx_cell(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()  # Excel cannot hold time zones
    if isinstance(value, (bytes, memoryview)):
        return None
    return defuse(value)  # openpyxl would store "=..." as a formula


# ------------------------------------------------------------------ GeoPackage / Shapefile
#: Column types fixed up front, so a batch whose values are all null keeps its type.
_DTYPES = {"id": "Int64", "capacity": "Int64", "population": "Int64", "resolution_m": "float64",
           "synthetic": "boolean"}


def _frame(rows: list[dict[str, Any]], *, rename: dict[str, str] | None = None,
           text_datetimes: bool = False):
    import geopandas as gpd
    import pandas as pd
    import shapely

    geoms = shapely.from_wkb([bytes(r["wkb"]) for r in rows])
    data = pd.DataFrame([{k: v for k, v in r.items() if k not in ("wkb", "longitude", "latitude")}
                         for r in rows])
    for col in data.columns:
        sample = next((v for v in data[col] if v is not None), None)
        if isinstance(sample, dt.datetime):
            data[col] = [v.isoformat() if v is not None else None for v in data[col]] if text_datetimes \
                else pd.to_datetime(data[col], utc=True)
        elif isinstance(sample, dt.date):
            data[col] = pd.to_datetime(data[col]).dt.date if not text_datetimes else \
                [v.isoformat() if v is not None else None for v in data[col]]
    for col, dtype in _DTYPES.items():
        if col in data.columns:
            data[col] = data[col].astype(dtype)
    if rename:
        data = data.rename(columns=rename)
    return gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326")


def write_vector(row_batches: Iterable[list[dict[str, Any]]], path: Path, *, layer: str, driver: str,
                 geometry_type: str, empty_columns: list[str]) -> int:
    """Write rows to a GDAL vector file batch by batch (pyogrio, UTF-8); return the count.

    Parameters
    ----------
    driver : str
        ``GPKG`` or ``ESRI Shapefile`` (field names shortened, dates as text).
    geometry_type : str
        ``Point``, ``Polygon`` or ``MultiPolygon`` (polygons promoted to multi).
    empty_columns : list of str
        Fields for an empty export, so the file still has its schema.
    """
    import geopandas as gpd
    import pyogrio

    shp = driver == "ESRI Shapefile"
    opts = dict(driver=driver, layer=layer, geometry_type=geometry_type,
                promote_to_multi=geometry_type.startswith("Multi"))
    if shp:
        opts["encoding"] = "UTF-8"
    else:  # GeoPackage 1.2: opens without warnings in the GDAL 3.6 / QGIS 3.28 generation too
        opts["dataset_options"] = {"VERSION": "1.2"}
    n = 0
    for rows in row_batches:
        if not rows:
            continue
        frame = _frame(rows, rename=SHP_FIELDS if shp else None, text_datetimes=shp)
        pyogrio.write_dataframe(frame, path, append=n > 0, **opts)
        n += len(rows)
    if n == 0:
        cols = [SHP_FIELDS.get(c, c) if shp else c for c in empty_columns]
        frame = gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs="EPSG:4326")
        pyogrio.write_dataframe(frame.astype({c: object for c in cols}), path, **opts)
    return n


def write_shp_zip(row_batches: Iterable[list[dict[str, Any]]], path: Path, *, layer: str,
                  geometry_type: str, empty_columns: list[str]) -> int:
    """A zipped Shapefile (.shp .shx .dbf .prj .cpg, UTF-8) at ``path``; return the count."""
    with tempfile.TemporaryDirectory(prefix="minsheng-shp-") as tmp:
        shp_path = Path(tmp) / f"{layer}.shp"
        n = write_vector(row_batches, shp_path, layer=layer, driver="ESRI Shapefile",
                         geometry_type=geometry_type, empty_columns=empty_columns)
        cpg = shp_path.with_suffix(".cpg")
        if not cpg.exists():
            cpg.write_text("UTF-8", encoding="ascii")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for part in sorted(Path(tmp).iterdir()):
                zf.write(part, part.name)
    return n


# ------------------------------------------------------------------ one export, any format
def geometry_type(key: str) -> str:
    """The OGR geometry type a collection is written as."""
    from db.export import POPULATION
    from layers import LAYERS

    if key == POPULATION:
        return "Polygon"
    return "MultiPolygon" if LAYERS[key].geometry_kind == "polygon" else "Point"


def table_columns(key: str) -> list[str]:
    """CSV/XLSX columns: the properties, longitude/latitude, and WKT for polygon layers."""
    from db.export import get_source

    cols = get_source(key).prop_names + ["longitude", "latitude"]
    if geometry_type(key) == "MultiPolygon":
        cols.append("wkt")
    return cols


def export_notes(key: str, *, synthetic: bool, crs: str = "wgs84") -> list[str]:
    """Plain-language notes carried by every export (CRS, synthetic data, date)."""
    from db.export import collection_title

    lines = [f"{collection_title(key, 'zh')} / {collection_title(key, 'en')} ({key})",
             f"Exported {dt.date.today().isoformat()} from Minsheng Map 民生设施地图",
             GCJ02_NOTE if crs == "gcj02" else
             "Coordinates: WGS-84 (EPSG:4326) longitude/latitude in degrees; longitude/latitude columns are "
             "each feature's representative point."]
    if synthetic:
        lines.append(SYNTHETIC_NOTE)
    return lines


def stream_export(engine, key: str, fmt: str, query=None, *, crs: str = "wgs84") -> Iterator[str]:
    """Text chunks of a ``geojson`` or ``csv`` export, streamed from the database."""
    from db import export as dbx

    synthetic = dbx.has_synthetic(engine, key)
    if fmt == "geojson":
        members: dict[str, Any] = {}
        if synthetic:
            members["synthetic"] = True
            members["notice"] = SYNTHETIC_NOTE
        batches: Iterable[str] = dbx.iter_geojson_features(engine, key, query)
        if crs == "gcj02":
            members["coordinate_system"] = "GCJ-02"
            members["crs_note"] = GCJ02_NOTE
            batches = to_gcj02_batches(batches)
        return geojson_stream(batches, name=key, members=members)
    if fmt == "csv":
        rows = dbx.iter_rows(engine, key, query)
        cols = table_columns(key)
        return csv_stream(with_wkt(rows) if "wkt" in cols else rows, cols)
    raise ExportError(f"format {fmt!r} is not streamed; use write_export")


def write_export(engine, key: str, fmt: str, path: Path, query=None, *, crs: str = "wgs84") -> int | None:
    """Write one export to ``path`` in ``fmt`` (any of :data:`FORMATS`); return the feature count
    where the writer knows it."""
    from db import export as dbx

    path = Path(path)
    if fmt in ("geojson", "csv"):
        with open(path, "w", encoding="utf-8", newline="") as fh:
            for chunk in stream_export(engine, key, fmt, query, crs=crs):
                fh.write(chunk)
        return None
    if crs != "wgs84":
        raise ExportError(f"crs={crs} is only offered for geojson; {fmt} is always WGS-84")
    rows = dbx.iter_rows(engine, key, query)
    if fmt == "xlsx":
        cols = table_columns(key)
        return write_xlsx(with_wkt(rows) if "wkt" in cols else rows, path, columns=cols, sheet=key,
                          notes=export_notes(key, synthetic=dbx.has_synthetic(engine, key)))
    empty = [c for c in dbx.get_source(key).prop_names if c != "id"] + ["id"]
    if fmt == "gpkg":
        if path.exists():
            path.unlink()
        return write_vector(rows, path, layer=key, driver="GPKG", geometry_type=geometry_type(key),
                            empty_columns=empty)
    if fmt == "shp":
        return write_shp_zip(rows, path, layer=key, geometry_type=geometry_type(key), empty_columns=empty)
    raise ExportError(f"format was {fmt!r} but is expected to be one of {', '.join(FORMATS)}")
