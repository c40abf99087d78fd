"""Durable entities, the task-hub half: entity records and the per-entity operation queue in SQLite.

Every function takes the open connection of the caller's transaction, so an orchestration episode writes
its ``EventSent`` and enqueues the request atomically, and a finished batch removes its operations, writes
the entity's new state, enqueues the signals it sent and delivers the answers to its callers in one
transaction (``commit_batch``): a crash either repeats the batch or sees it whole.

Ordering, as the extension guarantees it: the queue is one sequence for all entities, and a batch takes the
oldest operations of one entity, so each entity processes its operations one at a time in arrival order
(FIFO per sender follows). That only one batch per entity runs at a time is the worker's job (it owns the
in-memory claim; a claim does not survive a restart, so an interrupted batch runs again — at least once,
as on Azure).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from devhost.entities import (
    MAX_BATCH,
    BatchEffects,
    CallResponse,
    EntityId,
    EntityProtocolError,
    EntityRecord,
    EntityRequest,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities(
  scheduler_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  key TEXT NOT NULL,
  state TEXT,
  last_operation_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entities_name ON entities(name, scheduler_id);
CREATE TABLE IF NOT EXISTS entity_queue(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  scheduler_id TEXT NOT NULL,
  request TEXT NOT NULL,
  enqueued_ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entity_queue_target ON entity_queue(scheduler_id, seq);
"""

#: Delivers one call's answer to its orchestration inside the batch's transaction (the engine's inbox).
Deliver = Callable[[sqlite3.Connection, CallResponse], None]


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the entity tables if they do not exist (statement by statement: ``executescript`` would commit
    the caller's transaction)."""
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)


def enqueue(conn: sqlite3.Connection, target: EntityId, request: EntityRequest, now: float) -> int:
    """Queue one operation for ``target``; returns its queue position."""
    cur = conn.execute(
        "INSERT INTO entity_queue(scheduler_id, request, enqueued_ts) VALUES(?, ?, ?)",
        (target.scheduler_id, json.dumps(request.to_message()), now),
    )
    return int(cur.lastrowid or 0)


def read(conn: sqlite3.Connection, entity: EntityId) -> EntityRecord:
    """The entity's record (a never-used or deleted entity does not exist)."""
    row = conn.execute("SELECT state FROM entities WHERE scheduler_id=?", (entity.scheduler_id,)).fetchone()
    return EntityRecord(False, None) if row is None else EntityRecord(True, row[0])


def ready(conn: sqlite3.Connection, busy: Iterable[str], limit: int) -> list[EntityId]:
    """Up to ``limit`` entities with queued operations and no batch running, oldest waiting first."""
    skip = set(busy)
    out: list[EntityId] = []
    for (sid,) in conn.execute(
        "SELECT scheduler_id FROM entity_queue GROUP BY scheduler_id ORDER BY MIN(seq) LIMIT ?", (limit + len(skip),)
    ):
        if sid in skip:
            continue
        try:
            out.append(EntityId.parse(sid))
        except EntityProtocolError:
            conn.execute("DELETE FROM entity_queue WHERE scheduler_id=?", (sid,))  # written by nothing we know
        if len(out) >= limit:
            break
    return out


@dataclass(frozen=True)
class QueuedBatch:
    """The oldest operations of one entity, with their queue positions."""

    entity: EntityId
    seqs: tuple[int, ...]
    requests: tuple[EntityRequest, ...]


def next_batch(conn: sqlite3.Connection, entity: EntityId, limit: int = MAX_BATCH) -> QueuedBatch:
    """The next batch of ``entity`` in arrival order (unreadable rows are dropped)."""
    seqs: list[int] = []
    requests: list[EntityRequest] = []
    for seq, text in conn.execute(
        "SELECT seq, request FROM entity_queue WHERE scheduler_id=? ORDER BY seq LIMIT ?",
        (entity.scheduler_id, limit),
    ):
        try:
            requests.append(EntityRequest.from_message(json.loads(text)))
        except (ValueError, EntityProtocolError):
            conn.execute("DELETE FROM entity_queue WHERE seq=?", (seq,))
            continue
        seqs.append(int(seq))
    return QueuedBatch(entity, tuple(seqs), tuple(requests))


def commit_batch(
    conn: sqlite3.Connection,
    batch: QueuedBatch,
    effects: BatchEffects,
    now: float,
    deliver: Deliver,
) -> None:
    """Apply a finished batch: dequeue it, store the entity, queue its signals, answer its calls."""
    conn.executemany("DELETE FROM entity_queue WHERE seq=?", [(s,) for s in batch.seqs])
    sid = batch.entity.scheduler_id
    if effects.record.exists:
        conn.execute(
            "INSERT INTO entities(scheduler_id, name, key, state, last_operation_ts) VALUES(?, ?, ?, ?, ?) "
            "ON CONFLICT(scheduler_id) DO UPDATE SET state=excluded.state, "
            "last_operation_ts=excluded.last_operation_ts",
            (sid, batch.entity.name, batch.entity.key, effects.record.state, now),
        )
    else:
        conn.execute("DELETE FROM entities WHERE scheduler_id=?", (sid,))
    for target, request in effects.signals:
        enqueue(conn, target, request, now)
    for response in effects.responses:
        deliver(conn, response)


@dataclass(frozen=True)
class EntityListing:
    """One entity as the management API lists it."""

    entity: EntityId
    last_operation_ts: float
    state: str | None


def list_entities(
    conn: sqlite3.Connection, name: str, after: str | None, top: int
) -> tuple[list[EntityListing], str | None]:
    """Existing entities of function ``name`` (lowercased), ordered by id, after the continuation ``after``;
    returns the page and the token of the next page (None when this one is the last)."""
    rows = conn.execute(
        "SELECT scheduler_id, last_operation_ts, state FROM entities WHERE name=? AND scheduler_id>? "
        "ORDER BY scheduler_id LIMIT ?",
        (name.lower(), after or "", top + 1),
    ).fetchall()
    page = [EntityListing(EntityId.parse(r[0]), float(r[1]), r[2]) for r in rows[:top]]
    token = page[-1].entity.scheduler_id if len(rows) > top and page else None
    return page, token


def purge(conn: sqlite3.Connection, entity: EntityId) -> int:
    """Remove the entity's record (its queued operations stay and will run); returns 1 if it existed."""
    return int(conn.execute("DELETE FROM entities WHERE scheduler_id=?", (entity.scheduler_id,)).rowcount)
