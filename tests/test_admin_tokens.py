"""Admin tokens: roles, revocation, expiry, listing; the public history names editors by role and an opaque id,
never by the token's label (which the admin view keeps)."""
from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util

import pytest
from alembic import command
from click.testing import Result
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from db import MIGRATIONS, alembic_config, database_name, make_engine, with_database
from db import restore as db_restore
from services.editing import create_token
from tests import admin_support
from tests.admin_support import SHIZHONG, auth

pytestmark = pytest.mark.usefixtures("demo_restored")
#: The shared fixtures, by name.
tokens, office = admin_support.tokens, admin_support.office


class TestTokens:
    def test_cli_creates_a_token_stored_only_as_its_hash(self, runner, engine):
        result = runner.invoke(args=["admin", "create-token", "--role", "viewer", "--label", "cli test"])
        assert result.exit_code == 0, result.output
        secret = result.stdout.strip().splitlines()[-1]
        assert len(secret) > 30
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT token_hash, role FROM api_token WHERE label = 'cli test'")).all()
            plain = conn.execute(text("SELECT count(*) FROM api_token WHERE token_hash = :s OR label = :s"),
                                 {"s": secret}).scalar()
        assert (hashlib.sha256(secret.encode()).hexdigest(), "viewer") in [tuple(r) for r in stored]
        assert plain == 0

    def test_cli_refuses_an_unknown_role(self, runner):
        result = runner.invoke(args=["admin", "create-token", "--role", "admin"])
        assert result.exit_code != 0
        assert "editor" in result.output and "viewer" in result.output

    def test_edit_without_a_token_is_401(self, client):
        res = client.post("/api/admin/facilities", json={"layer": "service_office", "name": "x",
                                                         "lon": SHIZHONG[0], "lat": SHIZHONG[1]})
        assert res.status_code == 401
        assert "Bearer" in res.headers["WWW-Authenticate"]
        assert "token" in res.get_json()["error"]["message"]

    def test_a_wrong_token_is_401(self, client):
        res = client.post("/api/admin/facilities", headers=auth("msm_not-a-real-token"),
                          json={"layer": "service_office", "name": "x", "lon": SHIZHONG[0], "lat": SHIZHONG[1]})
        assert res.status_code == 401

    def test_a_viewer_may_read_but_not_edit(self, client, tokens, office):
        res = client.get(f"/api/admin/facilities/{office['id']}", headers=auth(tokens["viewer"]))
        assert res.status_code == 200 and res.get_json()["name"] == "测试便民服务点"
        res = client.patch(f"/api/admin/facilities/{office['id']}", json={"name": "viewer edit"},
                           headers=auth(tokens["viewer"], **{"If-Match": office["etag"]}))
        assert res.status_code == 403
        assert "editor" in res.get_json()["error"]["message"]

    def test_a_revoked_token_stops_working(self, client, engine, runner):
        token, secret = create_token(engine, "viewer", "to revoke")
        assert client.get("/api/admin/facilities/1", headers=auth(secret)).status_code in (200, 404)
        assert runner.invoke(args=["admin", "revoke-token", str(token.id)]).exit_code == 0
        assert client.get("/api/admin/facilities/1", headers=auth(secret)).status_code == 401

    def test_admin_responses_are_never_cached(self, client, tokens, office):
        for res in (client.get(f"/api/admin/facilities/{office['id']}", headers=auth(tokens["viewer"])),
                    client.post("/api/admin/facilities", json={})):
            assert res.headers["Cache-Control"] == "no-store"


LABEL = "城管局 张三 13800001111"  # what an administrator writes: a name and a phone number


def public_id(engine, token_id: int) -> str:
    with engine.connect() as conn:
        return conn.execute(text("SELECT public_id FROM api_token WHERE id = :i"), {"i": token_id}).scalar_one()


class TestPrivacy:
    @pytest.fixture()
    def labelled(self, client, engine):
        """A facility made by a token whose label holds a name and a phone number: (facility id, token)."""
        token, secret = create_token(engine, "editor", LABEL)
        res = client.post("/api/admin/facilities", headers=auth(secret),
                          json={"layer": "police_station", "name": "隐私测试警务站", "lon": SHIZHONG[0],
                                "lat": SHIZHONG[1]})
        assert res.status_code == 201
        return res.get_json()["id"], token

    def test_public_history_shows_the_role_and_an_opaque_id_never_the_label(self, client, engine, labelled):
        fid, token = labelled
        res = client.get(f"/api/facilities/{fid}/history")
        change = res.get_json()["changes"][0]
        opaque = public_id(engine, token.id)
        assert (change["actor"], change["role"], change["editor_id"]) == (f"editor {opaque}", "editor", opaque)
        text_ = res.get_data(as_text=True)
        assert "张三" not in text_ and "13800001111" not in text_ and f"token {token.id}" not in text_
        assert "label" not in change and "token" not in change

    def test_the_admin_history_keeps_the_label(self, client, tokens, labelled):
        fid, token = labelled
        assert client.get(f"/api/admin/facilities/{fid}/history").status_code == 401
        res = client.get(f"/api/admin/facilities/{fid}/history", headers=auth(tokens["viewer"]))
        assert res.status_code == 200 and res.headers["Cache-Control"] == "no-store"
        assert res.get_json()["changes"][0]["token"] == {"id": token.id, "label": LABEL}

    def test_the_stored_change_log_holds_no_label(self, engine, labelled):
        fid, _ = labelled
        with engine.connect() as conn:
            actors = conn.execute(text("SELECT actor FROM change_log WHERE facility_id = :i"), {"i": fid}).scalars()
            assert not any("张三" in a for a in actors)

    def test_an_expired_token_is_401_saying_so(self, client, engine):
        token, secret = create_token(engine, "viewer", "expiring")
        assert client.get("/api/admin/facilities/1", headers=auth(secret)).status_code in (200, 404)
        with engine.begin() as conn:
            conn.execute(text("UPDATE api_token SET expires_at = now() - interval '1 minute' WHERE id = :i"),
                         {"i": token.id})
        res = client.get("/api/admin/facilities/1", headers=auth(secret))
        assert res.status_code == 401 and "expired" in res.get_json()["error"]["message"]


