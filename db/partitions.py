"""The ``facility`` table's partitions, one per layer, and the swap that replaces one in a single step.

``facility`` is partitioned by list of ``layer`` (migration 0011): each layer
a load has written has its own partition ``facility__<layer>``; rows of any
other layer (added by an editor before any load) live in the default
partition. A partition carries every index of the parent (created on the
parent, PostgreSQL keeps one per partition), named ``<parent index>__<layer>``
so that a query plan names the parent's index.

A full reload of a layer builds a fresh table beside the live partition
(:func:`create_fresh`), fills it, indexes it once (cheaper than keeping every
index up to date row by row; :func:`index_fresh` builds several indexes at
once, each on a connection of its own, so the fresh table is committed
first) and swaps it in (:func:`swap_in`): detach and drop the old partition,
attach the fresh one, in the caller's transaction, so readers keep the old
rows until its commit. The order of those steps and their locks is
:mod:`db.rebuild`. The swap takes an ACCESS EXCLUSIVE lock on ``facility``
for the few statements before the commit; it waits at most
:data:`SWAP_LOCK_TIMEOUT` at a time for readers to finish, and gives up
after :data:`SWAP_ATTEMPTS` tries.

Identifiers (table, index and constraint names) cannot be bound parameters:
they are quoted by the server (``format('%I')``) from names this module
derives; a layer key must match :data:`LAYER_KEY` (the table's own CHECK).
"""
from __future__ import annotations

import hashlib
import queue
import re
import threading
import time

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

#: What a layer key looks like (the ``facility_layer_key`` CHECK of migration 0006).
LAYER_KEY = re.compile(r"^[a-z][a-z_]*$")
#: The parent table.
PARENT = "facility"
#: Partition names are ``facility__<layer>``; a fresh one being built is ``facility__<layer>__fresh``.
PREFIX = "facility__"
#: The partition of layers that have none of their own (a layer key cannot start with "_").
DEFAULT_PARTITION = PREFIX + "_default"
#: Longest identifier PostgreSQL keeps (NAMEDATALEN - 1).
MAX_NAME = 63
#: How long the swap waits for readers in one try, and how many tries before the load fails.
SWAP_LOCK_TIMEOUT = "2s"
SWAP_ATTEMPTS = 150
#: Memory one index build may use (per statement; PostgreSQL's default is 64 MB).
INDEX_BUILD_MEMORY = "256MB"
#: Index builds of a fresh table at once, each on a connection (a server process) of its own: one
#: per core of the database machine (PostgreSQL 15 builds GIN and GiST indexes on one core each).
INDEX_BUILD_WORKERS = 2
#: Which builds start first: the longest (trigram GIN, then GiST), so the last to finish is a short one.
_BUILD_ORDER = {"gin": 0, "gist": 1}

# Catalog reads only: no lock on the partitions (a load must not hold one while another swaps).
_PARTITIONS = text("""
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = CAST(:parent AS regclass) ORDER BY c.relname
""")

#: Tables the parent's foreign keys point to: attaching a partition locks them (SHARE ROW EXCLUSIVE).
_REFERENCED = text("""
SELECT DISTINCT confrelid::regclass::text AS name FROM pg_constraint
WHERE conrelid = CAST(:parent AS regclass) AND contype = 'f' ORDER BY 1
""")

#: The parent's own indexes (each partitioned index), with their definition, and the definition of
#: the constraint (primary key, unique) an index backs, if it backs one.
_PARENT_INDEXES = text("""
SELECT c.relname AS name, pg_get_indexdef(c.oid) AS definition, pg_get_constraintdef(k.oid) AS constraint_def
FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
LEFT JOIN pg_constraint k ON k.conindid = c.oid AND k.conrelid = x.indrelid
WHERE x.indrelid = CAST(:parent AS regclass) ORDER BY c.relname
""")

#: Indexes of a table, with the parent index each is attached to (NULL when none).
_TABLE_INDEXES = text("""
SELECT c.relname AS name, p.relname AS parent
FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid LEFT JOIN pg_class p ON p.oid = i.inhparent
WHERE x.indrelid = CAST(:table AS regclass) ORDER BY c.relname
""")

