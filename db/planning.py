"""Session settings of a planning report's read-only snapshot."""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

_SERIAL = text("SET LOCAL max_parallel_workers_per_gather = 0")


def serial_reads(conn: Connection) -> None:
    """Run the rest of this transaction's reads without parallel workers.

    A report's reads are small (a layer's facilities, a zone set); starting
    parallel workers, each setting PROJ up again for ``ST_Transform``, took
    100-150 ms per read on the demo city, longer than the read itself.
    """
    conn.execute(_SERIAL)
