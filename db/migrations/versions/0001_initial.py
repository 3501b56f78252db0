"""Initial schema: districts, facilities, demand cells, villages, load runs, change log.

Geometry is WGS-84 (EPSG:4326) throughout, converted at the edges. Areas keep
their polygon in ``geom`` and carry a representative ``point`` for distances.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LAYER_KEYS = ("service_office", "police_station", "pocket_park", "parking", "village_clinic")


def upgrade() -> None:
    keys = ", ".join(f"'{k}'" for k in LAYER_KEYS)
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("""
    CREATE TABLE district (
        adcode           text PRIMARY KEY,
        name_zh          text NOT NULL,
        name_en          text NOT NULL,
        population       integer NOT NULL CHECK (population >= 0),
        urban_population integer,
        rural_population integer,
        area_km2         double precision NOT NULL,
        seat             geometry(Point, 4326),
        geom             geometry(MultiPolygon, 4326) NOT NULL,
        source           text NOT NULL
    )""")
    op.execute("CREATE INDEX district_geom_gist ON district USING gist (geom)")
    op.execute("""
    CREATE TABLE load_run (
        id          bigserial PRIMARY KEY,
        layer       text NOT NULL,
        source_name text NOT NULL,
        sha256      text NOT NULL,
        crs         text,
        started_at  timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        status      text NOT NULL CHECK (status IN ('running', 'loaded', 'partial', 'rejected', 'dry_run', 'failed')),
        accepted    integer NOT NULL DEFAULT 0,
        rejected    integer NOT NULL DEFAULT 0,
        inserted    integer NOT NULL DEFAULT 0,
        updated     integer NOT NULL DEFAULT 0,
        unchanged   integer NOT NULL DEFAULT 0,
        notes       jsonb NOT NULL DEFAULT '[]'::jsonb
    )""")
    op.execute("""
    CREATE TABLE load_reject (
        id          bigserial PRIMARY KEY,
        load_run_id bigint NOT NULL REFERENCES load_run(id) ON DELETE CASCADE,
        row_number  integer NOT NULL,
        source_id   text,
        reason      text NOT NULL
    )""")
    op.execute("CREATE INDEX load_reject_run ON load_reject (load_run_id)")
    op.execute(f"""
    CREATE TABLE facility (
        id              bigserial PRIMARY KEY,
        layer           text NOT NULL CHECK (layer IN ({keys})),
        source_id       text NOT NULL,
        kind            text,
        name            text NOT NULL CHECK (length(btrim(name)) > 0),
        address         text,
        phone           text,
        opening_hours   text,
        capacity        integer CHECK (capacity >= 0),
        opened_on       date,
        status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
        attrs           jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        district_adcode text REFERENCES district(adcode),
        geom            geometry(Geometry, 4326) NOT NULL,
        point           geometry(Point, 4326) NOT NULL,
        synthetic       boolean NOT NULL DEFAULT false,
        load_run_id     bigint REFERENCES load_run(id) ON DELETE SET NULL,
        version         integer NOT NULL DEFAULT 1,
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now(),
        UNIQUE (layer, source_id)
    )""")
    op.execute("CREATE INDEX facility_point_gist ON facility USING gist (point)")
    op.execute("CREATE INDEX facility_geom_gist ON facility USING gist (geom)")
    op.execute("CREATE INDEX facility_layer_status ON facility (layer, status)")
    op.execute("CREATE INDEX facility_updated ON facility (updated_at)")
    op.execute("CREATE INDEX facility_name_trgm ON facility USING gin (name gin_trgm_ops)")
    op.execute("CREATE INDEX facility_address_trgm ON facility USING gin (address gin_trgm_ops)")
    op.execute("""
    CREATE TABLE demand_cell (
        id              bigserial PRIMARY KEY,
        cell_id         text NOT NULL UNIQUE,
        district_adcode text NOT NULL REFERENCES district(adcode),
        population      integer NOT NULL CHECK (population >= 0),
        urban           boolean NOT NULL,
        resolution_m    double precision NOT NULL,
        x_m             double precision NOT NULL,
        y_m             double precision NOT NULL,
        geom            geometry(Point, 4326) NOT NULL,
        synthetic       boolean NOT NULL DEFAULT true
    )""")
    op.execute("CREATE INDEX demand_cell_geom_gist ON demand_cell USING gist (geom)")
    op.execute("CREATE INDEX demand_cell_district ON demand_cell (district_adcode)")
    op.execute("""
    CREATE TABLE village (
        id              bigserial PRIMARY KEY,
        village_id      text NOT NULL UNIQUE,
        name            text NOT NULL,
        district_adcode text NOT NULL REFERENCES district(adcode),
        population      integer NOT NULL CHECK (population >= 0),
        geom            geometry(Point, 4326) NOT NULL,
        synthetic       boolean NOT NULL DEFAULT true
    )""")
    op.execute("CREATE INDEX village_geom_gist ON village USING gist (geom)")
    op.execute("""
    CREATE TABLE change_log (
        id          bigserial PRIMARY KEY,
        facility_id bigint NOT NULL,
        actor       text NOT NULL,
        action      text NOT NULL CHECK (action IN ('insert', 'update', 'retire', 'load')),
        at          timestamptz NOT NULL DEFAULT now(),
        before      jsonb,
        after       jsonb,
        load_run_id bigint REFERENCES load_run(id) ON DELETE SET NULL
    )""")
    op.execute("CREATE INDEX change_log_facility ON change_log (facility_id, at)")
    op.execute("""
    CREATE TABLE app_meta (
        key   text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""")


def downgrade() -> None:
    for table in ("app_meta", "change_log", "village", "demand_cell", "facility", "load_reject", "load_run",
                  "district"):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
