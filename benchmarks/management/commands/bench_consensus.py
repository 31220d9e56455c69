"""manage.py bench_consensus: the harness is benchmarks/consensus.py."""

from benchmarks.consensus import Command

__all__ = ["Command"]
