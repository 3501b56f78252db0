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
geography, true)``.

:class:`LayeredIndex` holds the items of many groups (a city's layers) at
once, for the hot path of a resident's click: the first candidates of every
group in one tree query, and ground distances to any items in one geodesic
call. Positions are WGS-84 degrees.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from scipy.spatial import cKDTree

from geo.errors import GeoError
from geo.nearest import GEOD, scaled_bound_slope_m

#: Up to this many points a layer's points are measured one by one (numpy), which is quicker than a tree walk.
_BRUTE_MAX = 512
#: Slack on a radius (relative), so an item exactly on it is kept whatever the rounding of either side.
_RADIUS_SLACK = 1e-12
#: In :class:`LayeredIndex`'s tree each group sits this far (degrees) along a third axis from the next: more
#: than twice any planar distance (the longitude/latitude plane's diagonal is 402.5 degrees), so a group's own
#: items always come before any other group's, and another group's are told apart by distance alone.
_GROUP_GAP_DEG = 1000.0


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


class LayeredIndex:
    """Items (points or areas, WGS-84 degrees) of several groups, in the *scaled* plane: each group's first
    candidates, all groups at once, and ground distances to any items.

    The scaled plane puts a position at ``(scale × lon, lat)``, with
    ``scale`` the cosine of the items' median latitude, so its distances
    (degrees of latitude) follow ground distances closely, and
    :func:`geo.nearest.scaled_bound_slope_m` turns one into a sure lower
    bound on the ground distance that is within a few per cent of it (plain
    degrees, PostGIS's planar order, are off by up to a fifth here). So a
    few candidates per group suffice, and few need their geodesic measured.

    Built for one request's few dozen candidates: numpy and scipy are called
    a fixed number of times whatever the number of groups, and the little
    that is done per candidate is plain Python.

    Parameters
    ----------
    lons, lats : numpy.ndarray
        Each item's position (for an area, any point of it; used for points only).
    areas : numpy.ndarray of shapely geometries or None
        Each item's area, or None where the item is a point.
    groups : numpy.ndarray of int
        Each item's group, 0 to ``n_groups - 1``.
    n_groups : int
    """

    def __init__(self, lons: np.ndarray, lats: np.ndarray, areas: np.ndarray, groups: np.ndarray,
                 n_groups: int) -> None:
        lons, lats = np.asarray(lons, dtype=float), np.asarray(lats, dtype=float)
        groups = np.asarray(groups, dtype=np.int64)
        areas = np.asarray(areas, dtype=object)
        #: cos of the median latitude: a degree of longitude in degrees of latitude, near the data.
        self.scale = math.cos(math.radians(float(np.clip(np.median(lats), -80, 80)))) if len(lats) else 1.0
        is_area = np.array([a is not None for a in areas], dtype=bool)
        points = np.flatnonzero(~is_area)
        self._lon, self._lat = lons.tolist(), lats.tolist()
        self._points = points.tolist()
        self._point_count = np.bincount(groups[points], minlength=n_groups).tolist()
        self._tree = cKDTree(np.column_stack([lons[points] * self.scale, lats[points],
                                              groups[points] * _GROUP_GAP_DEG])) if len(points) else None
        area_items = np.flatnonzero(is_area)
        self._areas = _Areas(areas[area_items])
        self._area_of = [-1] * len(areas)
        for place, item in enumerate(area_items.tolist()):
            self._area_of[item] = place
        self._group_areas = [_ScaledAreas(self._areas, np.flatnonzero(groups[area_items] == g),
                                          area_items[groups[area_items] == g], self.scale) for g in range(n_groups)]

    def slope_m(self, lon: float, lat: float) -> float:
        """Metres of ground per degree of scaled distance from (lon, lat) (:func:`geo.nearest.scaled_bound_slope_m`)."""
        return scaled_bound_slope_m(lon, lat, self.scale)

    def first_candidates(self, lon: float, lat: float, groups: Sequence[int],
                         m: int) -> tuple[list[list[tuple[float, int]]], list[float]]:
        """For each of ``groups``, its ``m`` items (points or areas) nearest (lon, lat) in the scaled plane.

        Returns, per group, ``(scaled degrees, item)`` pairs nearest first,
        and how far (scaled degrees) every item of the group not among them
        surely is (inf when all are there).
        """
        found: list[list[tuple[float, int]]] = [[] for _ in groups]
        beyond = [math.inf] * len(groups)
        if m <= 0:
            return found, beyond
        rows = [row for row, g in enumerate(groups) if self._point_count[g]]
        if rows and self._tree is not None:
            query = np.empty((len(rows), 3))
            query[:, 0], query[:, 1] = lon * self.scale, lat
            query[:, 2] = np.array([groups[row] for row in rows], dtype=float) * _GROUP_GAP_DEG
            half = _GROUP_GAP_DEG / 2
            d, i = self._tree.query(query, k=m, distance_upper_bound=half)  # missing: inf
            points = self._points
            for row, ds, its in zip(rows, np.reshape(d, (len(rows), m)).tolist(),
                                    np.reshape(i, (len(rows), m)).tolist(), strict=True):
                found[row] = [(dd, points[ii]) for dd, ii in zip(ds, its, strict=True) if dd < half]
                if self._point_count[groups[row]] > m:
                    beyond[row] = ds[m - 1]
        for row, g in enumerate(groups):
            areas = self._group_areas[g]
            if not areas.size:
                continue
            pairs, far = areas.nearest(lon, lat, m)
            merged = sorted(found[row] + pairs)
            beyond[row] = min(beyond[row], far)
            if len(merged) > m:  # every item left out is at least as far as the m-th
                beyond[row] = min(beyond[row], merged[m - 1][0])
                merged = merged[:m]
            found[row] = merged
        return found, beyond

    def ground_m(self, lon: float, lat: float, items: Sequence[int]) -> list[float]:
        """Metres on the WGS-84 ellipsoid from (lon, lat) to each of ``items``, in one geodesic call: to a point
        its geodesic, to an area its nearest point's (0 when it covers the position), as
        :func:`geodesic_distance_to_areas_m`."""
        _check_position(lon, lat)
        to_lon: list[float] = []
        to_lat: list[float] = []
        owner: list[int] = []
        out = [math.inf] * len(items)
        places = [(j, self._area_of[item]) for j, item in enumerate(items) if self._area_of[item] >= 0]
        covered = self._areas.cover(lon, lat, [place for _, place in places]) if places else []
        for (j, _), inside in zip(places, covered, strict=True):
            if inside:
                out[j] = 0.0
        areas = dict(places)
        for j, item in enumerate(items):
            if j not in areas:
                to_lon.append(self._lon[item])
                to_lat.append(self._lat[item])
                owner.append(j)
            elif out[j]:
                self._areas.targets(lon, lat, areas[j], to_lon, to_lat)
                owner.extend([j] * (len(to_lon) - len(owner)))
        for j, d in zip(owner, _geodesic_m(lon, lat, to_lon, to_lat), strict=True):
            if d < out[j]:
                out[j] = d
        return out

    def is_area(self, item: int) -> bool:
        """Whether ``item`` is an area."""
        return self._area_of[item] >= 0



class _ScaledAreas:
    """Some of an index's areas (``places`` among them, being ``items``), for distances in the scaled plane:
    their edges scaled, each area's together, and their bounding boxes (degrees)."""

    def __init__(self, areas: _Areas, places: np.ndarray, items: np.ndarray, scale: float) -> None:
        keep = [i for i, place in enumerate(places.tolist()) if areas.edges[place]]  # an empty area is never near
        self.places, self.items, self.scale = places[keep], items[keep], scale
        self.size = len(self.places)
        edges = [np.array(areas.edges[place]).reshape(-1, 4) for place in self.places.tolist()]
        e = np.concatenate(edges) if edges else np.empty((0, 4))
        self.ax, self.ay = e[:, 0] * scale, e[:, 1]
        self.dx, self.dy = (e[:, 2] - e[:, 0]) * scale, e[:, 3] - e[:, 1]
        length2 = self.dx * self.dx + self.dy * self.dy
        self.inverse2 = np.divide(1.0, length2, out=np.zeros_like(length2), where=length2 > 0)
        self.starts = np.cumsum([0] + [len(x) for x in edges[:-1]]).astype(np.int64)
        self.box = shapely.bounds(areas.geoms[self.places]).reshape(-1, 4).T.copy() if self.size \
            else np.empty((4, 0))
        self.geoms = areas.geoms[self.places]

    def nearest(self, lon: float, lat: float, m: int) -> tuple[list[tuple[float, int]], float]:
        """The ``m`` areas nearest (lon, lat) in the scaled plane as ``(scaled degrees, item)`` (0 inside), and how
        far every other one surely is (inf when none is left out)."""
        x, y = lon * self.scale, lat
        t = np.clip(((x - self.ax) * self.dx + (y - self.ay) * self.dy) * self.inverse2, 0.0, 1.0)
        d = np.minimum.reduceat(np.hypot(self.ax + t * self.dx - x, self.ay + t * self.dy - y), self.starts)
        minx, miny, maxx, maxy = self.box
        boxed = np.flatnonzero((minx <= lon) & (lon <= maxx) & (miny <= lat) & (lat <= maxy))
        if len(boxed):  # inside (or on) an area: 0
            d[boxed[shapely.intersects_xy(self.geoms[boxed], lon, lat)]] = 0.0
        far = math.inf
        if self.size > m:
            keep = np.argpartition(d, m - 1)[:m]
            far = float(d[keep].max())
            return list(zip(d[keep].tolist(), self.items[keep].tolist(), strict=True)), far
        return list(zip(d.tolist(), self.items.tolist(), strict=True)), far


class _Areas:
    """Areas (shapely geometries, WGS-84), prepared, with their edges read once: the segments of a polygon's
    rings (holes too), of a line, or a point as a segment of no length, as ``(ax, ay, bx, by)``."""

    def __init__(self, geoms: np.ndarray) -> None:
        self.geoms = np.asarray(geoms, dtype=object)
        if len(self.geoms):
            shapely.prepare(self.geoms)
        self.edges: list[list[tuple[float, float, float, float]]] = []
        for area in self.geoms:
            mine: list[tuple[float, float, float, float]] = []
            for part in shapely.get_parts(area).tolist():
                for line in shapely.get_rings(part).tolist() if part.geom_type == "Polygon" else [part]:
                    xy = shapely.get_coordinates(line).tolist()
                    pairs = zip(xy[:-1], xy[1:], strict=True) if len(xy) > 1 else [(xy[0], xy[0])]
                    mine.extend((a[0], a[1], b[0], b[1]) for a, b in pairs)
            self.edges.append(mine)

    def cover(self, lon: float, lat: float, places: list[int]) -> list[bool]:
        """Whether each of the areas ``places`` covers (lon, lat) (one call for them all)."""
        return [bool(b) for b in shapely.intersects_xy(self.geoms[places], lon, lat)]  # area and position: covers

    def targets(self, lon: float, lat: float, place: int, to_lon: list[float], to_lat: list[float]) -> None:
        """Add where the ground distance from (lon, lat) to area ``place`` (which does not cover it) is measured
        to: the nearest point of each of its edges.

        Each edge's nearest point is found in a local frame around the
        position (longitude scaled by the cosine of its latitude); for edges a
        few kilometres long this moves the nearest point by far less than a
        millimetre of ground distance.
        """
        scale = math.cos(math.radians(lat))
        for ax, ay, bx, by in self.edges[place]:
            px, py = (ax - lon) * scale, ay - lat
            dx, dy = (bx - ax) * scale, by - ay
            length2 = dx * dx + dy * dy
            t = min(max(-(px * dx + py * dy) / length2, 0.0), 1.0) if length2 > 0 else 0.0
            to_lon.append(ax + t * (bx - ax))
            to_lat.append(ay + t * (by - ay))


def _check_position(lon: float, lat: float) -> None:
    if not (math.isfinite(lon) and math.isfinite(lat) and abs(lat) <= 90):
        raise GeoError(f"the position ({lon!r}, {lat!r}) is not a WGS-84 longitude and latitude in degrees")


#: Up to this many positions pyproj is called once per position (its scalar path), which is quicker than
#: converting lists to arrays and back; beyond, once for all.
_ONE_BY_ONE = 32


def _geodesic_m(lon: float, lat: float, lons: list[float], lats: list[float]) -> list[float]:
    """Geodesic metres from one position to many (pyproj ``Geod.inv``; positions already checked)."""
    if len(lons) <= _ONE_BY_ONE:
        inv = GEOD.inv
        return [inv(lon, lat, x, y)[2] for x, y in zip(lons, lats, strict=True)]
    _, _, dist = GEOD.inv([float(lon)] * len(lons), [float(lat)] * len(lats), lons, lats)
    return list(dist)


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
    areas = np.asarray(areas, dtype=object)
    index = LayeredIndex(np.zeros(len(areas)), np.zeros(len(areas)), areas, np.zeros(len(areas), dtype=np.int64), 1)
    return np.array(index.ground_m(lon, lat, range(len(areas))), dtype=float)
