"""Exports: a collection as GeoJSON, GeoPackage, zipped Shapefile, CSV or XLSX.

The formats are registered in :data:`FORMATS` (the writers live in
:mod:`formats`). GeoJSON and CSV stream from a server-side cursor; the other
formats are written to a file batch by batch, in a folder of its own under
the export directory (``MINSHENG_EXPORT_DIR``, else the system's temporary
folder). Once written, the file is opened and its folder removed at once:
the open handle is what is sent, so nothing is left behind however the
response ends, and the space returns when the handle closes. A full disk or
quota is :class:`~services.errors.StorageFull` (507), never a half file.

XLSX is bounded (:data:`XLSX_ROW_CAP` rows, checked by a count before any
work): the population grid as a spreadsheet took half a minute. Coordinates
are WGS-84 (EPSG:4326) degrees, except ``crs=gcj02``: non-standard GeoJSON
for AMap front ends, which says so. Synthetic data is labelled in every format.
"""
from __future__ import annotations

import datetime as dt
import errno
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import Connection, Engine

from db import features as db_features
from db.features import CollectionSource, FeatureQuery
from formats import geojson, tabular, vector
from formats.errors import FormatError, OutOfSpace
from services.errors import InvalidRequest, StorageFull, TooMuchWork
from services.features import collection_keys, title

Rows = list[dict[str, Any]]
#: A file writer: (connection, source, row batches, path) → features written.
FileWriter = Callable[[Connection, CollectionSource, Iterator[Rows], Path], int]

#: What ``crs=`` offers: WGS-84 (standard) or GCJ-02 (GeoJSON only, non-standard).
CRS_CHOICES: tuple[str, ...] = ("wgs84", "gcj02")
GCJ02_NOTE = geojson.GCJ02_NOTE
GCJ02_LABEL = "GCJ-02 (non-standard GeoJSON)"
SYNTHETIC_NOTE = ("SYNTHETIC DEMO DATA: these features were generated for the demo city and are not real "
                  "facilities or people. 合成演示数据，非真实设施或人口。")
WGS84_NOTE = ("Coordinates: WGS-84 (EPSG:4326) longitude/latitude in degrees; longitude/latitude columns are "
              "each feature's representative point.")


#: Most rows an XLSX export builds (a spreadsheet of the whole grid took 35 s; CSV and GeoPackage have no cap).
XLSX_ROW_CAP = 25_000
#: errno values that mean the disk (or the user's quota, or a file size limit) is full.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def table_columns(src: CollectionSource) -> list[str]:
    """CSV/XLSX columns: the properties, longitude/latitude, and WKT for polygon and line collections."""
    cols = src.prop_names + ["longitude", "latitude"]
    if src.geometry_type in ("MultiPolygon", "LineString"):
        cols.append("wkt")
    return cols


def notes(key: str, *, synthetic: bool, crs: str = "wgs84") -> list[str]:
    """Plain-language notes carried by every file export (collection, date, CRS, synthetic data)."""
    lines = [f"{title(key, 'zh')} / {title(key, 'en')} ({key})",
             f"Exported {dt.date.today().isoformat()} from Minsheng Map 民生设施地图",
             GCJ02_NOTE if crs == "gcj02" else WGS84_NOTE]
    if synthetic:
        lines.append(SYNTHETIC_NOTE)
    return lines


def _table_rows(src: CollectionSource, rows: Iterator[Rows]) -> Iterator[Rows]:
    return tabular.with_wkt(rows) if "wkt" in table_columns(src) else rows


def _empty_columns(src: CollectionSource) -> list[str]:
    return [c for c in src.prop_names if c != "id"] + ["id"]


def _write_xlsx(conn: Connection, src: CollectionSource, rows: Iterator[Rows], path: Path) -> int:
    return tabular.write_xlsx(_table_rows(src, rows), path, columns=table_columns(src), sheet=src.key,
                              notes=notes(src.key, synthetic=db_features.has_synthetic(conn, src)))


def _write_gpkg(conn: Connection, src: CollectionSource, rows: Iterator[Rows], path: Path) -> int:
    return vector.write_gpkg(rows, path, layer=src.key, geometry_type=src.geometry_type,
                             empty_columns=_empty_columns(src), types=src.types)


