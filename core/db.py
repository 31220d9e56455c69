"""Small database helpers shared by the apps' models."""

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
