"""Benchmarks and evaluation tooling (not part of the installed package)."""
