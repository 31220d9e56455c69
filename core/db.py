"""Small database helpers shared by the apps: model constraints, lookups, prepared SQL."""

from __future__ import annotations

import time

import psycopg
from django.db import models
from django.db.models import Q


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
    """

    def __init__(self, connection):
        self._django = connection
        connection.ensure_connection()
        self._cursor = psycopg.Cursor(connection.connection)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
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
