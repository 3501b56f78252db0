"""Drop the plain GiST index on facility.point.

Every query that orders or filters by ``point`` also names the layer and asks
for active facilities, so it uses ``facility_layer_point_gist`` (0003); the
plain index only cost upkeep on every load and edit.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS facility_point_gist")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS facility_point_gist ON facility USING gist (point)")
