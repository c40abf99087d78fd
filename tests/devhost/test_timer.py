"""Timer triggers and the NCRONTAB parser."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devhost import ncrontab
from tests.devhost.harness import Devhost


@pytest.mark.unit
@pytest.mark.parametrize(("expr", "start", "expected"), [
    ("0 */10 * * * *", "2026-01-01T00:03:00", "2026-01-01T00:10:00"),
    ("*/15 * * * * *", "2026-01-01T00:00:14", "2026-01-01T00:00:15"),
    ("0 30 9 * * Mon-Fri", "2026-01-02T09:30:00", "2026-01-05T09:30:00"),  # Fri → Mon
    ("0 0 0 1 Jan,Jul *", "2026-02-01T00:00:00", "2026-07-01T00:00:00"),
    ("5,10 0-2/2 * * * *", "2026-01-01T00:00:10", "2026-01-01T00:02:05"),
    ("0 0 12 * * 0", "2026-01-01T00:00:00", "2026-01-04T12:00:00"),  # Sunday
    ("0 0 12 * * 7", "2026-01-01T00:00:00", "2026-01-04T12:00:00"),  # 7 is Sunday too
])
def test_next_occurrence(expr: str, start: str, expected: str) -> None:
    s = ncrontab.parse(expr)
    got = s.next_after(datetime.fromisoformat(start).replace(tzinfo=UTC))
    assert got == datetime.fromisoformat(expected).replace(tzinfo=UTC)


@pytest.mark.unit
@pytest.mark.parametrize("bad", ["* * * *", "61 * * * * *", "*/0 * * * * *", "a b c d e f"])
def test_bad_expressions(bad: str) -> None:
    with pytest.raises(ValueError):
        ncrontab.parse(bad)


@pytest.mark.devhost
def test_timer_trigger_fires(durable_host: Devhost, counter_db: Path) -> None:
    deadline = time.monotonic() + 20
    count = 0
    while time.monotonic() < deadline:
        with sqlite3.connect(str(counter_db)) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS runs(key TEXT, ts REAL)")
            count = conn.execute("SELECT COUNT(*) FROM runs WHERE key='timer'").fetchone()[0]
        if count >= 3:
            break
        time.sleep(0.2)
    assert count >= 3