class TestTokenCommands:
    def expiry_of(self, engine, label: str) -> dt.datetime:
        with engine.connect() as conn:
            return conn.execute(text("SELECT expires_at FROM api_token WHERE label = :l ORDER BY id DESC LIMIT 1"),
                                {"l": label}).scalar_one()

    @pytest.mark.parametrize("given, days", [(None, 90), ("30d", 30), ("400d", 400)])
    def test_create_token_sets_an_expiry(self, runner, engine, given, days):
        label = f"expiry {given}"
        args = ["admin", "create-token", "--role", "viewer", "--label", label] + (["--expires", given] if given else [])
        result: Result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
        expected = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
        assert abs((self.expiry_of(engine, label) - expected).total_seconds()) < 120

    def test_an_expiry_date_lasts_to_the_end_of_that_day(self, runner, engine):
        day = dt.date.today() + dt.timedelta(days=10)
        result = runner.invoke(args=["admin", "create-token", "--role", "viewer", "--label", "until a date",
                                     "--expires", day.isoformat()])
        assert result.exit_code == 0, result.output
        assert self.expiry_of(engine, "until a date").astimezone(dt.UTC).date() == day

    @pytest.mark.parametrize("given", ["2020-01-01", "soon", "0d", "99999d"])
    def test_a_bad_expiry_is_refused_saying_what_is_allowed(self, runner, given):
        result = runner.invoke(args=["admin", "create-token", "--role", "viewer", "--expires", given])
        assert result.exit_code != 0
        assert "--expires" in result.output and "90d" in result.output

    def test_list_tokens_shows_labels_states_and_no_secret(self, runner, engine):
        live, secret = create_token(engine, "editor", "列表 live")
        gone, gone_secret = create_token(engine, "viewer", "列表 revoked")
        assert runner.invoke(args=["admin", "revoke-token", str(gone.id)]).exit_code == 0
        result = runner.invoke(args=["admin", "list-tokens"])
        assert result.exit_code == 0, result.output
        rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()[1:]}
        assert rows[str(live.id)][1:4] == ["editor", public_id(engine, live.id), "live"]
        assert rows[str(live.id)][-1] == "列表 live"
        assert rows[str(gone.id)][3] == "revoked"
        for hidden in (secret, gone_secret, hashlib.sha256(secret.encode()).hexdigest()):
            assert hidden not in result.output


def test_the_migration_takes_labels_out_of_earlier_change_log_rows(database_url):
    """Rows written before the migration said ``token <id> (<role>: <label>)``; afterwards they name the role
    and the opaque id, and point at the token (so the admin view can still show the label)."""
    path = next((MIGRATIONS / "versions").glob("*_token_privacy.py"))
    spec = importlib.util.spec_from_file_location("token_privacy", path)
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    name = database_name(database_url) + "_tokens"
    url = with_database(database_url, name)
    admin = make_engine(database_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        db_restore.drop_database(conn, name, force=True)
        db_restore.create_database(conn, name)
    engine = make_engine(url, poolclass=NullPool)
    try:
        command.upgrade(alembic_config(url), migration.down_revision)
        with engine.begin() as conn:
            fid = conn.execute(text(
                "INSERT INTO facility (layer, source_id, name, geom, point) VALUES ('police_station', 's1', 'n',"
                " ST_SetSRID(ST_MakePoint(117.5, 34.8), 4326), ST_SetSRID(ST_MakePoint(117.5, 34.8), 4326))"
                " RETURNING id")).scalar_one()
            tid = conn.execute(text("INSERT INTO api_token (token_hash, role, label) VALUES (:h, 'editor', :l)"
                                    " RETURNING id"), {"h": "0" * 64, "l": LABEL}).scalar_one()
            conn.execute(text("INSERT INTO change_log (facility_id, actor, action, after) VALUES"
                              " (:f, :a, 'insert', '{}'), (:f, 'etl', 'load', '{}')"),
                         {"f": fid, "a": f"token {tid} (editor: {LABEL})"})
        command.upgrade(alembic_config(url), migration.revision)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT actor, token_id FROM change_log ORDER BY id")).all()
            opaque = conn.execute(text("SELECT public_id FROM api_token WHERE id = :i"), {"i": tid}).scalar_one()
        assert [tuple(r) for r in rows] == [(f"editor {opaque}", tid), ("etl", None)]
        assert opaque.startswith("e") and len(opaque) == 13 and "张三" not in opaque
    finally:
        engine.dispose()
        with admin.connect() as conn:
            db_restore.drop_database(conn, name, force=True)
        admin.dispose()
