"""Fuzz every operation of ``/openapi.json`` with schemathesis: no input gives a 5xx.

The schema is read from the app itself, so every route the OpenAPI document
lists is fuzzed and none is skipped. Admin operations run with a real editor
token, so their bodies are parsed and validated rather than stopped at 401;
facilities they create are deleted afterwards. Examples are bounded (30 per
operation, no shrinking time limit) to keep the run short.
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from services.editing import create_token
from web import create_app


@pytest.fixture(scope="module")
def editor_token(engine):
    return create_token(engine, "editor", "fuzz test")[1]


def _schema_app():
    """The app whose /openapi.json is fuzzed. Built at collection (schemathesis needs the
    operations then); it touches the database only when a test calls it, after the
    ``database_url`` fixture has migrated and loaded the test database."""
    return create_app({"DATABASE_URL": os.environ.get("TEST_DATABASE_URL", "postgresql://unset/none"),
                       "TESTING": True})


schema = schemathesis.openapi.from_wsgi("/openapi.json", _schema_app())


pytestmark = pytest.mark.usefixtures("demo_restored")


def test_openapi_document_lists_the_public_and_admin_routes(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/api/layers", "/api/nearest", "/api/search", "/api/admin/facilities",
                 "/api/facilities/{raw_id}/history"):
        assert any(p == path or p.startswith(path.split("{")[0]) for p in paths), path


@schema.parametrize()
@settings(max_examples=30, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_no_input_gives_a_server_error(case, editor_token):
    response = case.call(headers={"Authorization": f"Bearer {editor_token}"})
    assert response.status_code < 500, (f"{case.method} {case.formatted_path} {case.query!r} {case.body!r} -> "
                                         f"{response.status_code}: {response.text[:300]}")
    case.validate_response(response, checks=(not_a_server_error,))
