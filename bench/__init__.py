"""Benchmarks of citas: `python -m bench.run [--quick] [--only family]` (or `make bench`)."""
