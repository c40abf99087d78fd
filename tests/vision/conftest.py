"""Fixtures of the local-analyzer tests: one ``LocalAnalyzer`` per session (models load once) and the
sample images. The models must have been prepared (``make models``); without them the tests fail with
that instruction rather than skip."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from imagepipe.ports import EXTRA_FEATURES, AnalysisRequest
from imagepipe.vision import LocalAnalyzer
from imagepipe.vision.runtime import DEFAULT_MODEL_DIR
from tests.support.images import SAMPLES

ALL = AnalysisRequest(features=("tags", "objects", "people", "read"), extras=EXTRA_FEATURES)


@pytest.fixture(scope="session")
def analyzer() -> LocalAnalyzer:
    if not (DEFAULT_MODEL_DIR / ".ready").is_file():
        pytest.fail(
            f"{DEFAULT_MODEL_DIR}/.ready is missing: run `make models` "
            "(python -m imagepipe.vision.prepare) before the vision tests"
        )
    return LocalAnalyzer()


@pytest.fixture(scope="session")
def sample_bytes() -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        return (SAMPLES / name).read_bytes()

    return read


@pytest.fixture(scope="session")
def analyzed(analyzer: LocalAnalyzer) -> Callable[[str], dict[str, object]]:
    """Full analysis of a sample, cached per name for the session."""
    cache: dict[str, dict[str, object]] = {}

    def run(name: str) -> dict[str, object]:
        if name not in cache:
            cache[name] = analyzer.analyze((SAMPLES / name).read_bytes(), ALL)
        return cache[name]

    return run
