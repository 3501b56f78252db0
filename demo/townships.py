"""Synthetic positions for the real township list, until an operator loads real ones.

No public positions or boundaries of Zaozhuang's townships were found (see
``data/README.md``), so the demo places each one where the demo city has
people of its kind: streets (街道) and the development zone among the urban
cells around their district's seat, towns (镇) among the district's
villages. Within each group the sites are spread by farthest-point sampling,
starting from the seat, so no two townships of a district pile up. Pure:
arrays in, arrays out; metres in EPSG:4548.
"""
from __future__ import annotations

import numpy as np

#: Streets are placed among urban cells at most this far from their district's seat (metres).
STREET_REACH_M = 6000.0
#: Towns keep at least this distance from their district's seat (metres) when villages allow.
TOWN_MIN_FROM_SEAT_M = 3000.0


def spread(candidates: np.ndarray, n: int, start: np.ndarray) -> np.ndarray:
    """Indices of ``n`` of ``candidates`` (an (m, 2) array, metres) spread by farthest-point sampling.

    Each pick is the candidate farthest from ``start`` and the picks before
    it; ties go to the lower index, so the result is deterministic. When
    there are fewer candidates than ``n``, candidates are reused in order.
    """
    if n <= 0 or len(candidates) == 0:
        return np.zeros(0, dtype=int)
    nearest = np.hypot(*(candidates - start).T)
    picks: list[int] = []
    for _ in range(n):
        i = int(np.argmax(nearest))
        picks.append(i)
        nearest = np.minimum(nearest, np.hypot(*(candidates - candidates[i]).T))
        if len(picks) == len(candidates):
            nearest = np.hypot(*(candidates - start).T)  # all used: start over
    return np.array(picks, dtype=int)


def place_district(kinds: list[str], seat: np.ndarray, urban: np.ndarray, villages: np.ndarray) -> np.ndarray:
    """Positions (metres) for one district's townships, in the order of ``kinds``.

    Parameters
    ----------
    kinds : list of str
        ``street``, ``zone`` or ``town`` for each township.
    seat : numpy.ndarray
        The district seat, shape (2,), EPSG:4548 metres.
    urban : numpy.ndarray
        Centres of the district's urban cells, shape (m, 2), metres.
    villages : numpy.ndarray
        The district's villages, shape (v, 2), metres.

    Returns
    -------
    numpy.ndarray
        Shape (len(kinds), 2), EPSG:4548 metres.
    """
    out = np.repeat(seat[None, :].astype(float), len(kinds), axis=0)
    street_idx = [i for i, k in enumerate(kinds) if k != "town"]
    town_idx = [i for i, k in enumerate(kinds) if k == "town"]
    near = urban[np.hypot(*(urban - seat).T) <= STREET_REACH_M] if len(urban) else urban
    pool = near if len(near) else villages
    if street_idx and len(pool):
        # the first street sits at the seat; the others spread around it
        picks = spread(pool, len(street_idx) - 1, seat)
        out[street_idx[1:]] = pool[picks]
    far = villages[np.hypot(*(villages - seat).T) >= TOWN_MIN_FROM_SEAT_M] if len(villages) else villages
    pool = far if len(far) >= len(town_idx) else villages
    if town_idx and len(pool):
        out[town_idx] = pool[spread(pool, len(town_idx), seat)]
    return out
