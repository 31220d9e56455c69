"""manage.py bench_import: the harness is benchmarks/imports.py."""

from benchmarks.imports import Command

__all__ = ["Command"]
