"""Small database helpers shared by the apps: model constraints, lookups, prepared SQL."""

from __future__ import annotations

import datetime
import time
import weakref

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Q
from django.utils.connection import ConnectionProxy
from psycopg.pq import Format

# psycopg's own timestamptz loader: in C with psycopg[binary]. Django registers a Python
# subclass of the pure-Python loader on every connection (to set its time zone), and on the
# rating path its parsing cost more than the rest of the row's decoding together.
_C_TZ_LOADER = psycopg.adapters.get_loader(psycopg.adapters.types["timestamptz"].oid, Format.TEXT)


def in_choices(field: str, choices: type[models.TextChoices]) -> Q:
    """A check-constraint condition: `field` holds one of the enum's values."""
    return Q(**{f"{field}__in": choices.values})


class AnyOf(models.Lookup):
    """`field__any_of=[...]`: membership in a list bound as ONE array parameter on PostgreSQL.

    `__in` binds one parameter per element: for the importer's 1,000-key lookups Django's
    per-element processing and PostgreSQL's parsing of the long list cost more than the
    lookup itself. Elsewhere it falls back to an ordinary IN list.
    """

    lookup_name = "any_of"
    prepare_rhs = False

    def get_db_prep_lookup(self, value, connection):
        return "%s", [list(value)]

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s)", [*lhs_params, values]
        if not values:
            return "1 = 0", list(lhs_params)
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


models.Field.register_lookup(AnyOf)
models.ForeignObject.register_lookup(AnyOf)  # foreign keys resolve lookups on their own class


class _Shared:
    """The psycopg cursor shared by the PreparedCursors of one Django connection, and whether
    one of them is using it now."""

    __slots__ = ("cursor", "busy")

    def __init__(self):
        self.cursor = None
        self.busy = False


# Django connection (one per thread and alias) -> its shared cursor; an entry goes with its
# connection. Keyed by Django's wrapper, not the raw psycopg connection: the cursor refers to
# its raw connection, so an entry keyed by that would keep every closed connection alive.
_SHARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _new_cursor(connection):
    cursor = psycopg.Cursor(connection.connection)
    if connection.timezone is datetime.UTC:
        # USE_TZ with the session in UTC (Django's default): psycopg's loader gives the same
        # aware datetimes, in timezone.utc, as Django's.
        cursor.adapters.register_loader("timestamptz", _C_TZ_LOADER)
    return cursor