_FORMAT = text("SELECT format(:template, VARIADIC CAST(:args AS text[]))")

_BUMP = text("UPDATE data_version SET version = version + 1, changed_at = now() WHERE name = 'facility'")

_SET_LOCAL = text("SELECT set_config(:name, :value, true)")

_COUNT = text("SELECT count(*) FROM facility WHERE layer = :layer")


def check_layer_key(layer: str) -> None:
    """Raise ``ValueError`` unless ``layer`` looks like a layer key (:data:`LAYER_KEY`)."""
    if not LAYER_KEY.match(layer):
        raise ValueError(f"layer was {layer!r} but is expected to match {LAYER_KEY.pattern}")


def _fit(name: str) -> str:
    """``name``, or a shortened form with a hash when it is longer than PostgreSQL keeps."""
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.md5(name.encode()).hexdigest()[:8]
    return f"{name[:MAX_NAME - 10]}__{digest}"


def partition_name(layer: str) -> str:
    """The partition that holds ``layer``: ``facility__<layer>``."""
    check_layer_key(layer)
    return _fit(PREFIX + layer)


def fresh_name(layer: str) -> str:
    """The table a full reload of ``layer`` is built in before the swap."""
    check_layer_key(layer)
    return _fit(f"{PREFIX}{layer}__fresh")


def index_name(parent_index: str, layer: str, *, fresh: bool = False) -> str:
    """Name of the partition index of ``layer`` attached to ``parent_index``."""
    return _fit(f"{parent_index}__{layer}" + ("__fresh" if fresh else ""))


def formatted(conn: Connection, template: str, *args: str) -> str:
    """``format(template, *args)`` done by the server: ``%I`` quotes a name, ``%L`` a value."""
    return str(conn.execute(_FORMAT, {"template": template, "args": list(args)}).scalar_one())


def ddl(conn: Connection, template: str, *args: str) -> None:
    """Run a DDL statement built by the server with :func:`formatted`."""
    conn.exec_driver_sql(formatted(conn, template, *args))


def partitions(conn: Connection, parent: str = PARENT) -> list[str]:
    """Names of the partitions of ``parent``, e.g. ``["facility___default", "facility__parking"]``."""
    return [r.relname for r in conn.execute(_PARTITIONS, {"parent": parent})]


def has_partition(conn: Connection, layer: str) -> bool:
    """Whether ``layer`` has a partition of its own (else its rows, if any, are in the default one)."""
    return partition_name(layer) in partitions(conn)


def layer_rows(conn: Connection, layer: str) -> int:
    """Rows of ``layer`` in ``facility`` (any status)."""
    return int(conn.execute(_COUNT, {"layer": layer}).scalar_one())


def parent_indexes(conn: Connection, parent: str = PARENT) -> dict[str, tuple[str, str | None]]:
    """``{index name: (definition, constraint definition or None)}`` of each index declared on the parent.

    The definition reads ``CREATE ... INDEX ... ON ONLY ...``; the constraint
    definition, for an index behind a primary key or unique constraint,
    ``PRIMARY KEY (id, layer)`` or ``UNIQUE (layer, source_id)``.
    """
    return {r.name: (r.definition, r.constraint_def) for r in conn.execute(_PARENT_INDEXES, {"parent": parent})}


def partition_index_sql(definition: str, parent: str, table: str, name: str) -> tuple[str, list[str]]:
    """A parent index's definition turned into a ``format()`` template and arguments for ``table``.

    ``CREATE [UNIQUE] INDEX n ON ONLY public.facility USING ...`` becomes
    ``CREATE [UNIQUE] INDEX %I ON %I USING ...`` with ``[name, table]``.

    Raises
    ------
    ValueError
        When the definition is not of that shape.
    """
    pattern = rf"^CREATE (UNIQUE )?INDEX \S+ ON ONLY (?:\S+\.)?{re.escape(parent)} (USING .*)$"
    found = re.match(pattern, definition)
    if found is None:
        raise ValueError(f"index definition {definition!r} is not a CREATE INDEX on {parent}")
    rest = found.group(2).replace("%", "%%")
    return f"CREATE {found.group(1) or ''}INDEX %I ON %I {rest}", [name, table]


