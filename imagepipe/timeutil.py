"""Time, defined once: UTC instants parsed from and written as ISO-8601 with milliseconds and ``Z``.

Records, run facts, operator views and the orchestrator (which passes ``context.current_utc_datetime``) all
write ``2026-01-02T03:04:05.678Z``: string order equals instant order (Cosmos DB compares timestamps as
strings). Parsing accepts any fraction length and any offset, or a ``datetime``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, overload

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from an ISO string (any fraction length, ``Z`` or offset) or datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    text = _FRACTION.sub(r"\1", str(value).strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: None) -> None: ...
@overload
def iso(value: datetime | None) -> str | None: ...
def iso(value: datetime | None) -> str | None:
    """``2026-01-02T03:04:05.678Z`` (milliseconds, UTC; a naive datetime counts as UTC) or None."""
    if value is None:
        return None
    utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def utc_now() -> str:
    """The current instant as ``iso`` writes it."""
    return iso(datetime.now(UTC))


def millis_between(start: datetime | None, end: datetime | None) -> int | None:
    """Whole milliseconds from ``start`` to ``end`` (rounded), or None when either is unknown."""
    if start is None or end is None:
        return None
    return int(round((end - start).total_seconds() * 1000))
