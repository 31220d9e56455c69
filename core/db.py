"""Small database helpers shared by the apps: model constraints, lookups, prepared SQL."""

from __future__ import annotations

import datetime
import time
from functools import cache

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import Q
from django.db.models.base import ModelState
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
    statements) took 7 % fewer instructions (callgrind: 10.3-10.5 -> 9.6-9.8 million).
    """

    __slots__ = ("_django", "_cursor", "_shared")

    def __init__(self, connection):
        # django.db.connection is a proxy that looks the thread's connection up on every
        # attribute read: resolved once here.
        if isinstance(connection, ConnectionProxy):
            connection = connections[connection._alias]
        self._django = connection
        connection.ensure_connection()
        raw = connection.connection
        # Connections are per thread, so only nesting can find the shared cursor in use.
        self._shared = not getattr(connection, "_altpref_prepared_busy", False)
        cursor = getattr(connection, "_altpref_prepared", None) if self._shared else None
        if cursor is None or cursor.connection is not raw or cursor.closed:
            cursor = psycopg.Cursor(raw)
            if connection.timezone is datetime.UTC:
                # USE_TZ with the session in UTC (Django's default): psycopg's loader gives
                # the same aware datetimes, in timezone.utc, as Django's.
                cursor.adapters.register_loader("timestamptz", _C_TZ_LOADER)
            if self._shared:
                connection._altpref_prepared = cursor
        if self._shared:
            connection._altpref_prepared_busy = True
        self._cursor = cursor

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._shared:
            self._django._altpref_prepared_busy = False
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


def model_row(model: type[models.Model], /, *, _adding: bool = False, **values):
    """An instance of `model` for a row read by raw SQL (or, with `_adding`, a new unsaved
    row), built without Model.__init__.

    The rating pages build a dozen instances per request from one row; __init__ (keyword
    handling, related-object checks, the pre/post_init signals) took 5-15 µs each there, this
    2-3 µs. It sets what __init__ would: every concrete field (its default when not given),
    related objects given by name cached as select_related caches them, and the state of a
    saved row (or of a new one). No init signals are sent, so only for models without
    receivers."""
    plain, factories, relations = _model_row_fields(model)
    obj = model.__new__(model)
    state = obj._state = ModelState()
    if not _adding:
        state.adding = False
        state.db = DEFAULT_DB_ALIAS
    fields = obj.__dict__
    fields.update(plain)
    for attname, factory in factories:
        if attname not in values:
            fields[attname] = factory()
    for name, value in values.items():
        attname = relations.get(name)
        if attname is None:
            fields[name] = value
        else:
            state.fields_cache[name] = value
            fields[attname] = None if value is None else value.pk
    return obj


@cache
def _model_row_fields(model):
    """(field defaults, callable defaults, forward relation name -> attname) of `model`."""
    plain, factories, relations = {}, [], {}
    for field in model._meta.concrete_fields:
        if field.has_default() and callable(field.default):
            factories.append((field.attname, field.default))
        else:
            plain[field.attname] = field.get_default()
        if field.is_relation:
            relations[field.name] = field.attname
    return plain, tuple(factories), relations
