"""manage.py bench_rating: the harness is benchmarks/rating.py."""

from benchmarks.rating import Command

__all__ = ["Command"]
