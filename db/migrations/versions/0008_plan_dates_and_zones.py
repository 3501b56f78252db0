"""Planning: when a facility closed, and planners' own zones.

* ``facility.retired_on``: the day a facility stopped serving. A report "as
  of" a date counts the facilities open that day: opened on or before it and
  not retired on or before it. Facilities retired before this column existed
  get the day of their last change (``updated_at``), the best date known.
* ``zone``: planners' own areas (townships 乡镇/街道, community grids 网格,
  planning units), in named sets loaded by ``flask etl zones FILE --set NAME``.
  Every planning figure can be given by the zones of one set
  (``zones=set:NAME``). Geometry is WGS-84 (EPSG:4326) multipolygons, like the
  districts. A ``data_version`` row ``zones`` is bumped by any change, so
  figures cached by zone are recomputed after a load.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE facility ADD COLUMN IF NOT EXISTS retired_on date")
    op.execute("UPDATE facility SET retired_on = CAST(updated_at AS date) WHERE status = 'retired' "
               "AND retired_on IS NULL")
    op.execute("""
    CREATE TABLE zone (
        id          bigserial PRIMARY KEY,
        set_name    text NOT NULL CHECK (set_name ~ '^[A-Za-z0-9_-]{1,40}$'),
        zone_id     text NOT NULL CHECK (length(btrim(zone_id)) > 0),
        name        text NOT NULL CHECK (length(btrim(name)) > 0),
        geom        geometry(MultiPolygon, 4326) NOT NULL,
        synthetic   boolean NOT NULL DEFAULT false,
        source_name text,
        loaded_at   timestamptz NOT NULL DEFAULT now(),
        UNIQUE (set_name, zone_id)
    )""")
    op.execute("CREATE INDEX zone_geom_gist ON zone USING gist (geom)")
    op.execute("INSERT INTO data_version (name) VALUES ('zones') ON CONFLICT DO NOTHING")
    op.execute("CREATE TRIGGER zone_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON zone "
               "FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('zones')")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS zone_data_version ON zone")
    op.execute("DELETE FROM data_version WHERE name = 'zones'")
    op.execute("DROP TABLE IF EXISTS zone")
    op.execute("ALTER TABLE facility DROP COLUMN IF EXISTS retired_on")
