"""Fixtures for the devhost conformance suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.devhost.harness import APPS, Devhost, Loop


@pytest.fixture(scope="session")
def loop() -> Iterator[Loop]:
    """A background event loop for the Durable client."""
    lp = Loop()
    yield lp
    lp.close()


@pytest.fixture(scope="session")
def counter_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SQLite file the test app's activities count their executions in."""
    return tmp_path_factory.mktemp("counter") / "counter.sqlite3"


@pytest.fixture(scope="session")
def durable_host(tmp_path_factory: pytest.TempPathFactory, counter_db: Path) -> Iterator[Devhost]:
    """The durable test app on a devhost (no auth, no storage)."""
    state = tmp_path_factory.mktemp("dh") / "state"
    host = Devhost(APPS / "durable_app", state, env={"DEVHOST_TEST_COUNTER_DB": str(counter_db)}).start()
    yield host
    host.stop()


@pytest.fixture(scope="session")
def client(durable_host: Devhost, loop: Loop) -> Any:
    """The SDK's DurableOrchestrationClient bound to the session host."""
    import azure.durable_functions as df

    return df.DurableOrchestrationClient(durable_host.binding())