def _write_shp(conn: Connection, src: CollectionSource, rows: Iterator[Rows], path: Path) -> int:
    return vector.write_shp_zip(rows, path, layer=src.key, geometry_type=src.geometry_type,
                                empty_columns=_empty_columns(src), types=src.types)


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its media type, file extension, and how it is made.

    A streamed format (``writer`` None) is text written as it is read; a file
    format has a ``writer`` that fills a file on disk.
    """

    key: str
    media_type: str
    extension: str
    writer: FileWriter | None = None

    @property
    def streamed(self) -> bool:
        return self.writer is None


FORMATS: dict[str, ExportFormat] = {f.key: f for f in (
    ExportFormat("geojson", geojson.MEDIA_TYPE, "geojson"),
    ExportFormat("gpkg", vector.GPKG_MIMETYPE, "gpkg", _write_gpkg),
    ExportFormat("shp", vector.SHP_ZIP_MIMETYPE, "shp.zip", _write_shp),
    ExportFormat("csv", tabular.CSV_MIMETYPE, "csv"),
    ExportFormat("xlsx", tabular.XLSX_MIMETYPE, "xlsx", _write_xlsx),
)}


@dataclass(frozen=True)
class Download:
    """One export ready to send: streamed ``chunks`` of text, or an open ``file`` of ``size`` bytes.

    ``coordinate_system`` and ``crs_note`` are set when the coordinates are
    not WGS-84 (GCJ-02), so the response can say so. The file is already
    unlinked from the disk: closing it (the response does) frees its space.
    """

    filename: str
    media_type: str
    chunks: Iterator[str] | None = None
    file: IO[bytes] | None = None
    size: int | None = None
    coordinate_system: str | None = None
    crs_note: str | None = None


def filename(name: str, fmt: str, *, today: dt.date | None = None) -> str:
    """``<name>_<YYYY-MM-DD>.<ext>``: the collection (or report) and the date, as a download's file name."""
    ext = FORMATS[fmt].extension if fmt in FORMATS else fmt
    return f"{name}_{(today or dt.date.today()).isoformat()}.{ext}"


def describe(key: str, fmt: str, *, crs: str = "wgs84") -> tuple[str, str]:
    """The file name and media type a download would have, checked, without reading or building anything
    (what ``HEAD`` answers)."""
    _, spec = _checked(key, fmt, crs)
    return filename(key, fmt), spec.media_type


def _checked(key: str, fmt: str, crs: str) -> tuple[CollectionSource, ExportFormat]:
    """The source and format asked for; :class:`InvalidRequest` names the bad one and what is allowed."""
    keys = collection_keys()
    if key not in keys:
        raise InvalidRequest(f"layer was {key[:40]!r} but is expected to be one of {', '.join(keys)}",
                             parameter="layer", allowed=list(keys))
    if fmt not in FORMATS:
        raise InvalidRequest(f"format was {fmt[:20]!r} but is expected to be one of {', '.join(FORMATS)}",
                             parameter="format", allowed=list(FORMATS))
    if crs not in CRS_CHOICES:
        raise InvalidRequest(f"crs was {crs[:20]!r} but is expected to be one of {', '.join(CRS_CHOICES)}",
                             parameter="crs", allowed=list(CRS_CHOICES))
    if crs != "wgs84" and fmt != "geojson":
        raise InvalidRequest(f"crs={crs} is only offered for geojson; {fmt} is always WGS-84",
                             parameter="crs", allowed=["wgs84"])
    return db_features.source_for(key), FORMATS[fmt]


def _text(conn: Connection, src: CollectionSource, fmt: str, query: FeatureQuery | None,
          crs: str) -> Iterator[str]:
    """Text chunks of a GeoJSON or CSV export read on ``conn`` (the header facts are read now)."""
    if fmt == "geojson":
        members: dict[str, Any] = {}
        if db_features.has_synthetic(conn, src):
            members.update(synthetic=True, notice=SYNTHETIC_NOTE)
        batches = db_features.geojson_batches(conn, src, query)
        if crs == "gcj02":
            members.update(coordinate_system="GCJ-02", crs_note=GCJ02_NOTE)
            batches = geojson.to_gcj02(batches)
        return geojson.feature_collection(batches, name=src.key, members=members)
    return tabular.csv_stream(_table_rows(src, db_features.row_batches(conn, src, query)), table_columns(src))


def _stream(engine: Engine, src: CollectionSource, fmt: str, query: FeatureQuery | None,
            crs: str) -> Generator[str, None, None]:
    """The export's text on a connection of its own, held until the last chunk (or until closed).

    Its first item is ``""``, yielded once the connection is open and the
    header facts are read: :func:`download` takes it, so an unreachable
    database is an error before the response starts, not halfway through.
    """
    with engine.connect() as conn:
        chunks = _text(conn, src, fmt, query, crs)
        yield ""
        yield from chunks


