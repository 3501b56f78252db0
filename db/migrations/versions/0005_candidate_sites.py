"""Candidate sites a planner loads for site suggestions.

A named set of possible locations (land the city owns, buildings that could
host a service point). ``/api/suggest?candidates=set:<name>`` picks among them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE candidate_site (
        id              bigserial PRIMARY KEY,
        set_name        text NOT NULL CHECK (set_name ~ '^[A-Za-z0-9_-]{1,40}$'),
        source_id       text NOT NULL,
        name            text NOT NULL,
        district_adcode text REFERENCES district(adcode),
        point           geometry(Point, 4326) NOT NULL,
        load_run_id     bigint REFERENCES load_run(id) ON DELETE SET NULL,
        UNIQUE (set_name, source_id)
    )""")
    op.execute("CREATE INDEX candidate_site_set ON candidate_site (set_name)")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS candidate_site")
