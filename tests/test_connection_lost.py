"""A database connection lost in the middle of a request: the answer is 503 with Retry-After, never a 500,
and the next request is served again.

The server ends the request's connection (``pg_terminate_backend``, what a fast shutdown does to every
backend) right after the pool has checked it out and pinged it, so the request's first statement meets the
dead connection: the moment in an outage a pre-ping cannot cover. Each app here has a private pool, so the
shared test app's connections are never touched.
"""
from __future__ import annotations

import urllib.parse

import psycopg2
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services import nearest_held
from web import create_app
from web.database import get_engine
from web.errors import database_unavailable

NEAREST = {"lon": 117.5566, "lat": 34.864, "layer": "all"}
#: Requests whose first statement meets the lost connection: nearest (both measures, one layer and all),
#: search, the layer list, and the health check.
PATHS = [
    "/api/nearest?" + urllib.parse.urlencode(NEAREST),
    "/api/nearest?" + urllib.parse.urlencode({**NEAREST, "by": "straight"}),
    "/api/nearest?" + urllib.parse.urlencode({**NEAREST, "layer": "police_station", "k": 3, "by": "walk"}),
    "/api/search?q=%E5%85%AC%E5%9B%AD&limit=5",
    "/api/layers",
    "/healthz",
]


class Terminator:
    """Ends the server side of the next pooled connection checked out, once armed."""

    def __init__(self, admin) -> None:
        self.admin = admin
        self.armed = False
        self.killed: list[int] = []

    def __call__(self, dbapi_connection, record, proxy) -> None:
        if not self.armed:
            return
        self.armed = False
        pid = dbapi_connection.get_backend_pid()
        with self.admin.connect() as conn:  # waits (up to 30 s) until the backend has gone
            ended = conn.execute(text("SELECT pg_terminate_backend(:pid, 30000)"), {"pid": pid}).scalar()
        assert ended, "the backend was ended"
        self.killed.append(pid)


@pytest.fixture()
def private_app(database_url, engine, monkeypatch):
    """An app with its own pool, warmed up, whose next checked-out connection the server can end.

    Nearest is made to ask the database (nothing held in memory): a held answer takes no connection.
    """
    monkeypatch.setattr(nearest_held, "MAX_HELD_FACILITIES", -1)
    nearest_held.forget()
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    client = app.test_client()
    for path in PATHS:  # every cache warm, every connection in the pool used once
        assert client.get(path).status_code == 200, path
    with app.app_context():
        pool_engine = get_engine()
    terminator = Terminator(engine)
    event.listen(pool_engine, "checkout", terminator)
    yield app, terminator
    event.remove(pool_engine, "checkout", terminator)
    app.extensions["serving"].dispose()
    nearest_held.forget()


@pytest.mark.parametrize("path", PATHS)
def test_a_connection_lost_mid_request_is_a_503_with_retry_after(private_app, path):
    app, terminator = private_app
    client = app.test_client()
    terminator.armed = True
    res = client.get(path)
    assert terminator.killed, "the request's connection was ended"
    assert res.status_code == 503, (res.status_code, res.get_data(as_text=True)[:300])
    assert res.headers["Retry-After"].isdigit()
    error = res.get_json()["error"]
    assert error["status"] == 503
    assert "unavailable" in error["message"] or "unreachable" in error["message"]
    # The dead connection left the pool: the same app answers the same request at once.
    again = client.get(path)
    assert again.status_code == 200, again.get_data(as_text=True)[:300]


def _wrapped(orig: Exception, *, lost: bool = False) -> DBAPIError:
    return DBAPIError.instance("SELECT 1", {}, orig, psycopg2.Error, connection_invalidated=lost)


@pytest.mark.parametrize(("err", "unavailable"), [
    (psycopg2.OperationalError("terminating connection due to administrator command"), True),
    (psycopg2.InterfaceError("connection already closed"), True),
    (_wrapped(psycopg2.OperationalError("the database system is shutting down")), True),
    (_wrapped(psycopg2.InterfaceError("connection already closed"), lost=True), True),
    (PoolTimeout("QueuePool limit of size 5 overflow 10 reached"), True),
    (psycopg2.ProgrammingError('syntax error at or near "SELEC"'), False),
    (_wrapped(psycopg2.ProgrammingError('relation "facilty" does not exist')), False),
    (_wrapped(psycopg2.IntegrityError("duplicate key value")), False),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_which_database_errors_mean_unavailable(err, unavailable):
    """An outage (server gone, connection lost, pool exhausted) is a 503; a fault in the SQL is not."""
    assert database_unavailable(err) is unavailable


def test_pooled_connections_the_server_ended_between_requests_are_replaced(database_url, engine):
    """After the server ended every idle pooled connection (as a restart does), the next requests are served:
    the pool sees at checkout that each was ended and connects afresh (no ping round trip needed)."""
    app = create_app({"DATABASE_URL": database_url, "TESTING": True})
    client = app.test_client()
    with app.app_context():
        pool_engine = get_engine()
    used: set[int] = set()

    def remember(dbapi_connection, record, proxy) -> None:
        used.add(dbapi_connection.get_backend_pid())

    event.listen(pool_engine, "checkout", remember)
    try:
        for path in PATHS:
            assert client.get(path).status_code == 200, path
        with engine.connect() as conn:
            for pid in used:
                conn.execute(text("SELECT pg_terminate_backend(:pid, 30000)"), {"pid": pid})
        before = set(used)
        for path in PATHS:
            res = client.get(path)
            assert res.status_code == 200, (path, res.status_code, res.get_data(as_text=True)[:300])
        assert used - before, "fresh connections replaced the ended ones"
    finally:
        event.remove(pool_engine, "checkout", remember)
        app.extensions["serving"].dispose()
