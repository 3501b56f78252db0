"""The CRSs OGC API – Features Part 2 clients may ask for, by URI, and boxes moved between them.

Storage is WGS-84 longitude/latitude (CRS84). A client may ask for features
(``crs``), give its bbox (``bbox-crs``) or its filter geometries
(``filter-crs``) in any of :data:`CRS_URIS`: CRS84, EPSG:4326 (the same
datum, latitude first as the EPSG axis order says), EPSG:4490 (CGCS2000,
latitude first), the metric CRS (``geo.crs.METRIC_EPSG``, EPSG:4548, CGCS2000
3-degree Gauss-Krüger zone 39, northing first as EPSG says) and EPSG:3857
(Web Mercator, easting first). Axis order comes from the EPSG database
(pyproj), not from a list written here.
"""
from __future__ import annotations

import functools

from pyproj import CRS, Transformer

from db.features import CRS84 as CRS84_OUT
from db.features import METRE_DECIMALS, OutputCrs
from geo.crs import METRIC_EPSG
from services.errors import InvalidRequest

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_PREFIX = "http://www.opengis.net/def/crs/EPSG/0/"
#: The EPSG codes served besides CRS84, in the order collections list them.
EPSG_CODES: tuple[int, ...] = (4326, 4490, METRIC_EPSG, 3857)
#: Every CRS URI a client may name, CRS84 (the default and the storage CRS) first.
CRS_URIS: tuple[str, ...] = (CRS84, *(f"{EPSG_PREFIX}{code}" for code in EPSG_CODES))
#: The storage CRS (what ``storageCrs`` declares).
STORAGE_CRS = CRS84


def srid(uri: str) -> int:
    """The EPSG code PostGIS uses for a CRS URI (CRS84 is 4326 with longitude first)."""
    return 4326 if uri == CRS84 else int(uri.removeprefix(EPSG_PREFIX))


@functools.cache
def first_axis_north(code: int) -> bool:
    """Whether the EPSG definition of ``code`` puts latitude or northing first (pyproj's axis list)."""
    return CRS.from_epsg(code).axis_info[0].direction.lower() in ("north", "south")


def checked(uri: str | None, parameter: str) -> str:
    """``uri`` if it is one of :data:`CRS_URIS` (CRS84 when None); :class:`InvalidRequest` names them."""
    if uri is None:
        return CRS84
    if uri not in CRS_URIS:
        raise InvalidRequest(f"{parameter} was {uri[:80]!r} but is expected to be one of {', '.join(CRS_URIS)}",
                             parameter=parameter, allowed=list(CRS_URIS))
    return uri


def output(uri: str) -> OutputCrs:
    """How to write (or read) positions in CRS ``uri``: EPSG code, axis order, decimals (degrees 7, metres 3)."""
    if uri == CRS84:
        return CRS84_OUT
    code = srid(uri)
    geographic = CRS.from_epsg(code).is_geographic
    return OutputCrs(srid=code, flip=first_axis_north(code),
                     decimals=CRS84_OUT.decimals if geographic else METRE_DECIMALS)


def bbox_to_crs84(values: tuple[float, ...], uri: str) -> tuple[float, float, float, float]:
    """An OGC ``bbox`` (4 numbers, or 6 with heights, in CRS ``uri`` and its axis order) as CRS84 degrees.

    A CRS84 box whose first longitude is greater than its second crosses the
    antimeridian and is kept so (the query splits it). Boxes in other CRSs are
    transformed with their edges densified, so the result covers the whole box.

    Raises
    ------
    InvalidRequest
        Latitudes outside ±90 or reversed, longitudes outside ±180, or a projected box with min above max.
    """
    box = (values[0], values[1], values[3], values[4]) if len(values) == 6 else tuple(values)
    x1, y1, x2, y2 = box
    code = srid(uri)
    if uri != CRS84 and first_axis_north(code):
        x1, y1, x2, y2 = y1, x1, y2, x2
    if CRS.from_epsg(code).is_geographic:
        if not (-180 <= x1 <= 180 and -180 <= x2 <= 180 and -90 <= y1 <= y2 <= 90):
            raise InvalidRequest("bbox must have longitudes within ±180 and latitudes within ±90, the lower "
                                 "latitude first (longitude first in CRS84; latitude first in EPSG:4326 and "
                                 "EPSG:4490)", parameter="bbox")
        return (x1, y1, x2, y2)
    if not (x1 < x2 and y1 < y2):
        raise InvalidRequest("bbox in a projected CRS must give the lower corner first", parameter="bbox")
    lon1, lat1, lon2, lat2 = Transformer.from_crs(code, 4326, always_xy=True).transform_bounds(
        x1, y1, x2, y2, densify_pts=21)
    return (lon1, lat1, lon2, lat2)
