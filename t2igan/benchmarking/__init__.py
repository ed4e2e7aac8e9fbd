"""Benchmarks: plans, the runner, run records, and the report (tables and plots) built from them."""
