"""Facilities held in memory for nearest in a straight line: the planar (degree) order PostGIS ``<->`` gives.

Pure (no database). :class:`PlanarIndex` answers the two questions nearest's
"filter and refine" rounds ask of the database (:mod:`services.candidates`),
with the same meaning, so the same exactness rules apply:

* the ``m`` items nearest a position in *planar* order: Euclidean distance in
  the longitude/latitude plane, degrees, from the position to the item's
  geometry (0 inside an area), which is what PostGIS orders ``geom <-> point``
  by for SRID 4326;
* every item within a planar radius (``ST_DWithin`` on degrees).

Points sit in a k-d tree (scipy ``cKDTree``; a few hundred are simply
measured one by one); areas (a park's polygon) are few
and measured one by one with shapely. :func:`geodesic_distance_to_areas_m`
gives an area's ground distance (metres on the WGS-84 ellipsoid to its nearest
point, 0 inside), which PostGIS computes as ``ST_Distance(geography,
geography, true)``. Positions are WGS-84 degrees.
"""
from __future__ import annotations

import math

import numpy as np
import shapely
from scipy.spatial import cKDTree

from geo.errors import GeoError
from geo.nearest import GEOD

#: Up to this many points a layer's points are measured one by one (numpy), which is quicker than a tree walk.
_BRUTE_MAX = 512
#: Slack on a radius (relative), so an item exactly on it is kept whatever the rounding of either side.
_RADIUS_SLACK = 1e-12


