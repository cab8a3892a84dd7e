"""Benchmarks (``make bench``, ``make bench-model``): they print numbers, they assert nothing."""
