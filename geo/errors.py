"""Errors raised by the pure geometry and analysis core."""
from __future__ import annotations


class GeoError(ValueError):
    """Base class: a geometry or analysis input was not acceptable."""


class CRSError(GeoError):
    """A coordinate reference system was unknown, missing or unsuitable."""


class UnitsError(CRSError):
    """Distances were asked for in a CRS whose units are not metres."""
