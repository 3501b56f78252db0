"""Planners' zones: read a polygon file (Shapefile, GeoPackage, GeoJSON) into rows ready to store.

:func:`zone_rows` reads the file, finds the id and name columns, checks
every feature (a polygon, valid, inside the city, a unique id and a name) and
returns either all rows, in WGS-84, or the rejects that say why not. Storing
them (replacing the named set in one transaction, nothing when any row is
bad) is :func:`services.zones.load_zones`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from sqlalchemy.engine import Connection

from etl.candidates import check_set_name
from etl.errors import ETLError, Reject
from etl.load import city_and_districts

#: Files a zone set may come in.
ZONE_SUFFIXES = (".shp", ".gpkg", ".geojson", ".json", ".zip")
#: Column names taken as a zone's id and name, first match wins (case-insensitive).
ID_COLUMNS = ("zone_id", "id", "code", "adcode", "编码", "代码")
NAME_COLUMNS = ("name", "zone_name", "name_zh", "名称", "乡镇", "街道")
#: Share of a zone's area that may lie outside the city before it is refused (edges drawn a little wide).
MAX_OUTSIDE_SHARE = 0.5

__all__ = ["check_set_name", "zone_rows"]


def zone_rows(conn: Connection, path: str | Path, *, crs: str | None = None) -> tuple[list[dict[str, Any]],
                                                                                     list[Reject]]:
    """The zones in ``path`` as rows (``zone_id``, ``name``, ``wkb`` WGS-84, ``synthetic``), or the rejects.

    Raises
    ------
    ETLError
        When the file cannot be read, has no CRS (and none is given), or has no name column.
    """
    frame = _read(Path(path), crs)
    id_col, name_col = _column(frame, ID_COLUMNS, required=False), _column(frame, NAME_COLUMNS, required=True)
    city = city_and_districts(conn)[0]
    rows: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    seen: set[str] = set()
    synthetic = bool(frame["synthetic"].astype(bool).any()) if "synthetic" in frame.columns else False
    for number, (_, feature) in enumerate(frame.iterrows(), start=1):
        zone_id = str(feature[id_col]).strip() if id_col else str(number)
        problem = _problem(feature.geometry, feature[name_col], zone_id, seen, city)
        if problem:
            rejects.append(Reject(number, zone_id, problem))
            continue
        seen.add(zone_id)
        rows.append({"zone_id": zone_id, "name": str(feature[name_col]).strip(),
                     "wkb": shapely.to_wkb(shapely.force_2d(feature.geometry)), "synthetic": synthetic})
    if not rows and not rejects:
        raise ETLError(f"{Path(path).name} holds no features")
    return ([] if rejects else rows), rejects


def _read(path: Path, crs: str | None) -> gpd.GeoDataFrame:
    if path.suffix.lower() not in ZONE_SUFFIXES:
        raise ETLError(f"zone file was {path.name!r} but is expected to be one of {', '.join(ZONE_SUFFIXES)}")
    if not path.exists():
        raise ETLError(f"zone file {path.name!r} does not exist")
    try:
        frame = gpd.read_file(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's fault, said plainly
        raise ETLError(f"{path.name} could not be read as a GIS file: {exc}") from None
    if frame.crs is None and crs is None:
        raise ETLError(f"{path.name} has no CRS: give it with --crs (e.g. EPSG:4326 or EPSG:4548)")
    if crs is not None:
        frame = frame.set_crs(crs, allow_override=True)
    return frame.to_crs(4326)


def _column(frame: gpd.GeoDataFrame, names: tuple[str, ...], *, required: bool) -> str | None:
    lower = {str(c).lower(): str(c) for c in frame.columns if c != frame.geometry.name}
    for name in names:
        if name in lower:
            return lower[name]
    if required:
        raise ETLError(f"no name column: expected one of {', '.join(names)}; the file has {', '.join(lower)}")
    return None


def _problem(geom: Any, name: Any, zone_id: str, seen: set[str], city: Any) -> str | None:
    if geom is None or geom.is_empty:
        return "no geometry"
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        return f"geometry is a {geom.geom_type} but a zone must be a Polygon or MultiPolygon"
    if not geom.is_valid:
        return f"invalid polygon: {shapely.is_valid_reason(geom)}"
    if name is None or not str(name).strip() or str(name) == "nan":
        return "no name"
    if zone_id in seen:
        return f"zone id {zone_id!r} appears twice"
    outside = geom.difference(city).area / geom.area if geom.area > 0 else 1.0
    if outside > MAX_OUTSIDE_SHARE:
        return f"{outside:.0%} of the zone lies outside the city (at most {MAX_OUTSIDE_SHARE:.0%} may)"
    return None


#: The demo's zone set: each district cut into quarters of its bounding box (synthetic planning units).
DEMO_SET = "demo_units"


def demo_zone_rows(conn: Connection) -> list[dict[str, Any]]:
    """Synthetic planning units for the demo: each district's quarters (by its bounding box), labelled synthetic.

    Ids are ``<adcode>-<1..4>``; names say which district and that they are synthetic (合成).
    """
    _, codes, polygons = city_and_districts(conn)
    names: dict[str, str] = {code: name for code, name in conn.exec_driver_sql("SELECT adcode, name_zh FROM district")}
    rows = []
    for code, polygon in zip(codes, polygons, strict=True):
        x0, y0, x1, y1 = polygon.bounds
        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
        quarters = [shapely.box(a, b, c, d) for a, b, c, d in
                    ((x0, ym, xm, y1), (xm, ym, x1, y1), (x0, y0, xm, ym), (xm, y0, x1, ym))]
        for i, quarter in enumerate(quarters, start=1):
            part = shapely.make_valid(polygon.intersection(quarter))
            part = shapely.union_all([g for g in getattr(part, "geoms", [part]) if g.geom_type in ("Polygon",
                                                                                                  "MultiPolygon")])
            if part.is_empty or part.area <= 0:
                continue
            rows.append({"zone_id": f"{code}-{i}", "name": f"{names.get(code, code)}规划单元{i}（合成）",
                         "wkb": shapely.to_wkb(part), "synthetic": True})
    return rows
