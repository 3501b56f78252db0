"""One GiST index on facility geometry: the one on active facilities.

Every spatial read of ``facility`` (OGC bbox and CQL filters, vector tiles,
nearest, the map's markers) reads active facilities only, so the planner uses
``facility_layer_geom_gist`` (``WHERE status = 'active'``) and
``facility_geom_gist`` (0001, on every row) was never read. It was still built
on every full reload and updated on every edit: about 2.3 s of index building
on a million-row load. It is dropped, and with it each partition's copy.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""
from alembic import op

from db import partitions

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS facility_geom_gist")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS facility_geom_gist ON facility USING gist (geom)")
    partitions.name_all_indexes(op.get_bind())  # each partition's copy named ``<index>__<layer>``, as 0011 did