class PlanarIndex:
    """Items (points or areas, WGS-84 degrees) in planar order of distance from a position.

    Parameters
    ----------
    lons, lats : numpy.ndarray
        Each item's position (for an area, any point of it; used for points only).
    areas : numpy.ndarray of shapely geometries or None
        Each item's area, or None where the item is a point.
    """

    def __init__(self, lons: np.ndarray, lats: np.ndarray, areas: np.ndarray) -> None:
        is_area = np.array([a is not None for a in areas], dtype=bool)
        self._is_area = is_area
        self.size = len(areas)
        self._points = np.flatnonzero(~is_area)
        self._areas = np.flatnonzero(is_area)
        xy = np.column_stack([np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)])[self._points]
        self._xy = np.ascontiguousarray(xy)
        self._tree = cKDTree(xy) if len(xy) > _BRUTE_MAX else None
        self._area_geoms = np.asarray(areas, dtype=object)[self._areas] if len(self._areas) else np.empty(0, object)
        if len(self._area_geoms):
            shapely.prepare(self._area_geoms)

    def nearest(self, lon: float, lat: float, m: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Indices and planar distances (degrees) of the ``m`` items nearest (lon, lat), nearest first.

        ``m`` None: every item. Ties keep the lower index first.
        """
        want = self.size if m is None else min(m, self.size)
        if want <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        idx, deg = self._points_nearest(lon, lat, want)
        if not len(self._areas):
            return idx, deg  # the tree's order: nearest first
        idx = np.concatenate([idx, self._areas])
        deg = np.concatenate([deg, self._area_deg(lon, lat)])
        order = np.lexsort((idx, deg))[:want]
        return idx[order], deg[order]

    def within(self, lon: float, lat: float, radius_deg: float | None) -> tuple[np.ndarray, np.ndarray]:
        """Indices and planar distances (degrees) of every item within ``radius_deg`` (None: every item)."""
        if radius_deg is None or not math.isfinite(radius_deg):
            return self.nearest(lon, lat, None)
        r = radius_deg * (1 + _RADIUS_SLACK)
        parts_i, parts_d = [], []
        if self._tree is not None:
            found = np.asarray(self._tree.query_ball_point([lon, lat], r), dtype=np.int64)
            d = np.hypot(self._xy[found, 0] - lon, self._xy[found, 1] - lat)
        else:
            d = np.hypot(self._xy[:, 0] - lon, self._xy[:, 1] - lat)
            found = np.flatnonzero(d <= r)
            d = d[found]
        if len(found):
            parts_i.append(self._points[found])
            parts_d.append(d)
        if len(self._areas):
            adeg = self._area_deg(lon, lat)
            keep = adeg <= r
            parts_i.append(self._areas[keep])
            parts_d.append(adeg[keep])
        if not parts_i:
            return np.empty(0, dtype=np.int64), np.empty(0)
        return np.concatenate(parts_i), np.concatenate(parts_d)

    def is_area(self, idx: np.ndarray) -> np.ndarray:
        """Whether each of ``idx`` is an area."""
        return np.asarray(self._is_area[idx], dtype=bool)

    def area_geometries(self, idx: np.ndarray) -> np.ndarray:
        """The shapely geometries of the areas ``idx`` (each must be an area)."""
        return self._area_geoms[np.searchsorted(self._areas, idx)]

    def _points_nearest(self, lon: float, lat: float, want: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(want, len(self._points))
        if k == 0:
            return np.empty(0, dtype=np.int64), np.empty(0)
        if self._tree is None:
            d = np.hypot(self._xy[:, 0] - lon, self._xy[:, 1] - lat)
            order = np.argsort(d, kind="stable")[:k]
            return self._points[order], d[order]
        deg, found = self._tree.query(np.array([lon, lat]), k=k)
        found = np.atleast_1d(found).astype(np.int64)
        return self._points[found], np.atleast_1d(deg).astype(float)

    def _area_deg(self, lon: float, lat: float) -> np.ndarray:
        return np.asarray(shapely.distance(self._area_geoms, shapely.Point(lon, lat)), dtype=float)


def geodesic_distance_to_areas_m(lon: float, lat: float, areas: np.ndarray) -> np.ndarray:
    """Metres on the WGS-84 ellipsoid from a position to each area's nearest point (0 inside or on it).

    Each boundary segment's nearest point is found in a local frame around the
    position (longitude scaled by the cosine of its latitude), and the ground
    distance to it measured as a geodesic (pyproj ``Geod.inv``, one vectorised
    call). For segments a few kilometres long the frame moves the nearest
    point by far less than a millimetre of ground distance.

    Parameters
    ----------
    lon, lat : float
        WGS-84 degrees.
    areas : numpy.ndarray of shapely (Multi)Polygons
        WGS-84 degrees.

    Raises
    ------
    GeoError
        For a position that is not finite or has a latitude beyond ±90°.
    """
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lat) <= 90):
        raise GeoError(f"the position ({lon!r}, {lat!r}) is not a WGS-84 longitude and latitude in degrees")
    areas = np.asarray(areas, dtype=object)
    if not len(areas):
        return np.empty(0)
    here = shapely.Point(lon, lat)
    inside = shapely.covers(areas, here)
    rings = shapely.get_parts(shapely.boundary(areas[~inside]), return_index=True)
    xy, ring_of = shapely.get_coordinates(rings[0], return_index=True)
    out = np.zeros(len(areas))
    if not len(xy):
        return out
    owner = np.flatnonzero(~inside)[rings[1][ring_of]]
    same_ring = ring_of[:-1] == ring_of[1:]
    a, b, seg_owner = xy[:-1][same_ring], xy[1:][same_ring], owner[:-1][same_ring]
    scale = math.cos(math.radians(lat))
    ax, ay = (a[:, 0] - lon) * scale, a[:, 1] - lat
    dx, dy = (b[:, 0] - a[:, 0]) * scale, b[:, 1] - a[:, 1]
    length2 = dx * dx + dy * dy
    t = np.where(length2 > 0, np.clip(-(ax * dx + ay * dy) / np.where(length2 > 0, length2, 1), 0, 1), 0)
    near_lon = a[:, 0] + t * (b[:, 0] - a[:, 0])
    near_lat = a[:, 1] + t * (b[:, 1] - a[:, 1])
    _, _, dist = GEOD.inv(np.full(len(near_lon), lon), np.full(len(near_lat), lat), near_lon, near_lat)
    best = np.full(len(areas), np.inf)
    np.minimum.at(best, seg_owner, np.asarray(dist, dtype=float))
    out[~inside] = best[~inside]
    return out
