"""Limit/offset pagination with a ceiling, so no request can ask the database for a slice past
its integer range (or for the whole table at once)."""

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500
