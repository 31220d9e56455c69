"""Small database helpers shared by the apps' models."""

from django.db import models
from django.db.models import Q


def in_choices(field: str, choices: type[models.TextChoices]) -> Q:
    """A check-constraint condition: `field` holds one of the enum's values."""
    return Q(**{f"{field}__in": choices.values})