def create_partition(conn: Connection, layer: str) -> str:
    """An empty partition for ``layer`` (indexes named after the parent's); returns its name."""
    name = partition_name(layer)
    ddl(conn, "CREATE TABLE %I PARTITION OF %I FOR VALUES IN (%L)", name, PARENT, layer)
    name_indexes(conn, name, layer)
    return name


def name_indexes(conn: Connection, table: str, layer: str) -> None:
    """Rename the indexes of partition ``table`` to ``<parent index>__<layer>``."""
    for r in conn.execute(_TABLE_INDEXES, {"table": table}).all():
        if r.parent and r.name != index_name(r.parent, layer):
            ddl(conn, "ALTER INDEX %I RENAME TO %I", r.name, index_name(r.parent, layer))


def name_all_indexes(conn: Connection) -> None:
    """:func:`name_indexes` on every partition of ``facility`` (after an index is created on the parent)."""
    for table in partitions(conn):
        name_indexes(conn, table, table[len(PREFIX):])


# ------------------------------------------------------------------ full reload of one layer
def create_fresh(conn: Connection, layer: str) -> str:
    """An empty table shaped like ``facility`` (columns, defaults, CHECKs; no index yet) for ``layer``.

    It holds only ``layer`` (a CHECK says so, so attaching it needs no scan).
    A fresh table of ``layer`` left by a load that crashed is dropped first:
    the caller holds the layer's load lock, so no running load owns it.
    Autovacuum leaves it alone until the swap (it would hold up the index
    builds). Returns its name.
    """
    name = fresh_name(layer)
    drop_fresh(conn, layer)
    ddl(conn, "CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED "
              "INCLUDING STORAGE) WITH (autovacuum_enabled = false)", name, PARENT)
    ddl(conn, "ALTER TABLE %I ADD CONSTRAINT %I CHECK (layer = %L)", name, _fit(name + "_layer"), layer)
    return name


def drop_fresh(conn: Connection, layer: str) -> None:
    """Drop the fresh table of ``layer`` if there is one (not swapped in: a failed or crashed load's)."""
    ddl(conn, "DROP TABLE IF EXISTS %I", fresh_name(layer))


def index_fresh(conn: Connection, layer: str, *, workers: int = INDEX_BUILD_WORKERS) -> None:
    """Build every index of the parent on the fresh table of ``layer``, each once, ``workers`` at a time.

    The fresh table must be committed: ``conn`` (not in a transaction) and
    ``workers - 1`` more connections of its engine each take the next build,
    in a transaction of its own, longest first (:data:`_BUILD_ORDER`). A
    failed build stops the others starting new ones; its error is raised
    once the running ones end. ANALYZE follows, on ``conn``.
    """
    table = fresh_name(layer)
    with conn.begin():
        builds = [_index_statement(conn, table, layer, name, definition, constraint)
                  for name, (definition, constraint) in parent_indexes(conn).items()]
    builds.sort(key=lambda sql: _BUILD_ORDER.get(_method(sql), len(_BUILD_ORDER)))
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for sql in builds:
        todo.put(sql)
    failed: list[BaseException] = []
    helpers = [threading.Thread(target=_build_on_new_connection, args=(conn, todo, failed), daemon=True)
               for _ in range(min(workers, len(builds)) - 1)]
    for helper in helpers:
        helper.start()
    _build(conn, todo, failed)
    for helper in helpers:
        helper.join()
    if failed:
        raise failed[0]
    with conn.begin():
        ddl(conn, "ANALYZE %I", table)


def _index_statement(conn: Connection, table: str, layer: str, parent_index: str, definition: str,
                     constraint: str | None) -> str:
    """The statement that builds ``parent_index``'s copy on ``table``, with names quoted by the server."""
    name = index_name(parent_index, layer, fresh=True)
    if constraint:  # attaching matches a constraint's index only to a constraint's index
        return formatted(conn, "ALTER TABLE %I ADD CONSTRAINT %I " + constraint.replace("%", "%%"), table, name)
    template, args = partition_index_sql(definition, PARENT, table, name)
    return formatted(conn, template, *args)


