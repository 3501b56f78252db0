"""The planning glue (geo.planning) and the checks of a planning request, with no database.

Pure numpy: no database, no layer registry (the facts come in as plain
values). Expected values are worked out by hand in the comments.
"""
from __future__ import annotations

import numpy as np
import pytest

from geo.coverage import composite_mask
from geo.errors import GeoError
from geo.planning import applies_mask, cell_radius, villages_without_reach
from services.errors import InvalidRequest
from services.planning_inputs import PlanningQuery

#: Four cells: urban, rural, urban, rural.
URBAN = np.array([True, False, True, False])


class TestCellRadius:
    def test_urban_and_rural_cells_get_their_own_threshold(self):
        assert cell_radius(URBAN, 1000.0, 3000.0).tolist() == [1000.0, 3000.0, 1000.0, 3000.0]

    def test_an_override_applies_to_every_cell(self):
        assert cell_radius(URBAN, 1000.0, 3000.0, override_m=120.0).tolist() == [120.0] * 4

    @pytest.mark.parametrize("args, message", [
        ((0.0, 3000.0, None), r"`urban_m` was 0.0 but is expected to be > 0 metres"),
        ((1000.0, float("nan"), None), r"`rural_m` was nan"),
        ((1000.0, 3000.0, -5.0), r"`override_m` was -5.0 but is expected to be > 0 metres"),
    ])
    def test_bad_thresholds_name_the_value(self, args, message):
        with pytest.raises(GeoError, match=message):
            cell_radius(URBAN, *args)


class TestAppliesMask:
    @pytest.mark.parametrize("in_urban, in_rural, expected", [
        (True, True, [True, True, True, True]),
        (True, False, [True, False, True, False]),     # a town facility: urban cells only
        (False, True, [False, True, False, True]),     # a village facility: rural cells only
        (False, False, [False, False, False, False]),
    ])
    def test_follows_the_classes_it_is_given(self, in_urban, in_rural, expected):
        assert applies_mask(URBAN, in_urban=in_urban, in_rural=in_rural).tolist() == expected

    def test_composite_forgives_a_layer_where_it_does_not_apply(self):
        # Layer A applies everywhere and covers cells 0 and 1; layer B applies to urban cells only and
        # covers cell 0. Cell 0: both cover. Cell 1 (rural): B does not apply, A covers. Cell 2 (urban):
        # neither covers. Cell 3 (rural): A does not cover.
        masks = {"a": np.array([True, True, False, False]), "b": np.array([True, False, False, False])}
        applies = {"a": applies_mask(URBAN, in_urban=True, in_rural=True),
                   "b": applies_mask(URBAN, in_urban=True, in_rural=False)}
        assert composite_mask(masks, applies).tolist() == [True, True, False, False]


class TestVillagesWithoutReach:
    def test_counts_per_district_and_in_all(self):
        # Villages at 0, 1,000 and 5,000 m east in district A and one at 0 m in B; one facility at
        # 500 m east. Within 600 m: the first two villages (500 m each) and B's (500 m); not the third.
        vxy = [[0.0, 0.0], [1000.0, 0.0], [5000.0, 0.0], [0.0, 0.0]]
        counts = villages_without_reach(vxy, ["A", "A", "A", "B"], [[500.0, 0.0]], 600.0, ["A", "B", "C"])
        assert counts == {"A": {"villages": 3, "without": 1}, "B": {"villages": 1, "without": 0},
                          "C": {"villages": 0, "without": 0}, None: {"villages": 4, "without": 1}}

    def test_reach_is_inclusive(self):
        counts = villages_without_reach([[0.0, 0.0]], ["A"], [[600.0, 0.0]], 600.0, ["A"])
        assert counts["A"]["without"] == 0

    def test_no_facility_leaves_every_village_without(self):
        counts = villages_without_reach([[0.0, 0.0], [10.0, 0.0]], ["A", "A"], np.empty((0, 2)), 2500.0, ["A"])
        assert counts[None] == {"villages": 2, "without": 2}

    def test_mismatched_districts_are_refused(self):
        with pytest.raises(GeoError, match=r"`vdistrict` has shape \(1,\) but is expected to be \(2,\)"):
            villages_without_reach([[0.0, 0.0], [1.0, 1.0]], ["A"], [[0.0, 0.0]], 100.0, ["A"])


class TestPlanningQuery:
    """A report asked for by code other than the API (a CLI, a notebook) gets the same checks."""

    @pytest.mark.parametrize("changes, parameter", [
        ({"lang": "fr"}, "lang"), ({"radius_m": 10.0}, "radius_m"), ({"radius_m": 1e9}, "radius_m"),
        ({"radius_m": float("nan")}, "radius_m"),
    ])
    def test_bad_values_name_the_parameter(self, changes, parameter):
        with pytest.raises(InvalidRequest, match=parameter) as caught:
            PlanningQuery("any", **changes)
        assert caught.value.parameter == parameter
