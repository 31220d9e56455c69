"""Benchmarks: the harness behind the `bench_*` management commands (rating, import, export,
consensus), kept out of the app packages. A Django app only so that its commands are found."""
