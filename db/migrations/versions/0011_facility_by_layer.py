"""``facility`` partitioned by layer, so a full reload of a layer is built beside it and swapped in.

Loading a million rows into the one shared ``facility`` table spent most of
its time keeping indexes up to date row by row (the trigram GIN indexes above
all). With one partition per layer (``facility__<layer>``, the rest in a
default partition) a full reload builds a fresh table, indexes it once and
swaps it in (``db.partitions``); small reloads still upsert in place.

The new table is built from the existing one's definition, whatever
migrations ran before this one: every column (with its defaults, CHECKs and
NOT NULLs), every index (same names; each partition's copy is named
``<index>__<layer>``), every trigger, foreign key and dependent view is
carried over. Three changes follow from partitioning:

* the key on ``id`` becomes a unique index on ``(id, layer)`` named
  ``facility_pkey``: a key on a partitioned table must hold the partition key
  (ids still come from the one sequence, so stay unique);
* primary-key and unique *constraints* become unique *indexes* of the same
  names (``facility_pkey``, ``facility_layer_source_id_key``): PostgreSQL 15's
  ``pg_restore --clean`` cannot drop the constraints a partition inherits, so
  ``make restore`` over an existing copy would fail; ``ON CONFLICT (layer,
  source_id)`` uses the index all the same;
* ``facility_layer_point_gist`` indexes ``point`` alone: each partition holds
  one layer, so the layer column told the index nothing, and building it
  cost seven times as much as the point alone (26 s against 3.5 s for a
  million rows). Its name and partial predicate (active rows) stay.

A foreign key *to* ``facility`` from another table cannot survive (it would
need a unique key on ``id`` alone); the upgrade stops and names it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""
import re

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

from db import partitions

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_OLD = "facility_unpartitioned"
#: The keys of the initial schema, as constraints (for a downgrade only).
_KEYS = {"facility_pkey": "PRIMARY KEY (id)", "facility_layer_source_id_key": "UNIQUE (layer, source_id)"}
_NEW = "facility_partitioned"


def upgrade() -> None:
    conn = op.get_bind()
    if _is_partitioned(conn):
        return
    _refuse_foreign_keys_to_facility(conn)
    saved = _definitions(conn)
    layers = [r[0] for r in conn.execute(text("SELECT DISTINCT layer FROM facility ORDER BY 1"))]
    _detach_sequence(conn, saved["sequence"])
    _drop_views(conn, saved["views"])
    partitions.ddl(conn, "ALTER TABLE facility RENAME TO %I", _OLD)
    partitions.ddl(conn, "CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED "
                         "INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY LIST (layer)", _NEW, _OLD)
    partitions.ddl(conn, "CREATE TABLE %I PARTITION OF %I DEFAULT", partitions.DEFAULT_PARTITION, _NEW)
    for layer in layers:
        partitions.ddl(conn, "CREATE TABLE %I PARTITION OF %I FOR VALUES IN (%L)",
                       partitions.partition_name(layer), _NEW, layer)
    partitions.ddl(conn, "INSERT INTO %I SELECT * FROM %I", _NEW, _OLD)
    partitions.ddl(conn, "DROP TABLE %I", _OLD)
    partitions.ddl(conn, "ALTER TABLE %I RENAME TO facility", _NEW)
    _restore(conn, saved, partitioned=True)
    for layer in layers:
        partitions.name_indexes(conn, partitions.partition_name(layer), layer)
    partitions.name_indexes(conn, partitions.DEFAULT_PARTITION, partitions.DEFAULT_PARTITION[len(partitions.PREFIX):])
    conn.execute(text("ANALYZE facility"))


def downgrade() -> None:
    conn = op.get_bind()
    if not _is_partitioned(conn):
        return
    saved = _definitions(conn)
    _detach_sequence(conn, saved["sequence"])
    _drop_views(conn, saved["views"])
    partitions.ddl(conn, "ALTER TABLE facility RENAME TO %I", _NEW)
    partitions.ddl(conn, "CREATE TABLE facility (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
                         "INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMMENTS)", _NEW)
    partitions.ddl(conn, "INSERT INTO facility SELECT * FROM %I", _NEW)
    partitions.ddl(conn, "DROP TABLE %I CASCADE", _NEW)
    _restore(conn, saved, partitioned=False)


# ------------------------------------------------------------------ what the table carries
def _is_partitioned(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT relkind = 'p' FROM pg_class WHERE oid = 'facility'::regclass")).scalar())


def _refuse_foreign_keys_to_facility(conn: Connection) -> None:
    refs = conn.execute(text("SELECT conrelid::regclass::text, conname FROM pg_constraint "
                             "WHERE confrelid = 'facility'::regclass AND contype = 'f'")).all()
    if refs:
        named = ", ".join(f"{table}.{name}" for table, name in refs)
        raise RuntimeError(f"foreign keys reference facility ({named}); a partitioned facility cannot keep them")


def _definitions(conn: Connection) -> dict:
    """Everything on ``facility`` that ``CREATE TABLE ... LIKE`` does not copy."""
    constraints = conn.execute(text(
        "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = 'facility'::regclass AND contype IN ('p', 'u', 'f', 'x') AND coninhcount = 0 "
        "ORDER BY contype DESC, conname")).all()
    owned = {name for name, _, _ in constraints}
    indexes = conn.execute(text(
        "SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE x.indrelid = 'facility'::regclass ORDER BY c.relname")).all()
    triggers = conn.execute(text(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'facility'::regclass "
        "AND NOT tgisinternal AND tgparentid = 0 ORDER BY tgname")).all()
    views = conn.execute(text(
        "SELECT DISTINCT v.relname, v.relkind, pg_get_viewdef(v.oid) FROM pg_depend d "
        "JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class "
        "WHERE d.refobjid = 'facility'::regclass AND v.oid <> 'facility'::regclass ORDER BY v.relname")).all()
    sequence = conn.execute(text("SELECT pg_get_serial_sequence('facility', 'id')")).scalar()
    grants = conn.execute(text(
        "SELECT coalesce(a.grantee::regrole::text, 'PUBLIC'), a.privilege_type FROM pg_class c, "
        "aclexplode(c.relacl) a WHERE c.oid = 'facility'::regclass AND a.grantee <> c.relowner")).all()
    return {"constraints": constraints, "indexes": [(n, d) for n, d in indexes if n not in owned],
            "triggers": triggers, "views": views, "sequence": sequence, "grants": grants}


def _detach_sequence(conn: Connection, sequence: str | None) -> None:
    """Keep the id sequence when the old table is dropped."""
    if sequence:
        conn.exec_driver_sql(f"ALTER SEQUENCE {sequence} OWNED BY NONE")


def _drop_views(conn: Connection, views: list) -> None:
    for name, kind, _ in views:
        partitions.ddl(conn, "DROP MATERIALIZED VIEW %I" if kind == "m" else "DROP VIEW %I", name)


def _restore(conn: Connection, saved: dict, *, partitioned: bool) -> None:
    """Put back keys, indexes, triggers, views and the sequence's owner on the new ``facility``."""
    for name, kind, definition in saved["constraints"]:
        columns = re.search(r"\((.*?)\)", definition)
        if partitioned and kind in ("p", "u") and columns:  # a unique index, not a constraint: see the docstring
            keys = columns.group(1) + (", layer" if kind == "p" and "layer" not in columns.group(1) else "")
            conn.exec_driver_sql(partitions.formatted(conn, "CREATE UNIQUE INDEX %I ON facility ", name) + f"({keys})")
            continue
        conn.exec_driver_sql(partitions.formatted(conn, "ALTER TABLE facility ADD CONSTRAINT %I ", name) + definition)
    for name, definition in saved["indexes"]:
        if not partitioned and name in _KEYS:  # back to the constraints they stood for
            conn.exec_driver_sql(partitions.formatted(conn, "ALTER TABLE facility ADD CONSTRAINT %I ", name)
                                 + _KEYS[name])
            continue
        conn.exec_driver_sql(_index_on(definition, name, partitioned))
    for _, definition in saved["triggers"]:
        conn.exec_driver_sql(definition)
    for name, kind, definition in saved["views"]:
        what = "MATERIALIZED VIEW" if kind == "m" else "VIEW"
        conn.exec_driver_sql(partitions.formatted(conn, f"CREATE {what} %I AS ", name) + definition)
    if saved["sequence"]:
        conn.exec_driver_sql(f"ALTER SEQUENCE {saved['sequence']} OWNED BY facility.id")
    for grantee, privilege in saved["grants"]:
        who = "PUBLIC" if grantee in ("PUBLIC", "-") else partitions.formatted(conn, "%I", grantee)
        conn.exec_driver_sql(f"GRANT {privilege} ON facility TO {who}")


def _index_on(definition: str, name: str, partitioned: bool) -> str:
    """An index definition read from the old table, for the new one (see the module docstring)."""
    definition = definition.replace(" ON ONLY ", " ON ")
    if partitioned and name == "facility_layer_point_gist":
        definition = definition.replace("gist (layer, point)", "gist (point)")
    elif not partitioned and name == "facility_layer_point_gist":
        definition = definition.replace("gist (point)", "gist (layer, point)")
    return definition
