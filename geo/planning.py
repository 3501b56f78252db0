"""Planning glue: per-cell thresholds, where a layer applies, village gaps.

Pure (numpy only, no database, no Flask, no layer registry). The service
layer reads a layer's record (thresholds, the cell classes it applies to,
whether it is part of the composite life circle) and passes those facts in
as plain values; this module turns them into per-cell arrays for the
analysis core (:mod:`geo.coverage`, :mod:`geo.accessibility`,
:mod:`geo.gaps`, :mod:`geo.allocate`). Every distance is metres in a
projected CRS (EPSG:4548 in this project).

The composite "15-minute life circle" is :func:`geo.coverage.composite_mask`
of the layers' covered masks, each with its :func:`applies_mask`: a cell is
inside when every layer that applies to it reaches it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from geo.coverage import as_points, covered_mask
from geo.errors import GeoError


def cell_radius(urban: Any, urban_m: float, rural_m: float,
                override_m: float | None = None) -> np.ndarray:
    """The service radius of each cell, metres.

    Parameters
    ----------
    urban : bool array (n,)
        Whether each cell is urban.
    urban_m, rural_m : float
        The layer's thresholds, metres.
    override_m : float, optional
        One radius for every cell (a planner's override), metres.

    Returns
    -------
    float array (n,)
    """
    mask = np.asarray(urban, dtype=bool)
    if override_m is not None:
        if not np.isfinite(override_m) or override_m <= 0:
            raise GeoError(f"`override_m` was {override_m!r} but is expected to be > 0 metres")
        return np.full(mask.shape, float(override_m))
    for name, value in (("urban_m", urban_m), ("rural_m", rural_m)):
        if not np.isfinite(value) or value <= 0:
            raise GeoError(f"`{name}` was {value!r} but is expected to be > 0 metres")
    return np.where(mask, float(urban_m), float(rural_m))


def applies_mask(urban: Any, *, in_urban: bool, in_rural: bool) -> np.ndarray:
    """Cells where a layer's standard applies.

    Parameters
    ----------
    urban : bool array (n,)
        Whether each cell is urban.
    in_urban, in_rural : bool
        Whether the layer applies to urban cells and to rural cells (the
        layer record's ``applies_to``).

    Returns
    -------
    bool array (n,)
    """
    mask = np.asarray(urban, dtype=bool)
    return (mask & in_urban) | (~mask & in_rural)


def villages_without_reach(vxy: Any, vdistrict: Any, fxy: Any, radius_m: float,
                           districts: list[str]) -> dict[str | None, dict[str, int]]:
    """Per district, villages and villages with no facility within ``radius_m``.

    Parameters
    ----------
    vxy : array (v, 2)
        Villages, metres in a projected CRS.
    vdistrict : array (v,)
        District code of each village.
    fxy : array (m, 2)
        The layer's facilities, metres, same CRS.
    radius_m : float
        Reach, metres (inclusive).
    districts : list of str
        District codes to report (every one gets a row, even with no village).

    Returns
    -------
    dict
        ``{code: {"villages": int, "without": int}}`` plus ``None`` for the
        whole set.
    """
    points = as_points(vxy, "vxy")
    codes = np.asarray(vdistrict, dtype=object)
    if codes.shape != (len(points),):
        raise GeoError(f"`vdistrict` has shape {codes.shape} but is expected to be ({len(points)},)")
    reached = covered_mask(points, fxy, float(radius_m)) if len(points) else np.zeros(0, bool)
    out: dict[str | None, dict[str, int]] = {}
    for code in districts:
        mine = codes == code
        out[code] = {"villages": int(mine.sum()), "without": int((mine & ~reached).sum())}
    out[None] = {"villages": len(points), "without": int((~reached).sum())}
    return out


def facility_homes(vid: Any, vname: Any, vxy: Any, fxy: Any, fhome: Any) -> tuple[np.ndarray, int]:
    """The village each facility belongs to (the one-per-village rule): by its own field, else the nearest.

    Parameters
    ----------
    vid, vname : arrays (v,)
        Village ids and names.
    vxy : array (v, 2)
        Villages, metres in a projected CRS.
    fxy : array (m, 2)
        Facilities, metres, same CRS.
    fhome : array (m,)
        The village each facility names (an id, or a name that only one
        village has), or ``None``.

    Returns
    -------
    home : int array (m,)
        Row of the villages (-1 when there are no villages).
    by_field : int
        How many facilities were placed by their own field (the rest: nearest village).
    """
    points, sites = as_points(vxy, "vxy"), as_points(fxy, "fxy")
    home = np.full(len(sites), -1, dtype=np.int64)
    if len(points) == 0 or len(sites) == 0:
        return home, 0
    ids = {str(v): i for i, v in enumerate(vid)}
    names: dict[str, int] = {}
    for i, name in enumerate(vname):
        names[str(name)] = -2 if str(name) in names else i  # -2: a name two villages share
    for j, given in enumerate(fhome):
        if given is not None:
            home[j] = ids.get(str(given), names.get(str(given), -1))
    home[home == -2] = -1
    by_field = int((home >= 0).sum())
    unknown = home < 0
    if unknown.any():
        home[unknown] = cKDTree(points).query(sites[unknown], k=1)[1]
    return home, by_field


def villages_without_own(vdistrict: Any, home: Any, n_villages: int, districts: list[str]) -> dict[str | None, int]:
    """Per district (and ``None`` for all), villages that no facility belongs to (see :func:`facility_homes`)."""
    codes = np.asarray(vdistrict, dtype=object)
    served = np.zeros(n_villages, dtype=bool)
    h = np.asarray(home, dtype=np.int64)
    served[h[h >= 0]] = True
    out: dict[str | None, int] = {code: int(((codes == code) & ~served).sum()) for code in districts}
    out[None] = int((~served).sum())
    return out
