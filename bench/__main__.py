"""``python -m bench``: run the benchmarks and write their JSON under bench/results/."""

from __future__ import annotations

import sys

from bench.bench_analyzer import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
