"""Kept only so ``from etl.export import defuse`` still imports while the planners' views move to
:mod:`formats.tabular`; delete this module once nothing imports it."""
from formats.tabular import defuse

__all__ = ["defuse"]
