"""Benchmarks run by `make bench`: they measure and report into docs/benchmarks.md and never assert."""
