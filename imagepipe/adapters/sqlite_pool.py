"""A bounded pool of connections to one SQLite file: the base of the SQLite record and label set stores.

Every operation borrows a connection and gives it back, so the number of open files stays fixed however many
threads call a store (the devhost runs each activity on a thread of its own). Connections run in WAL mode
with a 30 s busy timeout; ``_tx`` wraps one in ``BEGIN IMMEDIATE`` … ``COMMIT`` for writes that must
serialize, while plain reads borrow one with ``_connection`` and take no write lock. ``close()`` closes every
pooled connection; one lent out closes when it comes back.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class PooledSqlite:
    """Up to ``max_connections`` connections to ``path`` (created on first use, parent folders included)."""

    #: what the store is called in errors
    kind = "SQLite store"

    def __init__(self, path: str, *, max_connections: int) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.path = path
        self.max_connections = max_connections
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._idle: list[sqlite3.Connection] = []
        self._open = 0
        self._closed = False
        self._available = threading.Condition(threading.Lock())

    def _setup_connection(self, conn: sqlite3.Connection) -> None:
        """Per-connection set-up beyond the pragmas (functions, say); nothing by default."""

    @property
    def open_connections(self) -> int:
        """Connections open right now (idle in the pool or lent out)."""
        with self._available:
            return self._open

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a pooled connection for one operation; it goes back to the pool afterwards."""
        conn = self._acquire()
        try:
            yield conn
        finally:
            self._release(conn)

    def _acquire(self) -> sqlite3.Connection:
        with self._available:
            while True:
                if self._closed:
                    raise RuntimeError(f"{self.kind} {self.path} is closed")
                if self._idle:
                    return self._idle.pop()
                if self._open < self.max_connections:
                    self._open += 1
                    break
                self._available.wait()
        try:
            return self._new_connection()
        except BaseException:
            with self._available:
                self._open -= 1
                self._available.notify()
            raise

    def _release(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # an exception between BEGIN and COMMIT/ROLLBACK: never lend it out like that
            conn.execute("ROLLBACK")
        with self._available:
            if not self._closed:
                self._idle.append(conn)
                self._available.notify()
                return
            self._open -= 1
        conn.close()

    def _new_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        self._setup_connection(conn)
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error)."""
        with self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close every pooled connection; connections lent out close when they come back."""
        with self._available:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._available.notify_all()
        for conn in idle:
            conn.close()
