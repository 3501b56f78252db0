"""Read an operator's offline basemap archive: MBTiles (SQLite) or PMTiles (v3), raster or vector.

:func:`open_archive` checks the file and reads what the page needs to know
(format, zoom range, bounds, attribution); :func:`read_tile` gives one XYZ
tile's bytes, gzip taken off vector tiles so the app's own compression
applies. MBTiles rows are TMS (row 0 at the south), PMTiles are XYZ.
"""
from __future__ import annotations

import gzip
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from pmtiles.reader import MmapSource, Reader
from pmtiles.tile import Compression, TileType

from formats.errors import FormatError

#: Media type of each tile format.
MEDIA_TYPES = {"pbf": "application/vnd.mapbox-vector-tile", "png": "image/png", "jpg": "image/jpeg",
               "webp": "image/webp"}
_PMTILES_FORMAT = {TileType.MVT: "pbf", TileType.PNG: "png", TileType.JPEG: "jpg", TileType.WEBP: "webp"}


@dataclass(frozen=True)
class ArchiveInfo:
    """What a basemap archive holds: ``format`` (pbf, png, jpg, webp), zooms, WGS-84 bounds, attribution."""

    path: Path
    kind: str  # "mbtiles" or "pmtiles"
    format: str
    minzoom: int
    maxzoom: int
    bounds: tuple[float, float, float, float] | None
    attribution: str
    gzipped: bool

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]

    @property
    def vector(self) -> bool:
        return self.format == "pbf"


def open_archive(path: Path) -> ArchiveInfo:
    """Check an ``.mbtiles`` or ``.pmtiles`` file and read its description.

    Raises :class:`~formats.errors.FormatError` naming the file and what is
    wrong (missing, unknown suffix, unreadable, an unsupported tile format).
    """
    if not path.is_file():
        raise FormatError(f"basemap archive {path} does not exist")
    if path.suffix == ".mbtiles":
        return _mbtiles_info(path)
    if path.suffix == ".pmtiles":
        return _pmtiles_info(path)
    raise FormatError(f"basemap archive {path.name}: expected a .mbtiles or .pmtiles file")


def read_tile(info: ArchiveInfo, z: int, x: int, y: int) -> bytes | None:
    """The XYZ tile's bytes (vector tiles without gzip), or ``None`` when the archive has none."""
    data = _mbtiles_tile(info.path, z, x, y) if info.kind == "mbtiles" else _pmtiles_tile(info.path, z, x, y)
    if data is not None and data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data


# --------------------------------------------------------------------------
# MBTiles: a SQLite file with `metadata(name, value)` and `tiles(zoom_level, tile_column, tile_row, tile_data)`
# --------------------------------------------------------------------------

def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def _mbtiles_info(path: Path) -> ArchiveInfo:
    try:
        with _connect(path) as db:
            meta = dict(db.execute("SELECT name, value FROM metadata").fetchall())
            zooms = db.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
    except sqlite3.DatabaseError as err:
        raise FormatError(f"basemap archive {path.name} is not a readable MBTiles file: {err}") from None
    fmt = str(meta.get("format", "png")).lower().replace("jpeg", "jpg")
    if fmt not in MEDIA_TYPES:
        raise FormatError(f"basemap archive {path.name}: tile format {fmt!r} is not one of {', '.join(MEDIA_TYPES)}")
    bounds = tuple(float(v) for v in str(meta["bounds"]).split(",")) if meta.get("bounds") else None
    return ArchiveInfo(path, "mbtiles", fmt, int(meta.get("minzoom", zooms[0] or 0)),
                       int(meta.get("maxzoom", zooms[1] or 0)), bounds if bounds and len(bounds) == 4 else None,
                       str(meta.get("attribution", "")), fmt == "pbf")


def _mbtiles_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    with _connect(path) as db:
        row = db.execute("SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                         (z, x, (1 << z) - 1 - y)).fetchone()
    return bytes(row[0]) if row else None


# --------------------------------------------------------------------------
# PMTiles v3
# --------------------------------------------------------------------------

def _pmtiles_info(path: Path) -> ArchiveInfo:
    try:
        with path.open("rb") as fh:
            reader = Reader(MmapSource(fh))
            header, meta = reader.header(), reader.metadata()
    except Exception as err:  # noqa: BLE001 - any failure to parse is "not a PMTiles file"
        raise FormatError(f"basemap archive {path.name} is not a readable PMTiles file: {err}") from None
    fmt = _PMTILES_FORMAT.get(header["tile_type"])
    if fmt is None:
        raise FormatError(f"basemap archive {path.name}: tile type {header['tile_type']} is not supported")
    bounds = (header["min_lon_e7"] / 1e7, header["min_lat_e7"] / 1e7, header["max_lon_e7"] / 1e7,
              header["max_lat_e7"] / 1e7)
    return ArchiveInfo(path, "pmtiles", fmt, int(header["min_zoom"]), int(header["max_zoom"]), bounds,
                       str(meta.get("attribution", "")), header["tile_compression"] == Compression.GZIP)


def _pmtiles_tile(path: Path, z: int, x: int, y: int) -> bytes | None:
    with path.open("rb") as fh:
        data = Reader(MmapSource(fh)).get(z, x, y)
    return bytes(data) if data else None
