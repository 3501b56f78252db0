"""Exports: ``GET /export/<layer>.<fmt>`` for the five facility layers and ``population``.

Formats: ``geojson`` (RFC 7946, WGS-84, streamed; ``crs=gcj02`` is offered for
AMap front ends and says it is non-standard), ``gpkg``, ``shp`` (zip with .prj
and .cpg), ``csv`` (UTF-8 with BOM, longitude/latitude) and ``xlsx``. Filters:
``district``, ``bbox`` (degrees, WGS-84), ``updated_since``.

Other blueprints export their own results with :func:`geojson_response` and
:func:`csv_response` (e.g. coverage, gaps and suggestions with ``format=``).
"""
from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable

from flask import Blueprint, Response, send_file

from db.export import COLLECTION_KEYS, Query
from etl.export import FORMATS, GCJ02_NOTE, csv_stream, feature_texts, geojson_stream, stream_export, \
    write_export
from web import params
from web.database import get_engine
from web.errors import BadParameter

bp = Blueprint("export", __name__)

#: File extension per format (a Shapefile travels as a zip).
EXTENSIONS = {"geojson": "geojson", "gpkg": "gpkg", "shp": "shp.zip", "csv": "csv", "xlsx": "xlsx"}


def filename_for(name: str, fmt: str, *, today: dt.date | None = None) -> str:
    """``<name>_<YYYY-MM-DD>.<ext>``: the layer and the date, as the download's file name."""
    return f"{name}_{(today or dt.date.today()).isoformat()}.{EXTENSIONS.get(fmt, fmt)}"


def _disposition(filename: str) -> str:
    return f'attachment; filename="{filename}"'


def geojson_response(feature_iter: Iterable[dict | str], filename: str, *,
                     members: dict[str, Any] | None = None) -> Response:
    """A streamed GeoJSON FeatureCollection download.

    Parameters
    ----------
    feature_iter : iterable of dict or str
        GeoJSON Feature objects (WGS-84 lon/lat) or their JSON texts.
    filename : str
        Download name, e.g. ``filename_for("coverage_service_office", "geojson")``.
    members : dict, optional
        Top-level foreign members (e.g. ``{"synthetic": True, "radius_m": 1000}``).
    """
    name = filename.rsplit(".", 1)[0]
    body = geojson_stream(feature_texts(feature_iter), name=name, members=members)
    return Response(body, mimetype="application/geo+json",
                    headers={"Content-Disposition": _disposition(filename)})


def csv_response(rows: Iterable[dict[str, Any]], filename: str, *, columns: list[str] | None = None) -> Response:
    """A streamed CSV download (UTF-8 with BOM so Excel shows Chinese).

    ``rows`` are dicts; give ``longitude``/``latitude`` keys for positions
    (degrees, WGS-84). ``columns`` fixes the order (default: the first row's keys).
    """
    def batches():
        buf: list[dict[str, Any]] = []
        for row in rows:
            buf.append(row)
            if len(buf) >= 1000:
                yield buf
                buf = []
        yield buf

    return Response(csv_stream(batches(), columns), mimetype="text/csv",
                    headers={"Content-Disposition": _disposition(filename)})


def _parse_name(key: str, fmt: str) -> tuple[str, str]:
    if key not in COLLECTION_KEYS:
        raise BadParameter(f"layer was {key[:40]!r} but is expected to be one of {', '.join(COLLECTION_KEYS)}",
                           parameter="layer", allowed=list(COLLECTION_KEYS))
    if fmt not in FORMATS:
        raise BadParameter(f"format was {fmt[:20]!r} but is expected to be one of {', '.join(FORMATS)}",
                           parameter="format", allowed=list(FORMATS))
    return key, fmt


def export_response(key: str, fmt: str, query: Query, crs: str) -> Response:
    """The download for one layer in one format (streamed, or a temporary file sent and removed)."""
    if crs != "wgs84" and fmt != "geojson":
        raise BadParameter(f"crs={crs} is only offered for geojson; {fmt} is always WGS-84",
                           parameter="crs", allowed=["wgs84"])
    engine = get_engine()
    filename = filename_for(key, fmt)
    headers = {"Content-Disposition": _disposition(filename)}
    if crs == "gcj02":
        headers["X-Coordinate-System"] = "GCJ-02 (non-standard GeoJSON)"
        headers["Warning"] = f'299 - "{GCJ02_NOTE}"'
    if fmt in ("geojson", "csv"):
        mimetype = "application/geo+json" if fmt == "geojson" else "text/csv"
        return Response(stream_export(engine, key, fmt, query, crs=crs), mimetype=mimetype, headers=headers)
    tmp = Path(tempfile.mkdtemp(prefix="minsheng-export-"))
    try:
        path = tmp / filename
        write_export(engine, key, fmt, path, query)
        response = send_file(path, mimetype=FORMATS[fmt], as_attachment=True, download_name=filename,
                             max_age=0)
        response.headers.update(headers)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    response.call_on_close(lambda: shutil.rmtree(tmp, ignore_errors=True))
    return response


@bp.get("/export/<layer>.<fmt>")
def export(layer: str, fmt: str):
    """``/export/<layer>.<fmt>?district=&bbox=&updated_since=&crs=``."""
    key, fmt = _parse_name(layer, fmt)
    query = Query(district=params.district(), bbox=params.bbox(), updated_since=params.timestamp("updated_since"))
    crs = params.choice("crs", ["wgs84", "gcj02"], default="wgs84")
    return export_response(key, fmt, query, crs)
