"""Nearest facilities by their geometry: a park is as near as its edge, not its centre point.

``facility_layer_geom_gist`` is a GiST index on geom for active facilities,
built on every layer's partition (0011), so the nearest-neighbour walk
(``ORDER BY geom <-> position``) in one layer's partition orders a park's
polygon by its nearest point and points by themselves. It replaces ``facility_layer_point_gist`` (0003), which only
the nearest query used: the table keeps the same number of indexes to update
on a load.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""
from alembic import op

from db import partitions

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS facility_layer_geom_gist ON facility USING gist (geom) "
               "WHERE status = 'active'")
    op.execute("DROP INDEX IF EXISTS facility_layer_point_gist")
    _name_partition_indexes()
    op.execute("ANALYZE facility")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS facility_layer_point_gist ON facility USING gist (point) "
               "WHERE status = 'active'")
    op.execute("DROP INDEX IF EXISTS facility_layer_geom_gist")
    _name_partition_indexes()


def _name_partition_indexes() -> None:
    """Each partition's copy of the index is named ``<index>__<layer>``, as 0011 named the others."""
    partitions.name_all_indexes(op.get_bind())
