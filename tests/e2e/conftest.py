"""Fixtures of the e2e tier: the app on a devhost with its own Azurite (``tests/support/stack.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.stack import Stack, start_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    state = tmp_path_factory.mktemp("stack")
    running = start_stack(state)
    try:
        yield running
    finally:
        running.stop()