def _write(conn: Connection, src: CollectionSource, spec: ExportFormat, path: Path, query: FeatureQuery | None,
           crs: str) -> int | None:
    if spec.writer is None:
        with open(path, "w", encoding="utf-8", newline="") as fh:
            for chunk in _text(conn, src, spec.key, query, crs):
                fh.write(chunk)
        return None
    if spec.key == "xlsx":
        rows = db_features.count(conn, src, query)
        if rows > XLSX_ROW_CAP:
            raise TooMuchWork(f"an XLSX export builds at most {XLSX_ROW_CAP:,} rows and this one has {rows:,}: "
                              "filter it (district, bbox) or use csv, gpkg or geojson, which have no cap",
                              parameter="format", allowed=["csv", "gpkg", "geojson", "shp"])
    try:
        return spec.writer(conn, src, db_features.row_batches(conn, src, query), path)
    except FormatError as exc:
        raise TooMuchWork(str(exc), parameter="format", allowed=[k for k in FORMATS if k != spec.key]) from exc


#: How the writers' libraries (GDAL, SQLite, lxml under openpyxl) word a full disk when they give no errno.
NO_SPACE_WORDS = ("no space left on device", "database or disk is full", "disk quota exceeded", "io_enospc")
#: A write that failed in a folder with less free space than this failed for lack of room.
NEARLY_FULL_BYTES = 1 << 20


def _no_space(exc: BaseException, folder: Path | None = None) -> bool:
    """Whether ``exc`` (or an error it came from) means the disk is full, or it happened in a full ``folder``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OutOfSpace) or (isinstance(seen, OSError) and seen.errno in NO_SPACE):
            return True
        if any(words in str(seen).lower() for words in NO_SPACE_WORDS):
            return True
        seen = seen.__cause__ or seen.__context__
    try:  # some writers (lxml's serialiser) only say the write failed
        return folder is not None and shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def _built(engine: Engine, src: CollectionSource, spec: ExportFormat, name: str, query: FeatureQuery | None,
           crs: str, workdir: str | None) -> tuple[IO[bytes], int]:
    """Write the file in a folder of its own, open it, remove the folder; the open handle and its size."""
    try:
        tmp = Path(tempfile.mkdtemp(prefix="minsheng-export-", dir=workdir or None))
    except OSError as exc:
        if _no_space(exc):
            raise _storage_full(exc) from None
        raise
    try:
        with engine.connect() as conn:
            _write(conn, src, spec, tmp / name, query, crs)
        handle = open(tmp / name, "rb")  # noqa: SIM115 - the response closes it
        return handle, (tmp / name).stat().st_size
    except Exception as exc:
        if _no_space(exc, tmp):
            raise _storage_full(exc) from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _storage_full(exc: BaseException) -> StorageFull:
    return StorageFull(f"the server has no space left to build this export ({str(exc)[:120]}); nothing was sent. Try "
                       "again later, or take it as geojson or csv, which stream without a file",
                       parameter="format", allowed=["geojson", "csv"])


def download(engine: Engine, key: str, fmt: str, query: FeatureQuery | None = None, *,
             crs: str = "wgs84", workdir: str | None = None) -> Download:
    """One collection in one format, ready to send.

    Parameters
    ----------
    engine : Engine
    key : str
        Collection key (a layer key or ``population``).
    fmt : str
        A key of :data:`FORMATS`.
    query : FeatureQuery, optional
        Filters: district, bbox (WGS-84 degrees), updated_since.
    crs : str
        ``wgs84``, or ``gcj02`` (GeoJSON only).
    workdir : str, optional
        Where files are built (default: the system's temporary folder).

    Returns
    -------
    Download
        Streamed text for GeoJSON and CSV (the connection is held while it
        streams); an open, already unlinked file for the others.

    Raises
    ------
    InvalidRequest, TooMuchWork (XLSX over :data:`XLSX_ROW_CAP` rows), StorageFull (no room on disk)
    """
    src, spec = _checked(key, fmt, crs)
    name = filename(key, fmt)
    system, note = (GCJ02_LABEL, GCJ02_NOTE) if crs == "gcj02" else (None, None)
    if spec.streamed:
        chunks = _stream(engine, src, fmt, query, crs)
        next(chunks)
        return Download(name, spec.media_type, chunks=chunks, coordinate_system=system, crs_note=note)
    handle, size = _built(engine, src, spec, name, query, crs, workdir)
    return Download(name, spec.media_type, file=handle, size=size, coordinate_system=system, crs_note=note)


def write_file(engine: Engine, key: str, fmt: str, path: Path, query: FeatureQuery | None = None, *,
               crs: str = "wgs84") -> int | None:
    """Write one collection to ``path`` in ``fmt`` (any of :data:`FORMATS`, one connection).

    Returns the feature count where the writer knows it (not for the streamed
    GeoJSON and CSV). Bad arguments raise :class:`InvalidRequest` naming them.
    """
    src, spec = _checked(key, fmt, crs)
    with engine.connect() as conn:
        return _write(conn, src, spec, Path(path), query, crs)
