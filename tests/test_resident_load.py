"""How the residents' page loads in real headless Chromium: one request for every layer's markers.

On a slow phone each request costs a round trip, so the opening view asks for
the markers once (``/api/markers/all``), however many layers are switched on,
and still draws every active facility: the legend's counts and the markers in
each layer's clusters equal the facilities PostGIS holds.
"""
from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.browser import launch

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture(scope="module")
def opened(browser, live_server):
    """The opening view on a phone, with the path of every request the page made."""
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    paths: list[str] = []
    page.on("request", lambda r: paths.append(r.url.split(live_server, 1)[-1]))
    page.goto(live_server + "/")
    page.wait_for_selector("body[data-markers=ready]", timeout=60_000)
    page.wait_for_load_state("networkidle")
    yield page, paths
    context.close()


def _active_counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT layer, count(*) FROM facility WHERE status = 'active'"
                                      " GROUP BY layer")).all())


def test_the_opening_view_asks_for_markers_once(opened):
    _page, paths = opened
    markers = [p for p in paths if p.startswith("/api/markers")]
    assert markers == ["/api/markers/all"], f"the opening view asked for markers {len(markers)} times: {markers}"


def test_every_active_facility_is_on_the_map(opened, engine):
    page, _paths = opened
    expected = _active_counts(engine)
    on_map = page.evaluate("""() => Object.fromEntries(Object.entries(window.Resident.groups)
        .map(([k, g]) => [k, g.getLayers().length]))""")
    assert {k: n for k, n in on_map.items() if n} == expected
    legend = {el.get_attribute("data-count"): el.text_content()
              for el in page.query_selector_all("#legend [data-count]")}
    for layer, n in expected.items():
        assert str(n) in legend[layer], f"legend of {layer} says {legend[layer]!r}, PostGIS holds {n}"


def test_the_basemap_and_the_nearest_list_follow_the_markers(opened):
    page, paths = opened
    assert page.get_attribute("body", "data-basemap") == "offline"
    assert any(p.startswith("/tiles/basemap/") for p in paths), "the offline map's tiles were drawn"
    first_tile = next(i for i, p in enumerate(paths) if p.startswith("/tiles/"))
    assert paths.index("/api/markers/all") < first_tile, "markers are asked for before any basemap tile"
    assert page.evaluate("() => typeof window.Resident.findNearest") == "function", "the nearest list is there"
