"""Benchmarks: each script writes JSON records to benchmarks/results/; report.py prints them."""
