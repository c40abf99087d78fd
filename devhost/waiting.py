"""Waiting for a condition instead of sleeping a fixed time.

``eventually(predicate, timeout)`` polls ``predicate`` until it is true or ``timeout`` seconds have
passed. It is the one polling helper of the repository: the devhost launcher (``devhost.process``),
``make run`` and the tests (through ``tests/support/waiting.py``) all wait with it. An exception the
predicate raises ends the wait at once (a process that exited will never become ready).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def eventually(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """True as soon as ``predicate()`` is true; False if it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
