"""Benchmarks of causerie: run each as `python -m bench.NAME` (see bench/README.md)."""
