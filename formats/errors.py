"""Errors the file writers raise; the service layer turns them into answers a user can act on."""
from __future__ import annotations


class FormatError(ValueError):
    """The data cannot be written in this format as asked (e.g. more rows than an XLSX sheet holds)."""
