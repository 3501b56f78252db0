"""The synthetic demo city: a generator, not an ETL step.

Pure functions, frames in and frames out: :func:`build_demo_city` takes the
real districts (WGS-84, with census population) and returns a population
grid, villages and facilities, every one labelled synthetic. Writing them to
the database is :mod:`services.loading`'s job.

Modules by role: :mod:`demo.draws` (seeded draws and exact apportionment),
:mod:`demo.districts` (districts in metres), :mod:`demo.population` (grid,
towns and urban people), :mod:`demo.villages` (villages and rural people),
:mod:`demo.sites` (where a facility can stand), :mod:`demo.placement` (the
placement rules a layer's ``demo.placement`` names), :mod:`demo.facilities`
(facility rows from the layer records) and :mod:`demo.city` (the assembly).
"""
from demo.city import REQUIRED_COLUMNS, DemoCity, build_demo_city

__all__ = ["REQUIRED_COLUMNS", "DemoCity", "build_demo_city"]
