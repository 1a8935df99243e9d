"""Tests of the bench tooling (``bench/``): its pure parts, not the benchmarks."""
