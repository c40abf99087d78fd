"""``python -m bench [NAME|all] [options]``: run one benchmark or all of them (the default).

Each benchmark is a module with ``main(argv) -> int`` that writes ``bench/results/<NAME>.json``; the rows under
that JSON's ``targets`` key (see ``bench.common.target``) are printed as one table at the end. Options after the
name go to that benchmark (e.g. ``pipeline --images 20``)."""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from bench.common import RESULTS, targets_table

# name -> module; each module writes bench/results/<name>.json.
BENCHMARKS: dict[str, str] = {
    "analyzer": "bench.bench_analyzer",
    "devhost": "bench.bench_devhost",
    "eventgrid": "bench.bench_eventgrid",
    "labels": "bench.bench_labels",
    "fields": "bench.bench_fields",
    "ocr": "bench.bench_ocr",
    "pipeline": "bench.bench_pipeline",
    "queries": "bench.bench_queries",
    "soak": "bench.bench_soak",
    "uploads": "bench.bench_uploads",
}


def _run(name: str, argv: list[str]) -> int:
    module = importlib.import_module(BENCHMARKS[name])
    code: int = module.main(argv)
    return code


def _targets(names: list[str]) -> list[tuple[str, dict[str, Any]]]:
    rows: list[tuple[str, dict[str, Any]]] = []
    for name in names:
        path = RESULTS / f"{name}.json"
        try:
            result = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows.extend((name, row) for row in result.get("targets", []) if isinstance(row, dict))
    return rows


def main(argv: list[str]) -> int:
    name = argv[0] if argv and not argv[0].startswith("-") else "all"
    rest = argv[1:] if argv and not argv[0].startswith("-") else argv
    if name not in (*BENCHMARKS, "all"):
        print(f"usage: python -m bench [{'|'.join(BENCHMARKS)}|all] [options]", file=sys.stderr)
        return 2
    if name == "all" and rest:
        print("options need a benchmark name", file=sys.stderr)
        return 2
    names = list(BENCHMARKS) if name == "all" else [name]
    failed = 0
    for each in names:
        print(f"== {each}", flush=True)
        failed |= _run(each, rest)
    rows = _targets(names)
    if rows:
        print(targets_table(rows))
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
