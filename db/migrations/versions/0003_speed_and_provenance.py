"""Faster nearest answers, data versions for caches, and what each file last said.

* ``facility_layer_point_gist``: a GiST index on (layer, point) for active
  facilities (``btree_gist``), so a nearest-neighbour walk for one layer does
  not step over every other layer's points. Measured on the demo: the
  five-layer KNN went from 1.9 ms to 0.65 ms.
* ``data_version``: one row per table family, bumped by statement triggers in
  the same transaction as the change. Caches (pages, coverage) key on it, so a
  reader never serves results computed from data that has since changed.
* ``facility.source_hash``: a hash of the record as the source file gave it.
  Re-loading a file whose row has not changed leaves the facility alone, even
  if an editor corrected it or retired it since.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute("CREATE INDEX IF NOT EXISTS facility_layer_point_gist ON facility USING gist (layer, point) "
               "WHERE status = 'active'")
    op.execute("ALTER TABLE facility ADD COLUMN IF NOT EXISTS source_hash text")
    op.execute("""
    CREATE TABLE data_version (
        name       text PRIMARY KEY,
        version    bigint NOT NULL DEFAULT 0,
        changed_at timestamptz NOT NULL DEFAULT now()
    )""")
    op.execute("INSERT INTO data_version (name) VALUES ('facility'), ('grid')")
    op.execute("""
    CREATE FUNCTION bump_data_version() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE data_version SET version = version + 1, changed_at = now() WHERE name = TG_ARGV[0];
        RETURN NULL;
    END $$""")
    for table, family in (("facility", "facility"), ("demand_cell", "grid"), ("village", "grid")):
        op.execute(f"CREATE TRIGGER {table}_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('{family}')")


def downgrade() -> None:
    for table in ("facility", "demand_cell", "village"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_data_version ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_data_version()")
    op.execute("DROP TABLE IF EXISTS data_version")
    op.execute("ALTER TABLE facility DROP COLUMN IF EXISTS source_hash")
    op.execute("DROP INDEX IF EXISTS facility_layer_point_gist")
