"""Errors of the ETL: a whole file that cannot be read, and a rejected row."""
from __future__ import annotations

from dataclasses import asdict, dataclass


class ETLError(Exception):
    """A whole file cannot be loaded.

    Raised for an unknown format, an encoding that cannot be read or text
    that mixes two (naming the first line that does not fit), a file past a
    cap of :mod:`etl.limits` (naming the cap and the line, sheet or cell), a
    file without data rows, a table without coordinate columns, or a missing
    or unreadable CRS. The message names what was wrong and what is allowed;
    nothing of the file is loaded.
    """


@dataclass
class Reject:
    """One row that is not loaded, and why.

    Attributes
    ----------
    row : int
        The row a person sees: the spreadsheet line for CSV/XLSX (header = 1),
        the 1-based feature number for GIS formats.
    source_id : str or None
        The row's id in the source file, when it has one.
    reason : str
        What was wrong, naming the column and value.
    """

    row: int | None
    source_id: str | None
    reason: str

    def as_dict(self) -> dict:
        """``{"row": ..., "source_id": ..., "reason": ...}`` for JSON."""
        return asdict(self)

    def __str__(self) -> str:
        who = f" ({self.source_id})" if self.source_id else ""
        return f"row {self.row}{who}: {self.reason}"