class PreparedCursor:
    """Runs raw SQL on Django's PostgreSQL connection as prepared statements.

    The rating hot path's statements take PostgreSQL longer to plan than to run (planning
    0.5-1 ms, execution 0.1 ms for most). Prepared once per connection (psycopg keeps them,
    keyed by text and parameter types), they are only executed afterwards. Django itself binds
    parameters on the client and never prepares (so that transaction-pooling proxies work);
    behind PgBouncer this needs version 1.21 or later with `max_prepared_statements` set.

    Parameters are bound on the server, so SQL that PostgreSQL cannot type from context needs
    casts (`%(ids)s::bigint[]`). Statements take part in Django's transaction (same
    connection), raise Django's database exceptions, and are logged like Django's own when
    query logging is on (tests counting queries see them).

    One psycopg cursor per connection serves every PreparedCursor that is not nested in
    another (a nested one gets a cursor of its own): a new cursor starts with empty caches of
    its loaders and dumpers and builds them again. With a new cursor per statement, and the
    connection proxy resolved on every attribute read, a short prepared SELECT cost the client
    110 µs of CPU; with the kept cursor, 65 µs. A rating cycle (Next and Submit, seven
    statements) took 7 % fewer instructions (callgrind: 10.3-10.5 -> 9.6-9.8 million). In
    server CPU per rating cycle the difference is within the noise (2026-12-04, 2-core VM,
    `bench_rating --raters 4 --seconds 15 --rate 80` on PostgreSQL, three runs each, web + db):
    shared cursor kept here 8.8 / 8.6 / 9.7 ms, kept on Django's connection object as before
    9.3 / 9.0 / 9.2 ms, a new cursor per PreparedCursor 8.5 / 8.3 / 10.0 ms. The shared cursor
    is kept in a module-level table (_SHARED), not on Django's private attributes.
    """

    __slots__ = ("_django", "_cursor", "_state")

    def __init__(self, connection):
        # django.db.connection is a proxy that looks the thread's connection up on every
        # attribute read: resolved once here.
        if isinstance(connection, ConnectionProxy):
            connection = connections[DEFAULT_DB_ALIAS]  # the only proxy: django.db.connection
        self._django = connection
        connection.ensure_connection()
        # Connections are per thread, so only nesting can find the shared cursor in use.
        state = _SHARED.get(connection)
        if state is None:
            state = _SHARED[connection] = _Shared()
        if state.busy:  # nested: a cursor of its own, closed on exit
            self._state, self._cursor = None, _new_cursor(connection)
            return
        cursor = state.cursor
        if cursor is None or cursor.closed or cursor.connection is not connection.connection:
            cursor = state.cursor = _new_cursor(connection)
        state.busy = True
        self._state, self._cursor = state, cursor

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._state is not None:
            self._state.busy = False
        else:
            self._cursor.close()

    def execute(self, sql: str, params=None) -> PreparedCursor:
        django = self._django
        start = time.monotonic() if django.queries_logged else None
        with django.wrap_database_errors:
            self._cursor.execute(sql, params, prepare=True)
        if start is not None:
            django.queries_log.append(
                {"sql": f"[prepared] {sql}", "time": f"{time.monotonic() - start:.3f}"}
            )
        return self

    def fetchone(self):
        with self._django.wrap_database_errors:
            return self._cursor.fetchone()

    def fetchall(self):
        with self._django.wrap_database_errors:
            return self._cursor.fetchall()


def as_saved(instance: models.Model) -> models.Model:
    """`instance`, built with Model(...) from a row read by raw SQL, marked as a saved row of
    the default database (as Model.from_db marks what it builds)."""
    instance._state.adding = False
    instance._state.db = DEFAULT_DB_ALIAS
    return instance


def json_rows(columns: tuple[str, ...], source: str, *, order: str = "", vendor: str) -> str:
    """A scalar subquery: `columns` of the rows of `source` ("table alias WHERE ...") as a JSON
    array of arrays, in `order`; NULL (PostgreSQL) or [] (SQLite) when there are none.

    PostgreSQL aggregates in order; SQLite's json_group_array takes the rows in the order a
    subquery gives them, so there the columns are named and selected in order first.
    """
    order_by = f" ORDER BY {order}" if order else ""
    if vendor == "postgresql":
        return f"(SELECT json_agg(json_build_array({', '.join(columns)}){order_by}) FROM {source})"
    named = ", ".join(f"{column} AS c{i}" for i, column in enumerate(columns))
    cells = ", ".join(f"c{i}" for i in range(len(columns)))
    return (
        f"(SELECT json_group_array(json_array({cells}))"
        f" FROM (SELECT {named} FROM {source}{order_by}))"
    )


def raw_value(model: type[models.Model], field: str, value):
    """A column of `model.field` read by raw SQL, as the ORM would give it. psycopg already
    returns PostgreSQL's values typed; SQLite returns datetimes naive or as text and UUIDs as
    hex, which the backend's converters turn into what the ORM returns."""
    connection = connections[DEFAULT_DB_ALIAS]
    if value is None or connection.vendor == "postgresql":
        return value
    column = model._meta.get_field(field).get_col(model._meta.db_table)
    converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    for convert in converters:
        value = convert(value, column, connection)
    return value


def statement_cursor(connection):
    """A cursor for the rating path's raw statements: on PostgreSQL a PreparedCursor (each
    statement planned once per connection), elsewhere Django's own."""
    return PreparedCursor(connection) if connection.vendor == "postgresql" else connection.cursor()
