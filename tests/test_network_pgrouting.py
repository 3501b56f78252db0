"""Coverage along the roads agrees with pgRouting: the planners' figures against an independent reference.

On the demo's synthetic road network. The reference (``tests/network_check.py``) is pgRouting's
``pgr_withPointsDD`` in the database, each cell and each facility a point on its nearest edge with the
access legs added, parks reached at their boundary samples, written from the rule ``docs/roads.md``
states and calling none of the service's code. One district keeps it small.
"""
from __future__ import annotations

import datetime as dt

import pytest

from layers import LAYERS
from tests import network_check

DISTRICT = "370402"  # 市中区: the city seat's street grid and its parks


@pytest.mark.parametrize("key", ["parking", "pocket_park"])
def test_walking_coverage_of_a_district_is_pgroutings_within_a_tenth_of_a_point(client, engine, key):
    body = client.get(f"/api/coverage?layer={key}&by=walk&district={DISTRICT}").get_json()
    row = next(r for r in body["rows"] if r["district"] == DISTRICT)
    with engine.begin() as conn:
        network_check.prepare(conn, DISTRICT)
        ref = network_check.coverage(conn, LAYERS[key], dt.date.today())
    assert row["population"] == pytest.approx(ref["population"], abs=1)
    assert ref["covered"] > 0.02 * ref["population"], "the district has residents covered to compare"
    assert row["percent"] == pytest.approx(100 * ref["covered"] / ref["population"], abs=0.1)
    every = row["all_residents"]
    assert every["percent"] == pytest.approx(100 * ref["all_covered"] / ref["all_population"], abs=0.1)
