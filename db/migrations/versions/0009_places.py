"""Places residents search by: the township list and the gazetteer.

* ``township``: the real township-level units (乡镇、街道) of the city from
  the statistical division codes (``data/divisions``), with a position. Until
  an operator loads real positions (``flask places townships FILE``) the
  position is the demo's synthetic placement and ``synthetic`` says so.
* ``place``: the gazetteer ``/api/places`` searches and the offline basemap
  labels: districts, townships, villages, roads of the network (one row per
  road name) and facilities (names and addresses). Each row carries its full
  pinyin and initials for Latin-letter search, and English/Chinese keywords
  (kind and layer names). It is rebuilt part by part (``part``) from its
  sources when their ``data_version`` changes (``services/gazetteer.py``).
  Positions are WGS-84 points (EPSG:4326).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("""
    CREATE TABLE township (
        code            text PRIMARY KEY,
        name            text NOT NULL,
        district_adcode text NOT NULL REFERENCES district(adcode),
        kind            text NOT NULL CHECK (kind IN ('street', 'town', 'zone')),
        geom            geometry(Point, 4326) NOT NULL,
        synthetic       boolean NOT NULL,
        source          text NOT NULL
    )""")
    op.execute("""
    CREATE TABLE place (
        id              bigserial PRIMARY KEY,
        part            text NOT NULL CHECK (part IN ('divisions', 'villages', 'roads', 'facilities')),
        kind            text NOT NULL CHECK (kind IN ('district', 'street', 'town', 'zone', 'village', 'road',
                                                      'facility')),
        name            text NOT NULL,
        name_en         text NOT NULL,
        pinyin          text NOT NULL,
        initials        text NOT NULL,
        keywords        text NOT NULL DEFAULT '',
        address         text,
        layer           text,
        facility_id     bigint,
        district_adcode text,
        geom            geometry(Point, 4326) NOT NULL,
        synthetic       boolean NOT NULL,
        source          text NOT NULL
    )""")
    op.execute("CREATE INDEX place_part ON place (part)")
    op.execute("CREATE INDEX place_geom ON place USING gist (geom)")
    for column in ("name", "pinyin", "initials", "keywords", "address"):
        op.execute(f"CREATE INDEX place_{column}_trgm ON place USING gin ({column} gin_trgm_ops)")
    op.execute("COMMENT ON COLUMN place.pinyin IS 'full pinyin of name, lower case, no tones or separators'")
    op.execute("COMMENT ON COLUMN place.synthetic IS 'the position (or the place itself) is synthetic demo data'")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS place")
    op.execute("DROP TABLE IF EXISTS township")
