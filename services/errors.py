"""Errors a use case raises; the web layer maps each class to its HTTP status (``web/errors.py``)."""
from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """A request the service cannot carry out, with a message naming what was wrong.

    ``parameter`` names the input at fault and ``allowed`` what would have
    been accepted, when there is one.
    """

    def __init__(self, message: str, *, parameter: str | None = None, allowed: Any = None) -> None:
        self.message = message
        self.parameter = parameter
        self.allowed = allowed
        super().__init__(message)


class InvalidRequest(ServiceError):
    """The inputs are well-formed but make no sense together (e.g. a CRS a format cannot carry)."""


class NotFound(ServiceError):
    """The thing asked for does not exist."""


class Conflict(ServiceError):
    """The change clashes with the current state (e.g. a duplicate source id, already retired)."""


class VersionMismatch(Conflict):
    """The record changed since the caller read it; ``current_etag`` is what it is now."""

    def __init__(self, message: str, *, current_etag: str, **kw: Any) -> None:
        self.current_etag = current_etag
        super().__init__(message, **kw)


class TooMuchWork(ServiceError):
    """The request would take more than the per-request bound; ``limit`` says which bound."""


class StorageFull(ServiceError):
    """The server has no room to build the answer (a full disk or quota); nothing was sent half-written."""


class Unavailable(ServiceError):
    """The server cannot do this now through no fault of the request (a helper program failed); try again later."""
