"""``python -m bench [analyzer|pipeline|queries|soak|all]``: run one benchmark or all of them (the default); each writes
its JSON under bench/results/. Options after the name go to that benchmark (e.g. ``pipeline --images 20``)."""

from __future__ import annotations

import sys
from collections.abc import Callable

BENCHMARKS = ("analyzer", "pipeline", "queries", "soak")


def _entry(name: str) -> Callable[[list[str] | None], int]:
    if name == "analyzer":
        from bench.bench_analyzer import main as analyzer

        return analyzer
    if name == "pipeline":
        from bench.bench_pipeline import main as pipeline

        return pipeline
    if name == "soak":
        from bench.bench_soak import main as soak

        return soak
    from bench.bench_queries import main as queries

    return queries


def main(argv: list[str]) -> int:
    name = argv[0] if argv and not argv[0].startswith("-") else "all"
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    if name not in (*BENCHMARKS, "all"):
        print(f"usage: python -m bench [{'|'.join(BENCHMARKS)}|all] [options]", file=sys.stderr)
        return 2
    if name == "all":
        if rest:
            print("options need a benchmark name", file=sys.stderr)
            return 2
        failed = 0
        for each in BENCHMARKS:
            print(f"== {each}", flush=True)
            failed |= _entry(each)([])
        return failed
    return _entry(name)(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
