"""Benchmarks (``make bench`` / ``python -m bench``); results are JSON files under ``bench/results/``."""
