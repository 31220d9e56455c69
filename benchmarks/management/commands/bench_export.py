"""manage.py bench_export: the harness is benchmarks/export.py."""

from benchmarks.export import Command

__all__ = ["Command"]
