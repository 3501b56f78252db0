"""Planning glue: per-cell thresholds, the composite life circle, village gaps.

Pure (numpy only, no database, no Flask). Combines the layer registry's
thresholds with the demand cells' urban/rural class and the analysis core
(:mod:`geo.coverage`, :mod:`geo.accessibility`, :mod:`geo.gaps`,
:mod:`geo.allocate`). Every distance is metres in EPSG:4548.

The composite "15-minute life circle"
-------------------------------------
A resident counts as inside the life circle when every layer that applies to
their cell reaches them. Which layers apply (:data:`COMPOSITE_APPLIES`):

* urban cells: service offices, convenience police stations, pocket parks and
  parks, public parking. Village clinics do not apply: town residents use
  community health centres, which are not a layer here.
* rural cells: service offices and village clinics. Pocket parks and parking
  are town facilities, and convenience police stations (便民警务站) are
  street posts in towns; the countryside is served by township police
  stations, which are not a layer here.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from geo.coverage import as_mask, as_points, composite_mask, covered_mask
from geo.errors import GeoError

#: Per layer, the cell classes ("urban", "rural") where it counts in the composite.
COMPOSITE_APPLIES: dict[str, tuple[str, ...]] = {
    "service_office": ("urban", "rural"),
    "police_station": ("urban",),
    "pocket_park": ("urban",),
    "parking": ("urban",),
    "village_clinic": ("rural",),
}

#: The composite rule in words, for the API and the page.
COMPOSITE_RULE_EN = ("urban cells: service office, police station, park and parking within reach; "
                     "rural cells: service office and village clinic within reach")
COMPOSITE_RULE_ZH = "城区：政务服务网点、便民警务站、公园、停车场均在服务半径内；乡村：政务服务网点与村卫生室均在服务半径内"


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


def applies_mask(layer: str, urban: Any) -> np.ndarray:
    """Cells where ``layer`` counts in the composite (see :data:`COMPOSITE_APPLIES`)."""
    if layer not in COMPOSITE_APPLIES:
        raise GeoError(f"`layer` was {layer!r} but is expected to be one of {sorted(COMPOSITE_APPLIES)}")
    mask = np.asarray(urban, dtype=bool)
    classes = COMPOSITE_APPLIES[layer]
    return (mask & ("urban" in classes)) | (~mask & ("rural" in classes))


def life_circle(covered: Mapping[str, Any], urban: Any) -> np.ndarray:
    """Cells inside the composite life circle.

    Parameters
    ----------
    covered : dict of layer key to bool array (n,)
        Per layer, whether each cell is within reach; every layer of
        :data:`COMPOSITE_APPLIES` must be present.
    urban : bool array (n,)

    Returns
    -------
    bool array (n,)
    """
    missing = sorted(set(COMPOSITE_APPLIES) - set(covered))
    if missing:
        raise GeoError(f"`covered` lacks layers {missing}; the composite needs all of "
                       f"{sorted(COMPOSITE_APPLIES)}")
    applies = {key: applies_mask(key, urban) for key in covered if key in COMPOSITE_APPLIES}
    return composite_mask({k: covered[k] for k in applies}, applies)


def villages_without_reach(vxy: Any, vdistrict: Any, fxy: Any, radius_m: float,
                           districts: list[str]) -> dict[str, dict[str, int]]:
    """Per district, villages and villages with no facility within ``radius_m``.

    Parameters
    ----------
    vxy : array (v, 2)
        Villages, metres in a projected CRS.
    vdistrict : array (v,)
        District code of each village.
    fxy : array (m, 2)
        Clinics, metres, same CRS.
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
    out: dict[Any, dict[str, int]] = {}
    for code in districts:
        mine = codes == code
        out[code] = {"villages": int(mine.sum()), "without": int((mine & ~reached).sum())}
    out[None] = {"villages": len(points), "without": int((~reached).sum())}
    return out


def select(mask: Any, *arrays: np.ndarray) -> list[np.ndarray]:
    """Each array restricted to the rows where ``mask`` is true."""
    first = np.asarray(arrays[0])
    keep = as_mask(np.asarray(mask), len(first), "mask")
    return [np.asarray(a)[keep] for a in arrays]
