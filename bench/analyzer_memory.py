"""Issue 11 target 6: the devhost's peak resident memory with every local model loaded.

Starts the devhost (it starts its own Azurite) exactly like the pipeline benchmark, sends every sample image
through the whole pipeline ``--memory-rounds`` times, each with its profile from ``samples/profiles.json``
(general, fashion, insurance, game-telemetry: OCR runs on the text-heavy ones, so every model loads), and
reads the devhost process's ``VmHWM`` after the last run. Azurite is a separate process, not counted.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.bench_pipeline import cycle, end_to_end, load_samples, running_stack, warm_up
from bench.common import peak_rss_mib

TIMEOUT_S = 600.0


def devhost_peak_rss(samples_dir: Path, rounds: int) -> dict[str, Any]:
    """{peakRssMiB, images, completedRuns, profiles} of one devhost run over the samples."""
    samples = load_samples(samples_dir)
    with tempfile.TemporaryDirectory(prefix="imagepipe-bench-mem-") as tmp:
        with running_stack(Path(tmp) / "mem") as (stack, _):
            assert stack.proc is not None
            warm_up(stack, samples[0], TIMEOUT_S)
            run = end_to_end(stack, cycle(samples, rounds * len(samples)), TIMEOUT_S)
            peak = peak_rss_mib(stack.proc.pid)
    return {
        "peakRssMiB": peak,
        "images": run["images"],
        "completedRuns": run["completedRuns"],
        "profiles": sorted({s.profile for s in samples}),
    }
