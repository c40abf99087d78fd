"""Calling user functions: keyword arguments by binding name, a ``func.Context``, execution logs.

Every execution writes one JSON line to stderr:
``{"ts", "function", "invocationId", "instanceId"?, "durationMs", "outcome": "Succeeded|Failed", "error"?}``.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from devhost.app_loader import FunctionInfo

_log_lock = threading.Lock()


class InvocationContext:
    """Minimal stand-in for ``azure.functions.Context``."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self.invocation_id = invocation_id
        self.function_name = function_name
        self.function_directory = function_directory
        self.trace_context = None
        self.retry_context = None
        self.thread_local_storage = threading.local()


def log_execution(
    function: str,
    invocation_id: str,
    started: float,
    error: BaseException | str | None,
    instance_id: str | None = None,
    cpu_started: float | None = None,
    **extra: Any,
) -> None:
    """Write the one-line JSON record of a function execution to stderr; with ``cpu_started`` (the running
    thread's ``time.thread_time()`` when the call began) it also carries ``cpuMs``, the CPU the call used on
    that thread (ONNX Runtime's work included when it runs on the calling thread, as it does here)."""
    rec: dict[str, Any] = {
        "ts": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "function": function,
        "invocationId": invocation_id,
    }
    if instance_id is not None:
        rec["instanceId"] = instance_id
    rec["durationMs"] = round((time.monotonic() - started) * 1000, 2)
    if cpu_started is not None:
        rec["cpuMs"] = round((time.thread_time() - cpu_started) * 1000, 2)
    rec["outcome"] = "Succeeded" if error is None else "Failed"
    if error is not None:
        rec["error"] = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    rec.update(extra)
    line = json.dumps(rec, default=str)
    with _log_lock:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def build_kwargs(
    info: FunctionInfo, trigger_value: Any, invocation_id: str, app_dir: str, client_binding: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for a function call: trigger, durable client, context."""
    kwargs: dict[str, Any] = {info.trigger.name: trigger_value}
    if info.client_binding_name is not None:
        kwargs[info.client_binding_name] = client_binding
    if info.wants_context:
        kwargs["context"] = InvocationContext(invocation_id, info.name, app_dir)
    return kwargs


def new_invocation_id() -> str:
    """A fresh invocation id (a random version-4 UUID; not a secret, so drawn without a system call, which would
    let go of the GIL once more per activity)."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def call_sync(info: FunctionInfo, kwargs: dict[str, Any]) -> Any:
    """Call a function from a worker thread (coroutines get their own event loop)."""
    if info.is_async:
        return asyncio.run(info.callable(**kwargs))
    return info.callable(**kwargs)


class FunctionTimeoutError(Exception):
    """The function ran longer than host.json ``functionTimeout``."""


async def call_async(info: FunctionInfo, kwargs: dict[str, Any], timeout: float | None = None) -> Any:
    """Call a function from the server's event loop: await coroutines, run sync code in a thread.

    With ``timeout`` the call is abandoned after that many seconds (a coroutine is cancelled; a
    thread cannot be, it finishes in the background) and ``FunctionTimeoutError`` is raised.
    """
    if info.is_async:
        coro = info.callable(**kwargs)
    else:
        coro = asyncio.to_thread(info.callable, **kwargs)
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError as exc:
        raise FunctionTimeoutError(
            f"Timeout value of {timeout}s was exceeded by function: Functions.{info.name}"
        ) from exc
