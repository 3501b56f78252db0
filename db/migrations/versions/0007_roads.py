"""Road network: pgRouting, vertices and edges, and a record of each import.

Distances along roads (walking and driving) need a routable network. The
tables follow pgRouting's conventions, so ``pgr_dijkstra`` and
``pgr_drivingDistance`` run on them as they are:

* ``road_vertex``: the junctions and dead ends (dense ids 1..n, the OSM node
  id kept for tracing).
* ``road_edge``: one row per piece of road between two vertices, in the
  direction the OSM way was drawn (``source`` → ``target``). ``length_m`` is
  geodesic metres on WGS-84. ``walk`` and ``drive`` say who may use it;
  walking ignores one-way rules. ``cost`` and ``reverse_cost`` are driving
  metres along and against the drawing direction, negative where driving that
  way is not allowed (pgRouting's rule for a missing direction).
  ``drive_speed_kmh`` is the speed the highway tags give (``maxspeed``, else
  the class default). ``geom`` is a WGS-84 LineString from source to target.
* ``road_import``: one row per successful import (file, counts, what was
  dropped and why). The newest row describes the network in the tables.

A ``data_version`` row ``roads`` is bumped by any change to ``road_edge``,
so results cached on the network are recomputed after an import.

pgRouting is a PostgreSQL extension installed by the operating system
(Debian: ``postgresql-NN-pgrouting``); ``scripts/pgcluster.py`` installs it
for the project's own cluster. On another server the upgrade stops with a
message saying what to install.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""
from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _require_pgrouting() -> None:
    """Stop with a clear message when the server cannot create the pgRouting extension."""
    bind = op.get_bind()
    installed = bind.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'pgrouting'")).first()
    if installed:
        return
    available = bind.execute(text("SELECT default_version FROM pg_available_extensions WHERE name = 'pgrouting'"))
    major = bind.execute(text("SELECT current_setting('server_version_num')::int / 10000")).scalar()
    if available.first() is None:
        raise RuntimeError(
            f"the PostgreSQL {major} server has no pgRouting extension, which road networks need. "
            f"Install it on the database server (Debian/Ubuntu: apt-get install postgresql-{major}-pgrouting; "
            "other systems: see pgrouting.org), then run `flask db upgrade` again.")
    superuser = bind.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar()
    if not superuser:
        raise RuntimeError(
            "pgRouting is installed on the server but only a superuser may create the extension: ask the "
            "database administrator to run `CREATE EXTENSION pgrouting;` in this database, then run "
            "`flask db upgrade` again.")


def upgrade() -> None:
    _require_pgrouting()
    op.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
    op.execute("""
    CREATE TABLE road_import (
        id            bigserial PRIMARY KEY,
        source_name   text NOT NULL,
        source_sha256 text NOT NULL,
        source_bytes  bigint NOT NULL,
        format        text NOT NULL,
        synthetic     boolean NOT NULL,
        imported_at   timestamptz NOT NULL DEFAULT now(),
        edges         integer NOT NULL,
        vertices      integer NOT NULL,
        report        jsonb NOT NULL
    )""")
    op.execute("""
    CREATE TABLE road_vertex (
        id          bigint PRIMARY KEY,
        osm_node_id bigint NOT NULL,
        geom        geometry(Point, 4326) NOT NULL
    )""")
    op.execute("""
    CREATE TABLE road_edge (
        id              bigint PRIMARY KEY,
        osm_way_id      bigint NOT NULL,
        source          bigint NOT NULL REFERENCES road_vertex(id),
        target          bigint NOT NULL REFERENCES road_vertex(id),
        highway         text NOT NULL,
        name            text,
        length_m        double precision NOT NULL CHECK (length_m >= 0),
        walk            boolean NOT NULL,
        drive           boolean NOT NULL,
        cost            double precision NOT NULL,
        reverse_cost    double precision NOT NULL,
        drive_speed_kmh double precision NOT NULL CHECK (drive_speed_kmh > 0),
        synthetic       boolean NOT NULL,
        geom            geometry(LineString, 4326) NOT NULL,
        CHECK (walk OR drive),
        CHECK (drive = (cost >= 0 OR reverse_cost >= 0))
    )""")
    op.execute("CREATE INDEX road_edge_geom ON road_edge USING gist (geom)")
    op.execute("CREATE INDEX road_edge_source ON road_edge (source)")
    op.execute("CREATE INDEX road_edge_target ON road_edge (target)")
    op.execute("CREATE INDEX road_vertex_geom ON road_vertex USING gist (geom)")
    op.execute("COMMENT ON COLUMN road_edge.cost IS "
               "'driving metres source->target; negative where driving that way is not allowed'")
    op.execute("COMMENT ON COLUMN road_edge.reverse_cost IS "
               "'driving metres target->source; negative where driving that way is not allowed'")
    op.execute("COMMENT ON COLUMN road_edge.length_m IS 'geodesic length on WGS-84, metres'")
    op.execute("INSERT INTO data_version (name) VALUES ('roads') ON CONFLICT (name) DO NOTHING")
    op.execute("CREATE TRIGGER road_edge_data_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON road_edge "
               "FOR EACH STATEMENT EXECUTE FUNCTION bump_data_version('roads')")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS road_edge_data_version ON road_edge")
    op.execute("DELETE FROM data_version WHERE name = 'roads'")
    op.execute("DROP TABLE IF EXISTS road_edge")
    op.execute("DROP TABLE IF EXISTS road_vertex")
    op.execute("DROP TABLE IF EXISTS road_import")
    op.execute("DROP EXTENSION IF EXISTS pgrouting")
