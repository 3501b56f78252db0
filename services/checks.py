"""Checks a use case makes of its inputs (the views check the same bounds first; these keep other callers
honest). Each failure is :class:`services.errors.InvalidRequest` naming the parameter and what is allowed."""
from __future__ import annotations

from collections.abc import Sequence

from services.errors import InvalidRequest


def check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    """``value`` must be one of ``allowed``."""
    if value not in allowed:
        raise InvalidRequest(f"{name} was {str(value)[:40]!r} but is expected to be one of {', '.join(allowed)}",
                             parameter=name, allowed=list(allowed))


def check_range(name: str, value: int, lo: int, hi: int) -> None:
    """``value`` must be a whole number from ``lo`` to ``hi``."""
    if not lo <= value <= hi:
        raise InvalidRequest(f"{name} was {value} but must be a whole number from {lo} to {hi}", parameter=name,
                             allowed={"min": lo, "max": hi})


def check_length(name: str, value: str, lo: int, hi: int) -> None:
    """``value`` must be ``lo`` to ``hi`` characters long."""
    if not lo <= len(value) <= hi:
        raise InvalidRequest(f"{name} must be {lo} to {hi} characters long (it was {len(value)})", parameter=name,
                             allowed={"min_length": lo, "max_length": hi})
