"""Admin editing: bearer tokens (stored as SHA-256 hashes) and a history index.

Tokens are never stored in clear: ``token_hash`` is the hex SHA-256 of the
token a person holds. ``role`` is ``editor`` (may edit) or ``viewer`` (may
read the admin views). A revoked token has ``revoked_at`` set.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE api_token (
        id          bigserial PRIMARY KEY,
        token_hash  text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
        role        text NOT NULL CHECK (role IN ('editor', 'viewer')),
        label       text NOT NULL DEFAULT '',
        created_at  timestamptz NOT NULL DEFAULT now(),
        revoked_at  timestamptz
    )""")
    # The change log is read per facility, newest last; 0001 indexes (facility_id, at) already.
    op.execute("CREATE INDEX IF NOT EXISTS facility_load_run ON facility (load_run_id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS facility_load_run")
    op.execute("DROP TABLE IF EXISTS api_token")
