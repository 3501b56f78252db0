"""Errors of the layer registry."""
from __future__ import annotations


class UnknownLayerError(KeyError):
    """A layer key that is not in the registry."""

    def __init__(self, key: object, allowed: tuple[str, ...]):
        self.key = key
        self.allowed = allowed
        super().__init__(key)

    def __str__(self) -> str:
        return f"layer was {self.key!r} but is expected to be one of {', '.join(self.allowed)}"


class RegistryError(ValueError):
    """The registry itself is inconsistent (found by ``flask layers validate``)."""
