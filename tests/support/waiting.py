"""Waiting for a condition instead of sleeping a fixed time: the tests' one polling helper.

``eventually`` is the product's helper (``devhost.waiting.eventually``, which the devhost launcher and
``make run`` use too), so there is one polling loop: ``assert eventually(lambda: ..., timeout=30), details()``.
``eventually_value`` is the same wait for a reading whose value the test needs afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from devhost.waiting import eventually

__all__ = ["eventually", "eventually_value"]

T = TypeVar("T")


def eventually_value(read: Callable[[], T], timeout: float, interval: float = 0.2, what: str = "") -> T:
    """The first truthy value ``read()`` returns within ``timeout`` seconds; AssertionError with the last one."""
    last: list[T] = []

    def truthy() -> bool:
        last[:] = [read()]
        return bool(last[0])

    assert eventually(truthy, timeout, interval), f"{what or 'condition'} not met in {timeout:.0f} s; last: {last!r}"
    return last[0]
