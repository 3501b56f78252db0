"""Downloads: ``GET /export/<layer>.<fmt>`` for the facility layers and ``population``.

Formats: ``geojson`` (RFC 7946, WGS-84, streamed; ``crs=gcj02`` is offered for
AMap front ends and says it is non-standard), ``gpkg``, ``shp`` (zip with .prj
and .cpg), ``csv`` (UTF-8 with BOM, longitude/latitude) and ``xlsx``. Filters:
``district``, ``bbox`` (degrees, WGS-84), ``updated_since``.

Other blueprints send their own results as files with :func:`geojson_response`
and :func:`csv_response`.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from flask import Blueprint, Response, current_app, request, send_file
from flask.typing import ResponseReturnValue

from formats import geojson, tabular
from services import exporting, features
from services.features import FeatureQuery
from web.database import get_engine
from web.params import DISTRICT, Param, operation, parse
from web.responses import errors

bp = Blueprint("downloads", __name__)

#: Rows per batch handed to the CSV writer by :func:`csv_response`.
CSV_BATCH = 1000

LAYER = Param("layer", "string", "Collection: a facility layer key, population, village or roads.",
              enum=features.collection_keys, location="path")
FORMAT = Param("fmt", "string", "File format (the name's extension).", enum=tuple(exporting.FORMATS),
               location="path")
BBOX = Param("bbox", "bbox", "minlon,minlat,maxlon,maxlat in degrees (WGS-84): features that intersect it.")
UPDATED_SINCE = Param("updated_since", "date-time", "Facilities changed at or after this time (ISO 8601).")
CRS = Param("crs", "string", "gcj02: non-standard GeoJSON for AMap front ends (geojson only).",
            enum=exporting.CRS_CHOICES, default="wgs84")
FILTERS = (DISTRICT, BBOX, UPDATED_SINCE, CRS)

_FILE = {"schema": {"type": "string", "format": "binary"}}
RESPONSES = {"200": {"description": "The file (Content-Disposition names the layer and date)", "content": {
    geojson.MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/FeatureCollection"}},
    **{exporting.FORMATS[f].media_type: _FILE for f in ("gpkg", "shp", "xlsx")},
    "text/csv": {"schema": {"type": "string"}}}}, **errors(400, 503),
    "507": {"description": "No room on the server to build the file (gpkg, shp, xlsx); geojson and csv stream",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}


def _disposition(name: str) -> str:
    return f'attachment; filename="{name}"'


def download_response(download: exporting.Download) -> Response:
    """The HTTP answer for a :class:`~services.exporting.Download`: streamed text, or its open (already
    unlinked) file, closed when the response ends."""
    headers = {"Content-Disposition": _disposition(download.filename)}
    if download.coordinate_system:
        headers["X-Coordinate-System"] = download.coordinate_system
        headers["Warning"] = f'299 - "{download.crs_note}"'
    if download.file is None:
        return Response(download.chunks, content_type=download.media_type, headers=headers)
    response = send_file(download.file, mimetype=download.media_type, as_attachment=True,
                         download_name=download.filename, max_age=0)
    response.headers.update(headers)
    if download.size is not None:
        response.content_length = download.size
    return response


def geojson_response(feature_iter: Iterable[dict[str, Any] | str], filename: str, *,
                     members: dict[str, Any] | None = None) -> Response:
    """A streamed GeoJSON FeatureCollection download.

    Parameters
    ----------
    feature_iter : iterable of dict or str
        GeoJSON Feature objects (WGS-84 lon/lat degrees) or their JSON texts.
    filename : str
        Download name, e.g. ``services.exporting.filename("gaps_370402", "geojson")``.
    members : dict, optional
        Top-level foreign members (e.g. ``{"synthetic": True, "radius_m": 1000}``).
    """
    name = filename.rsplit(".", 1)[0]
    body = geojson.feature_collection(geojson.feature_texts(feature_iter), name=name, members=members)
    return Response(body, mimetype=geojson.MEDIA_TYPE, headers={"Content-Disposition": _disposition(filename)})


def csv_response(rows: Iterable[dict[str, Any]], filename: str, *, columns: list[str] | None = None) -> Response:
    """A streamed CSV download (UTF-8 with BOM so Excel shows Chinese).

    ``rows`` are dicts; give ``longitude``/``latitude`` keys for positions
    (degrees, WGS-84). ``columns`` fixes the order (default: the first row's keys).
    """
    def batches() -> Iterator[list[dict[str, Any]]]:
        buf: list[dict[str, Any]] = []
        for row in rows:
            buf.append(row)
            if len(buf) >= CSV_BATCH:
                yield buf
                buf = []
        yield buf

    return Response(tabular.csv_stream(batches(), columns), content_type=tabular.CSV_MIMETYPE,
                    headers={"Content-Disposition": _disposition(filename)})


@bp.get("/export/<layer>.<fmt>")
@operation("Download a layer (GeoJSON streamed, GeoPackage, zipped Shapefile, CSV with BOM, XLSX)", "export",
           (LAYER, FORMAT, *FILTERS), responses=RESPONSES)
def export(layer: str, fmt: str) -> ResponseReturnValue:
    key = LAYER.coerce(layer)
    fmt = FORMAT.but(name="format").coerce(fmt)  # the error names "format", as users say it
    args = parse(FILTERS)
    if request.method == "HEAD":  # the headers a GET would send; no file is built
        name, media_type = exporting.describe(key, fmt, crs=args.crs)
        return Response(content_type=media_type, headers={"Content-Disposition": _disposition(name)})
    query = FeatureQuery(district=args.district, bbox=args.bbox, updated_since=args.updated_since)
    return download_response(exporting.download(get_engine(), key, fmt, query, crs=args.crs,
                                                workdir=current_app.config.get("EXPORT_DIR") or None))
