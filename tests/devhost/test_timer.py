"""Timer triggers and the NCRONTAB parser."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devhost import ncrontab
from tests.devhost.harness import Devhost
from tests.support.waiting import eventually


@pytest.mark.unit
@pytest.mark.parametrize(
    ("expr", "start", "expected"),
    [
        ("0 */10 * * * *", "2026-01-01T00:03:00", "2026-01-01T00:10:00"),
        ("*/15 * * * * *", "2026-01-01T00:00:14", "2026-01-01T00:00:15"),
        ("0 30 9 * * Mon-Fri", "2026-01-02T09:30:00", "2026-01-05T09:30:00"),  # Fri → Mon
        ("0 0 0 1 Jan,Jul *", "2026-02-01T00:00:00", "2026-07-01T00:00:00"),
        ("5,10 0-2/2 * * * *", "2026-01-01T00:00:10", "2026-01-01T00:02:05"),
        ("0 0 12 * * 0", "2026-01-01T00:00:00", "2026-01-04T12:00:00"),  # Sunday
        ("0 0 12 * * 7", "2026-01-01T00:00:00", "2026-01-04T12:00:00"),  # 7 is Sunday too
    ],
)
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
    def calls() -> int:
        with sqlite3.connect(str(counter_db)) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS runs(key TEXT, ts REAL)")
            return int(conn.execute("SELECT COUNT(*) FROM runs WHERE key='timer'").fetchone()[0])

    assert eventually(lambda: calls() >= 3, timeout=20), calls()


@pytest.mark.devhost
def test_missed_occurrence_fires_once_past_due_and_manual_run(tmp_path: Path) -> None:
    import requests

    from tests.devhost.harness import APPS

    out = tmp_path / "calls.jsonl"
    state = tmp_path / "state"
    env = {"DEVHOST_TEST_OUT": str(out)}
    host = Devhost(APPS / "timer_app", state, env=env).start()
    assert requests.post(host.base + "/admin/functions/yearly", json={"input": ""}, timeout=10).status_code == 202
    host.stop()
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"past_due": False}]
    with sqlite3.connect(str(state / "taskhub.sqlite3")) as conn:  # pretend the last run was 400 days ago
        conn.execute(
            "INSERT OR REPLACE INTO kv(key, value) VALUES('timer:yearly:last', ?)", (str(time.time() - 400 * 86400),)
        )
    host = Devhost(APPS / "timer_app", state, env=env).start()
    try:
        eventually(lambda: len(out.read_text().splitlines()) >= 2, timeout=20, interval=0.1)
    finally:
        host.stop()
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"past_due": False}, {"past_due": True}]
