"""Fixtures of the operator tests: one devhost stack per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.operators.stack import start_ops_stack
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def ops_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("ops")
    running = start_ops_stack(state)
    try:
        yield running
    finally:
        running.stop()
