"""Told when the data changes: a connection that LISTENs for the change notices of migration 0013.

A statement trigger on ``data_version`` (bumped with every change to
facilities, the grid, roads, zones and districts) sends a notice on
:data:`CHANNEL` as the change commits: PostgreSQL signals every listening
connection's server process before the writer's COMMIT returns, and an idle
one passes the notice on at once. A process asks
:meth:`ChangeListener.changed` before it trusts what it holds: a
zero-timeout poll of the socket, no round trip.
"""
from __future__ import annotations

import select
import threading

import psycopg2

from db import libpq_url

#: The notification channel (migration 0013's triggers).
CHANNEL = "minsheng_data_change"


class ChangeListener:
    """A connection of its own, listening on :data:`CHANNEL` from the moment it is made.

    Raises ``psycopg2.Error`` when it cannot connect.
    """

    def __init__(self, url: str, *, connect_timeout_s: int = 3) -> None:
        self._lock = threading.Lock()
        self._conn = psycopg2.connect(libpq_url(url), connect_timeout=connect_timeout_s,
                                      application_name="minsheng-map listener")
        self._conn.autocommit = True
        with self._conn.cursor() as cur:
            cur.execute(f"LISTEN {CHANNEL}")

    def changed(self) -> bool:
        """Whether a change notice arrived since the last call (notices are consumed).

        Raises
        ------
        psycopg2.Error
            When the connection is lost (then nothing can be known: the caller
            must not trust what it holds).
        """
        with self._lock:
            if self._conn.closed:
                raise psycopg2.InterfaceError("the listening connection is closed")
            ready, _, _ = select.select([self._conn], [], [], 0)
            if ready:
                self._conn.poll()
            got = bool(self._conn.notifies)
            self._conn.notifies.clear()
            return got

    def close(self) -> None:
        with self._lock:
            if not self._conn.closed:
                self._conn.close()