def _method(sql: str) -> str:
    """The access method of a CREATE INDEX statement (``gin``, ``gist``, ``btree``...)."""
    found = re.search(r" USING (\w+)", sql)
    return found.group(1) if found else "btree"


def _build(conn: Connection, todo: queue.SimpleQueue[str], failed: list[BaseException]) -> None:
    """Run builds from ``todo`` on ``conn``, one transaction each, until it is empty or one failed."""
    while not failed:
        try:
            sql = todo.get_nowait()
        except queue.Empty:
            return
        try:
            with conn.begin():
                conn.execute(_SET_LOCAL, {"name": "maintenance_work_mem", "value": INDEX_BUILD_MEMORY})
                conn.exec_driver_sql(sql)
        except BaseException as exc:  # handed to the caller's thread, which raises it
            failed.append(exc)
            return


def _build_on_new_connection(conn: Connection, todo: queue.SimpleQueue[str], failed: list[BaseException]) -> None:
    try:
        with conn.engine.connect() as own:
            _build(own, todo, failed)
    except BaseException as exc:  # no connection: the caller's thread raises it
        failed.append(exc)


def swap_in(conn: Connection, layer: str) -> None:
    """Replace ``layer``'s rows in ``facility`` by the fresh table's, in the caller's transaction.

    The live partition is detached and dropped (or, for a layer kept in the
    default partition, its rows deleted there), the fresh table attached in
    its place and given the canonical names, and the ``facility`` data
    version bumped (attaching fires no trigger).

    Raises
    ------
    sqlalchemy.exc.OperationalError
        When readers held ``facility`` through every try (:data:`SWAP_ATTEMPTS`).
    """
    fresh, live = fresh_name(layer), partition_name(layer)
    _lock_parent(conn)
    if live in partitions(conn):
        ddl(conn, "ALTER TABLE %I DETACH PARTITION %I", PARENT, live)
        ddl(conn, "DROP TABLE %I", live)
    else:
        conn.execute(text("DELETE FROM facility WHERE layer = :layer"), {"layer": layer})
    ddl(conn, "ALTER TABLE %I ATTACH PARTITION %I FOR VALUES IN (%L)", PARENT, fresh, layer)
    ddl(conn, "ALTER TABLE %I DROP CONSTRAINT %I, RESET (autovacuum_enabled)", fresh, _fit(fresh + "_layer"))
    ddl(conn, "ALTER TABLE %I RENAME TO %I", fresh, live)
    name_indexes(conn, live, layer)
    conn.execute(_BUMP)


def _lock_parent(conn: Connection) -> None:
    """The locks of the swap, in one order: SHARE ROW EXCLUSIVE on the tables ``facility``'s foreign
    keys point to (attaching takes it), then ACCESS EXCLUSIVE on ``facility`` (detaching takes it).

    A load of another layer takes ``load_run`` before ``facility``, so taking
    them in that order too never deadlocks with it. Each try waits
    :data:`SWAP_LOCK_TIMEOUT`, so queries arriving meanwhile are not queued
    behind the swap for longer than that.
    """
    referenced = [r.name for r in conn.execute(_REFERENCED, {"parent": PARENT})]
    before = conn.execute(text("SHOW lock_timeout")).scalar_one()
    for attempt in range(SWAP_ATTEMPTS):
        savepoint = conn.begin_nested()
        try:
            conn.execute(_SET_LOCAL, {"name": "lock_timeout", "value": SWAP_LOCK_TIMEOUT})
            for table in referenced:
                ddl(conn, "LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE", table)
            conn.execute(text("LOCK TABLE facility IN ACCESS EXCLUSIVE MODE"))
            conn.execute(_SET_LOCAL, {"name": "lock_timeout", "value": before})
            savepoint.commit()
            return
        except OperationalError as exc:
            savepoint.rollback()
            if "lock timeout" not in str(exc) or attempt == SWAP_ATTEMPTS - 1:
                raise
            time.sleep(0.2)
