"""Change notices: every change to what nearest holds in memory is announced as it commits.

* ``data_version`` gets a ``districts`` row, bumped by any change to
  ``district`` (statement trigger, as 0003 does for facilities): caches of
  anything measured by district now follow a boundary or name change too.
* A statement trigger on ``data_version`` (bumped in the same transaction as
  any change to facilities, the demand grid, villages, roads, zones or
  districts, and by the partition swap of a full reload) runs
  ``pg_notify('minsheng_data_change', 'data_version')``. PostgreSQL sends
  the notice only when the transaction commits. A serving process that
  holds facilities in memory for nearest (``services/nearest_held.py``)
  listens (``db/notify.py``) and reads them again on its next request.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("INSERT INTO data_version (name) VALUES ('districts') ON CONFLICT (name) DO NOTHING")
    op.execute("CREATE TRIGGER district_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON district "
               "FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('districts')")
    op.execute("""
    CREATE FUNCTION notify_data_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('minsheng_data_change', TG_TABLE_NAME);
        RETURN NULL;
    END $$""")
    op.execute("CREATE TRIGGER data_version_change_notice AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
               "ON data_version FOR EACH STATEMENT EXECUTE FUNCTION notify_data_change()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS data_version_change_notice ON data_version")
    op.execute("DROP FUNCTION IF EXISTS notify_data_change()")
    op.execute("DROP TRIGGER IF EXISTS district_data_version ON district")
    op.execute("DELETE FROM data_version WHERE name = 'districts'")
