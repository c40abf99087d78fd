"""The devhost as the tests run it: ``Devhost`` (the product's ``DevhostProcess`` with the test tier's
defaults and key helpers), a background event loop for the SDK's client, and ``wait_status``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

import requests

from devhost.process import REPO_ROOT, DevhostProcess, free_port
from tests.support.waiting import eventually

ROOT = REPO_ROOT

__all__ = ["ROOT", "Devhost", "Loop", "free_port", "wait_status"]


class Devhost(DevhostProcess):
    """One devhost subprocess; by default without storage and without key checks."""

    def __init__(
        self,
        app: Path,
        state: Path,
        env: Mapping[str, str] | None = None,
        no_auth: bool = True,
        storage: str = "none",
        port: int | None = None,
    ) -> None:
        super().__init__(app, state, port=port, env=env, storage=storage, no_auth=no_auth)

    def keys(self) -> dict[str, Any]:
        """The persisted keys file."""
        data: dict[str, Any] = json.loads((self.state / "keys.json").read_text())
        return data

    def binding(self) -> str:
        """The durable client binding JSON for this host."""
        headers = {} if self.no_auth else {"x-functions-key": self.keys()["masterKey"]}
        r = requests.get(self.base + "/admin/durabletask/binding", headers=headers, timeout=10)
        r.raise_for_status()
        return r.text


class Loop:
    """One background event loop for the SDK client (its aiohttp session is loop-bound)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
        """Run a coroutine on the loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Close the SDK's shared HTTP session, then stop the loop."""
        from azure.durable_functions.models.utils import http_utils

        self.run(http_utils._close_session())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def wait_status(
    loop: Loop,
    client: Any,
    instance_id: str,
    statuses: tuple[str, ...] = ("Completed", "Failed", "Terminated"),
    timeout: float = 60,
    **kw: Any,
) -> Any:
    """Poll ``client.get_status`` until the runtime status is one of ``statuses``; return that status."""
    last: list[Any] = [None]

    def reached() -> bool:
        last[0] = status = loop.run(client.get_status(instance_id, **kw))
        return bool(status and status.runtime_status is not None and status.runtime_status.value in statuses)

    assert eventually(reached, timeout, interval=0.1), (
        f"{instance_id} did not reach {statuses}: last {last[0] and last[0].to_json()}"
    )
    return last[0]
