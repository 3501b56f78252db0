"""Nearest facilities by their geometry: a park is as near as its edge, not its centre point.

``facility_layer_geom_gist`` is a GiST index on (layer, geom) for active
facilities, so the nearest-neighbour walk (``ORDER BY geom <-> position``)
orders a park's polygon by its nearest point and points by themselves, one
layer at a time. It replaces ``facility_layer_point_gist`` (0003), which only
the nearest query used: the table keeps the same number of indexes to update
on a load.

Revision ID: 0013
Revises: 0007
Create Date: 2026-11-29
"""
from alembic import op

revision = "0013"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS facility_layer_geom_gist ON facility USING gist (layer, geom) "
               "WHERE status = 'active'")
    op.execute("DROP INDEX IF EXISTS facility_layer_point_gist")
    op.execute("ANALYZE facility")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS facility_layer_point_gist ON facility USING gist (layer, point) "
               "WHERE status = 'active'")
    op.execute("DROP INDEX IF EXISTS facility_layer_geom_gist")
