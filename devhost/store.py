"""SQLite (WAL) store for everything devhost must survive a crash with.

One database file under ``--state`` holds the Durable task hub (its tables are ``devhost.taskhub``'s), the
Event Grid emulator's seen blobs and deliveries, and timer-trigger bookkeeping. A single connection is shared
by all threads behind a lock; every state change that must be atomic runs in one ``BEGIN IMMEDIATE``
transaction (``Store.tx``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eg_seen(
  subscription TEXT NOT NULL,
  blob TEXT NOT NULL,
  etag TEXT NOT NULL,
  PRIMARY KEY(subscription, blob)
);
CREATE TABLE IF NOT EXISTS eg_deliveries(
  id TEXT PRIMARY KEY,
  subscription TEXT NOT NULL,
  function TEXT NOT NULL,
  event TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_at REAL NOT NULL,
  first_at REAL NOT NULL,
  state TEXT NOT NULL,
  last_error TEXT,
  dead_lettered_time TEXT,
  max_attempts INTEGER NOT NULL,
  ttl_minutes REAL NOT NULL,
  dead_letter_container TEXT,
  storage_setting TEXT
);
CREATE INDEX IF NOT EXISTS eg_deliveries_next ON eg_deliveries(state, next_at);
"""


class Store:
    """Thread-safe wrapper around one SQLite connection in WAL mode."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """Run the body in one immediate transaction; commit on success, roll back on error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query and return all rows."""
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    def one(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Row | None:
        """Run a read query and return the first row or None."""
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, args).fetchone()
            return row

    def execute(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> int:
        """Run one statement in its own transaction; return the number of changed rows."""
        with self.tx() as conn:
            return conn.execute(sql, args).rowcount

    def get_kv(self, key: str) -> str | None:
        """Read a bookkeeping value."""
        row = self.one("SELECT value FROM kv WHERE key=?", (key,))
        return None if row is None else str(row["value"])

    def set_kv(self, key: str, value: str) -> None:
        """Write a bookkeeping value."""
        self.execute(
            "INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, value)
        )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()
