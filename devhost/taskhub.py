"""The SQLite task hub: every SQL statement of the Durable engine.

Tables (in the devhost's one SQLite file, ``devhost.store.Store``):

* ``instances`` — one row per instance: status, serialized input/output, custom status, parent, version and
  the execution's counters (next task id, actions seen, last episode time, history length).
* ``history`` — the current execution's history, one **append-only** row per event (stored as played).
  An episode reads the rows to hand the SDK its context and appends only its new events.
* ``open_tasks`` — tasks of the current execution that wait for an answer (with a retry in progress).
* ``inbox`` — pending events per instance (``ExecutionStarted``, completions, timers with a future
  ``visible_at``, raised events), written by ``enqueue`` (and its batch form ``enqueue_many``) only. An episode
  deletes the messages it consumed in the same transaction that appends its history and schedules its work.
* ``work_items`` — activity executions to run. An activity's completion is enqueued in the same transaction
  that deletes its work item, so a finished activity is never lost nor re-run.
* ``entities`` — one row per existing durable entity (its state as JSON text); ``entity_queue`` — every
  entity operation not yet run, in arrival order (``seq``), written by ``enqueue_entity`` only. An episode
  queues its calls and signals with its history; a finished batch dequeues its operations, stores the state,
  queues its signals and answers its callers in one transaction (``commit_entity_batch``).

The schema carries ``PRAGMA user_version``; a task hub of an older devhost is refused with one line that says
to delete the state folder (the devhost's state is disposable).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from devhost import entities as ent
from devhost.decisions import Decision, InstanceState, Message, OpenTask, RetryPolicy
from devhost.protocol import (
    STATUS_CODE,
    TERMINAL,
    DurableError,
    Event,
    EventType,
    RuntimeStatus,
    event,
    iso,
    started_event,
)
from devhost.store import Store

HUB_FORMAT = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS instances(
  instance_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  execution_id TEXT NOT NULL,
  status TEXT NOT NULL,
  input TEXT,
  output TEXT,
  custom_status TEXT,
  created_time TEXT NOT NULL,
  created_ts REAL NOT NULL,
  updated_time TEXT NOT NULL,
  parent_instance_id TEXT,
  parent_execution_id TEXT,
  parent_task_id INTEGER,
  version TEXT NOT NULL DEFAULT '',
  next_id INTEGER NOT NULL DEFAULT 0,
  known INTEGER NOT NULL DEFAULT 0,
  last_ts REAL NOT NULL DEFAULT 0,
  history_len INTEGER NOT NULL DEFAULT 0,
  rewind_cache TEXT
);
CREATE INDEX IF NOT EXISTS instances_created ON instances(created_ts);
CREATE TABLE IF NOT EXISTS history(
  instance_id TEXT NOT NULL,
  seq INTEGER NOT NULL,
  event TEXT NOT NULL,
  PRIMARY KEY(instance_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS open_tasks(
  instance_id TEXT NOT NULL,
  task_id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  action_index INTEGER,
  child TEXT,
  retry TEXT,
  PRIMARY KEY(instance_id, task_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox(
  msg_id INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_id TEXT NOT NULL,
  execution_id TEXT,
  visible_at REAL NOT NULL,
  timer_id INTEGER,
  event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_instance ON inbox(instance_id, visible_at);
CREATE INDEX IF NOT EXISTS inbox_visible ON inbox(visible_at);
CREATE TABLE IF NOT EXISTS work_items(
  work_id INTEGER PRIMARY KEY AUTOINCREMENT,
  instance_id TEXT NOT NULL,
  execution_id TEXT NOT NULL,
  task_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  input TEXT
);
CREATE INDEX IF NOT EXISTS work_items_instance ON work_items(instance_id);
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


class HubFormatError(Exception):
    """The state file holds a task hub this devhost cannot read; the command line reports it as one line."""


@dataclass
class InboxMessage:
    """One visible inbox row."""

    msg_id: int
    execution_id: str | None
    event: Event


@dataclass
class ActivityWork:
    """One activity work item as the workers run it."""

    work_id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None


class TaskHub:
    """The Durable tables of one ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        with store.tx() as conn:
            columns = {r["name"] for r in conn.execute("PRAGMA table_info(instances)")}
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if columns and (version != HUB_FORMAT or "state" in columns):
                raise HubFormatError(
                    f"{store.path} holds a task hub of another devhost version (format {version}, this "
                    f"devhost reads {HUB_FORMAT}); delete the state folder {store.path.parent} (or start with another "
                    "--state) and start again"
                )
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={HUB_FORMAT}")

    # ------------------------------------------------------------------ writes shared by every path

    @staticmethod
    def enqueue(conn: sqlite3.Connection, msg: Message) -> None:
        """Put one event in an instance's inbox (with ``enqueue_many``, the only INSERTs into ``inbox``)."""
        conn.execute(
            "INSERT INTO inbox(instance_id, execution_id, visible_at, timer_id, event) VALUES(?,?,?,?,?)",
            (msg.instance_id, msg.execution_id, msg.visible_at, msg.timer_id, json.dumps(msg.event)),
        )

    @staticmethod
    def enqueue_many(conn: sqlite3.Connection, messages: list[Message]) -> None:
        """``enqueue`` for many messages in one statement (in order)."""
        if not messages:
            return
        rows = json.dumps(
            [[m.instance_id, m.execution_id, m.visible_at, m.timer_id, json.dumps(m.event)] for m in messages]
        )
        conn.execute(
            "INSERT INTO inbox(instance_id, execution_id, visible_at, timer_id, event) "
            "SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
            "json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each(?) ORDER BY key",
            (rows,),
        )

    @staticmethod
    def _append(conn: sqlite3.Connection, instance_id: str, start: int, events: Iterable[Event]) -> int:
        """Append events to the history from position ``start``; returns the new length."""
        rows = [(instance_id, start + i, json.dumps(ev | {"IsPlayed": True})) for i, ev in enumerate(events)]
        conn.executemany("INSERT INTO history(instance_id, seq, event) VALUES(?,?,?)", rows)
        return start + len(rows)

    @staticmethod
    def _clear_execution(conn: sqlite3.Connection, instance_id: str) -> None:
        """Forget the current execution's history, open tasks, pending messages and work."""
        for table in ("history", "open_tasks", "inbox", "work_items"):
            conn.execute(f"DELETE FROM {table} WHERE instance_id=?", (instance_id,))

    def delete_instance(self, conn: sqlite3.Connection, instance_id: str) -> None:
        """Remove an instance and everything of it."""
        conn.execute("DELETE FROM instances WHERE instance_id=?", (instance_id,))
        self._clear_execution(conn, instance_id)

    def create_instance(
        self,
        conn: sqlite3.Connection,
        instance_id: str,
        name: str,
        serialized_input: str | None,
        now: float,
        execution_id: str,
        parent: tuple[str, str, int] | None = None,
        version: str = "",
    ) -> None:
        """Create (or replace a finished) instance and enqueue its ``ExecutionStarted``.

        A live instance with that id: 409 for a client; for a parent, a ``SubOrchestrationInstanceFailed``.
        """
        cur = conn.execute("SELECT status FROM instances WHERE instance_id=?", (instance_id,)).fetchone()
        if cur is not None:
            if cur["status"] not in TERMINAL:
                reason = f"An instance with ID '{instance_id}' already exists."
                if parent is None:
                    raise DurableError(409, reason)
                failed = event(
                    EventType.SUB_ORCHESTRATION_INSTANCE_FAILED,
                    now,
                    TaskScheduledId=parent[2],
                    Reason=reason,
                    Details="",
                )
                self.enqueue(conn, Message(parent[0], parent[1], now, failed))
                return
            self.delete_instance(conn, instance_id)
        conn.execute(
            "INSERT INTO instances(instance_id, name, execution_id, status, input, created_time, created_ts, "
            "updated_time, parent_instance_id, parent_execution_id, parent_task_id, version, last_ts) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                instance_id,
                name,
                execution_id,
                RuntimeStatus.Pending.value,
                serialized_input,
                iso(now, False),
                now,
                iso(now, False),
                *(parent or (None, None, None)),
                version,
                0.0,
            ),
        )
        start = started_event(name, instance_id, execution_id, serialized_input, now, parent, version)
        self.enqueue(conn, Message(instance_id, execution_id, now, start))

    # ------------------------------------------------------------------ reads

    def get(self, instance_id: str) -> dict[str, Any] | None:
        """The instance row as a dict, or None."""
        row = self.store.one("SELECT * FROM instances WHERE instance_id=?", (instance_id,))
        return None if row is None else dict(row)

    @staticmethod
    def state_of(row: Any) -> InstanceState:
        """The decision core's view of an instance row."""
        parent = None
        if row["parent_instance_id"] is not None:
            parent = (str(row["parent_instance_id"]), str(row["parent_execution_id"]), int(row["parent_task_id"]))
        return InstanceState(
            instance_id=row["instance_id"],
            name=row["name"],
            execution_id=row["execution_id"],
            status=row["status"],
            input=row["input"],
            output=row["output"],
            parent=parent,
            version=row["version"],
            next_id=int(row["next_id"]),
            known=int(row["known"]),
            last_ts=float(row["last_ts"]),
            rewind_cache=json.loads(row["rewind_cache"]) if row["rewind_cache"] else {},
        )

    def ready_instances(self, now: float, limit: int = 500) -> tuple[list[str], float | None]:
        """Instances with a visible message that are not suspended, and when the next future message shows."""
        rows = self.store.query(
            "SELECT DISTINCT i.instance_id FROM inbox i LEFT JOIN instances s ON s.instance_id = i.instance_id "
            "WHERE i.visible_at <= ? AND (s.status IS NULL OR s.status != 'Suspended') ORDER BY i.msg_id LIMIT ?",
            (now, limit),
        )
        nxt = self.store.one("SELECT MIN(visible_at) AS t FROM inbox WHERE visible_at > ?", (now,))
        return [str(r["instance_id"]) for r in rows], None if nxt is None or nxt["t"] is None else float(nxt["t"])

    def visible_messages(self, instance_id: str, now: float, limit: int) -> list[InboxMessage]:
        """The instance's visible inbox messages, oldest first."""
        rows = self.store.query(
            "SELECT msg_id, execution_id, event FROM inbox WHERE instance_id=? AND visible_at<=? "
            "ORDER BY msg_id LIMIT ?",
            (instance_id, now, limit),
        )
        return [InboxMessage(int(r["msg_id"]), r["execution_id"], json.loads(r["event"])) for r in rows]

    def open_tasks(self, instance_id: str) -> dict[int, OpenTask]:
        """The open tasks of the instance's current execution."""
        rows = self.store.query(
            "SELECT task_id, kind, action_index, child, retry FROM open_tasks WHERE instance_id=?", (instance_id,)
        )
        return {
            int(r["task_id"]): OpenTask(
                int(r["task_id"]), r["kind"], r["action_index"], r["child"], RetryPolicy.from_json(r["retry"])
            )
            for r in rows
        }

    def history_texts(self, instance_id: str, start: int = 0) -> list[str]:
        """The current execution's history rows from position ``start``, as stored JSON texts (all played)."""
        rows = self.store.query(
            "SELECT event FROM history WHERE instance_id=? AND seq>=? ORDER BY seq", (instance_id, start)
        )
        return [str(r["event"]) for r in rows]

    def history(self, instance_id: str) -> list[Event]:
        """The current execution's history events."""
        return [json.loads(text) for text in self.history_texts(instance_id)]

    def defer(self, instance_id: str, now: float, until: float) -> None:
        """Make the instance's visible messages visible again only from ``until``."""
        with self.store.tx() as conn:
            conn.execute(
                "UPDATE inbox SET visible_at=? WHERE instance_id=? AND visible_at<=?", (until, instance_id, now)
            )

    def drop_messages(self, msg_ids: list[int]) -> None:
        """Delete inbox messages (stale ones, or those of a finished execution)."""
        with self.store.tx() as conn:
            conn.executemany("DELETE FROM inbox WHERE msg_id=?", [(m,) for m in msg_ids])

    # ------------------------------------------------------------------ episodes

    def commit_episode(
        self, instance: InstanceState, history_len: int, msg_ids: list[int], d: Decision
    ) -> list[ActivityWork] | None:
        """Commit an episode's decision in one transaction; the activity work items it created. None when the
        instance changed meanwhile (terminated, purged, rewound): its messages are then dropped, nothing else."""
        iid, exec_id = instance.instance_id, instance.execution_id
        now = d.last_ts
        with self.store.tx() as conn:
            cur = conn.execute(
                "SELECT execution_id, status, history_len FROM instances WHERE instance_id=?", (iid,)
            ).fetchone()
            marks = ",".join("?" * len(msg_ids))
            consumed = conn.execute(f"DELETE FROM inbox WHERE msg_id IN ({marks})", msg_ids).rowcount
            if cur is None or cur["execution_id"] != exec_id or cur["status"] in TERMINAL:
                return None
            work: list[ActivityWork] = []
            if consumed != len(msg_ids) or int(cur["history_len"]) != history_len:
                raise RuntimeError(f"the task hub of {iid} changed during an episode")
            status = d.status
            if cur["status"] == RuntimeStatus.Suspended.value and status == RuntimeStatus.Running.value:
                status = RuntimeStatus.Suspended.value
            if d.new_execution is not None:
                # Raised events (no execution id) wait for the next execution; the rest of this one goes.
                for table in ("history", "open_tasks", "work_items"):
                    conn.execute(f"DELETE FROM {table} WHERE instance_id=?", (iid,))
                conn.execute("DELETE FROM inbox WHERE instance_id=? AND execution_id=?", (iid, exec_id))
                new_exec, new_input = d.new_execution
                conn.execute(
                    "UPDATE instances SET status=?, custom_status=?, updated_time=?, execution_id=?, input=?, "
                    "next_id=0, known=0, last_ts=?, history_len=0, rewind_cache=? WHERE instance_id=?",
                    (status, d.custom_status, iso(now, False), new_exec, new_input, now, self._cache(d, instance), iid),
                )
            else:
                length = self._append(conn, iid, history_len, d.history)
                conn.execute(
                    "UPDATE instances SET status=?, output=?, custom_status=?, updated_time=?, next_id=?, known=?, "
                    "last_ts=?, history_len=?, rewind_cache=? WHERE instance_id=?",
                    (
                        status,
                        d.output,
                        d.custom_status,
                        iso(now, False),
                        d.next_id,
                        d.known,
                        now,
                        length,
                        self._cache(d, instance),
                        iid,
                    ),
                )
                conn.executemany(
                    "DELETE FROM open_tasks WHERE instance_id=? AND task_id=?", [(iid, t) for t in d.closed]
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO open_tasks(instance_id, task_id, kind, action_index, child, retry) "
                    "VALUES(?,?,?,?,?,?)",
                    [
                        (
                            iid,
                            t.task_id,
                            t.kind,
                            t.action_index,
                            t.child,
                            None if t.retry is None else t.retry.to_json(),
                        )
                        for t in d.opened
                    ],
                )
                conn.executemany(
                    "DELETE FROM inbox WHERE instance_id=? AND timer_id=?", [(iid, t) for t in d.cancel_timers]
                )
                for w in d.work:
                    cursor = conn.execute(
                        "INSERT INTO work_items(instance_id, execution_id, task_id, name, input) VALUES(?,?,?,?,?)",
                        (iid, exec_id, w.task_id, w.name, w.input),
                    )
                    work.append(ActivityWork(int(cursor.lastrowid or 0), iid, exec_id, w.task_id, w.name, w.input))
            for msg in d.messages:
                self.enqueue(conn, msg)
            for target, request in d.entity_requests:
                self.enqueue_entity(conn, target, request, now)
            for child in d.children:
                self.create_instance(
                    conn, child.instance_id, child.name, child.input, now, child.execution_id, child.parent,
                    child.version,
                )  # fmt: skip
            if d.finished:
                conn.execute("DELETE FROM open_tasks WHERE instance_id=?", (iid,))
                conn.execute("DELETE FROM work_items WHERE instance_id=?", (iid,))
                conn.execute("DELETE FROM inbox WHERE instance_id=? AND execution_id=?", (iid, exec_id))
                work = []
        return work

    @staticmethod
    def _cache(d: Decision, instance: InstanceState) -> str | None:
        cache = instance.rewind_cache if d.rewind_cache is None else d.rewind_cache
        return json.dumps(cache) if any(cache.values()) else None

    # ------------------------------------------------------------------ activities

    def work_after(self, work_id: int, limit: int) -> list[ActivityWork]:
        """Work items with an id above ``work_id``, oldest first."""
        rows = self.store.query(
            "SELECT work_id, instance_id, execution_id, task_id, name, input FROM work_items WHERE work_id>? "
            "ORDER BY work_id LIMIT ?",
            (work_id, limit),
        )
        return [
            ActivityWork(
                int(r["work_id"]), r["instance_id"], r["execution_id"], int(r["task_id"]), r["name"], r["input"]
            )
            for r in rows
        ]

    def complete_activity(self, item: ActivityWork, answer: Event, now: float) -> None:
        """Delete the work item and, if its execution still runs, enqueue its answer (one transaction)."""
        self.complete_activities([(item, answer)], now)

    def complete_activities(self, answers: list[tuple[ActivityWork, Event]], now: float) -> None:
        """Record finished activities in one transaction: each work item is deleted and, if its execution still
        runs, its answer enqueued; an item whose row is already gone (answered before, or its execution ended)
        is skipped.

        The batch costs a fixed handful of statements whatever its size (the ids travel as one JSON array):
        SQLite lets go of the GIL for every statement step, and getting it back from an orchestrator replaying
        on another thread can take the interpreter's whole switch interval, so a statement per answer would
        make a fan-out's answers trickle in while its episodes replay."""
        if not answers:
            return
        ids = json.dumps([item.work_id for item, _ in answers])
        with self.store.tx() as conn:
            (present,) = conn.execute(
                "SELECT json_group_array(work_id) FROM work_items WHERE work_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ).fetchone()
            found = set(json.loads(present))
            if not found:
                return
            conn.execute("DELETE FROM work_items WHERE work_id IN (SELECT value FROM json_each(?))", (ids,))
            owners = json.dumps(sorted({item.instance_id for item, _ in answers if item.work_id in found}))
            (states,) = conn.execute(
                "SELECT json_group_object(instance_id, json_array(execution_id, status)) FROM instances "
                "WHERE instance_id IN (SELECT value FROM json_each(?))",
                (owners,),
            ).fetchone()
            live: dict[str, list[str]] = json.loads(states)
            messages: list[Message] = []
            for item, answer in answers:
                state = live.get(item.instance_id)
                if item.work_id not in found or state is None:
                    continue
                found.discard(item.work_id)  # a duplicate answer in the same batch is recorded once
                if state[0] == item.execution_id and state[1] not in TERMINAL:
                    messages.append(Message(item.instance_id, item.execution_id, now, answer))
            self.enqueue_many(conn, messages)

    # ------------------------------------------------------------------ management

    @staticmethod
    def _instance_row(conn: sqlite3.Connection, instance_id: str, *, live: bool = False) -> Any:
        """The instance's row in this transaction: 404 when unknown, 410 when ``live`` and it has ended."""
        row = conn.execute("SELECT * FROM instances WHERE instance_id=?", (instance_id,)).fetchone()
        if row is None:
            raise DurableError(404, f"No instance with ID '{instance_id}' found.")
        if live and row["status"] in TERMINAL:
            raise DurableError(410, f"The instance '{instance_id}' is {row['status']}.")
        return row

    def start(
        self, instance_id: str, name: str, serialized_input: str | None, now: float, execution_id: str, version: str
    ) -> None:
        """Create a top-level instance (409 while one with that id runs)."""
        with self.store.tx() as conn:
            self.create_instance(conn, instance_id, name, serialized_input, now, execution_id, None, version)

    def raise_event(self, instance_id: str, ev: Event, now: float) -> None:
        """Deliver an external event (404 unknown, 410 terminal)."""
        with self.store.tx() as conn:
            self._instance_row(conn, instance_id, live=True)
            self.enqueue(conn, Message(instance_id, None, now, ev))

    def terminate(self, instance_id: str, reason: str, now: float) -> None:
        """End a live instance as Terminated."""
        output = json.dumps(reason)
        with self.store.tx() as conn:
            row = self._instance_row(conn, instance_id, live=True)
            ended = [
                event(EventType.EXECUTION_TERMINATED, now, Input=reason),
                event(
                    EventType.EXECUTION_COMPLETED,
                    now,
                    OrchestrationStatus=STATUS_CODE[RuntimeStatus.Terminated.value],
                    Result=output,
                ),
            ]
            length = self._append(conn, instance_id, int(row["history_len"]), ended)
            conn.execute(
                "UPDATE instances SET status=?, output=?, updated_time=?, history_len=? WHERE instance_id=?",
                (RuntimeStatus.Terminated.value, output, iso(now, False), length, instance_id),
            )
            for table in ("open_tasks", "inbox", "work_items"):
                conn.execute(f"DELETE FROM {table} WHERE instance_id=?", (instance_id,))

    def set_suspended(self, instance_id: str, suspend: bool, now: float) -> None:
        """Suspend a live instance, or resume a suspended one."""
        with self.store.tx() as conn:
            row = self._instance_row(conn, instance_id, live=True)
            if suspend or row["status"] == RuntimeStatus.Suspended.value:
                status = RuntimeStatus.Suspended if suspend else RuntimeStatus.Running
                conn.execute(
                    "UPDATE instances SET status=?, updated_time=? WHERE instance_id=?",
                    (status.value, iso(now, False), instance_id),
                )

    def rewind(self, instance_id: str, now: float, execution_id: str) -> None:
        """Restart a Failed instance as a new execution whose tasks that succeeded before answer from a cache."""
        with self.store.tx() as conn:
            row = self._instance_row(conn, instance_id)
            if row["status"] != RuntimeStatus.Failed.value:
                raise DurableError(412, f"The instance '{instance_id}' is {row['status']}, not Failed.")
            cache: dict[str, list[Any]] = {}
            scheduled: dict[int, str] = {}
            for (text,) in conn.execute("SELECT event FROM history WHERE instance_id=? ORDER BY seq", (instance_id,)):
                h = json.loads(text)
                if h["EventType"] == EventType.TASK_SCHEDULED:
                    scheduled[h["EventId"]] = f"activity\x00{h.get('Name')}\x00{h.get('Input')}"
                elif h["EventType"] == EventType.SUB_ORCHESTRATION_INSTANCE_CREATED:
                    scheduled[h["EventId"]] = f"sub\x00{h.get('Name')}\x00{h.get('Input')}"
                elif (
                    h["EventType"] in (EventType.TASK_COMPLETED, EventType.SUB_ORCHESTRATION_INSTANCE_COMPLETED)
                    and h.get("TaskScheduledId") in scheduled
                ):
                    cache.setdefault(scheduled[h["TaskScheduledId"]], []).append(h.get("Result"))
            self._clear_execution(conn, instance_id)
            conn.execute(
                "UPDATE instances SET status=?, output=NULL, custom_status=NULL, updated_time=?, execution_id=?, "
                "next_id=0, known=0, last_ts=?, history_len=0, rewind_cache=? WHERE instance_id=?",
                (
                    RuntimeStatus.Running.value,
                    iso(now, False),
                    execution_id,
                    now,
                    json.dumps(cache) if cache else None,
                    instance_id,
                ),
            )
            state = self.state_of(row)
            start = started_event(state.name, instance_id, execution_id, state.input, now, state.parent, state.version)
            self.enqueue(conn, Message(instance_id, execution_id, now, start))

    def purge(self, instance_id: str) -> int:
        """Delete a terminal instance (404 unknown, 412 running)."""
        with self.store.tx() as conn:
            row = self._instance_row(conn, instance_id)
            if row["status"] not in TERMINAL:
                raise DurableError(412, f"The instance '{instance_id}' is {row['status']}.")
            self.delete_instance(conn, instance_id)
        return 1

    def purge_many(self, instance_ids: list[str]) -> int:
        """Delete those of the instances that are terminal; how many were."""
        n = 0
        with self.store.tx() as conn:
            for iid in instance_ids:
                row = conn.execute("SELECT status FROM instances WHERE instance_id=?", (iid,)).fetchone()
                if row is not None and row["status"] in TERMINAL:
                    self.delete_instance(conn, iid)
                    n += 1
        return n

    def query(
        self, created_from: float | None, created_to: float | None, statuses: list[str] | None, prefix: str | None
    ) -> list[dict[str, Any]]:
        """Instances matching the filters, oldest first."""
        sql, args = _created_range(created_from, created_to)
        if statuses:
            sql += f" AND status IN ({','.join('?' * len(statuses))})"
            args += statuses
        if prefix:
            sql += " AND substr(instance_id, 1, ?) = ?"
            args += [len(prefix), prefix]
        sql += " ORDER BY created_ts, instance_id"
        return [dict(r) for r in self.store.query(sql, args)]

    def scan(
        self, created_from: float | None, created_to: float | None, after: tuple[float, str] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Instances of a created-time range in (created time, id) order after the key ``after``."""
        sql, args = _created_range(created_from, created_to)
        if after is not None:
            sql += " AND (created_ts > ? OR (created_ts = ? AND instance_id > ?))"
            args += [after[0], after[0], after[1]]
        sql += " ORDER BY created_ts, instance_id LIMIT ?"
        args.append(limit)
        return [dict(r) for r in self.store.query(sql, args)]

    # ------------------------------------------------------------------ entities

    @staticmethod
    def enqueue_entity(conn: sqlite3.Connection, target: ent.EntityId, request: ent.EntityRequest, now: float) -> None:
        """Queue one operation for an entity (the only INSERT into ``entity_queue``)."""
        conn.execute(
            "INSERT INTO entity_queue(scheduler_id, request, enqueued_ts) VALUES(?, ?, ?)",
            (target.scheduler_id, json.dumps(request.to_message()), now),
        )

    def signal_entity(self, target: ent.EntityId, request: ent.EntityRequest, now: float) -> None:
        """Queue a client's signal."""
        with self.store.tx() as conn:
            self.enqueue_entity(conn, target, request, now)

    def entity(self, entity: ent.EntityId) -> ent.EntityRecord:
        """The entity's record (a never-used or deleted entity does not exist)."""
        row = self.store.one("SELECT state FROM entities WHERE scheduler_id=?", (entity.scheduler_id,))
        return ent.EntityRecord(False, None) if row is None else ent.EntityRecord(True, row["state"])

    def ready_entities(self, busy: Iterable[str], limit: int) -> list[ent.EntityId]:
        """Up to ``limit`` entities with queued operations and no batch running, longest waiting first."""
        skip = set(busy)
        rows = self.store.query(
            "SELECT scheduler_id FROM entity_queue GROUP BY scheduler_id ORDER BY MIN(seq) LIMIT ?",
            (limit + len(skip),),
        )
        out: list[ent.EntityId] = []
        for row in rows:
            sid = row["scheduler_id"]
            if sid in skip:
                continue
            try:
                out.append(ent.EntityId.parse(sid))
            except ent.EntityProtocolError:
                self.store.execute("DELETE FROM entity_queue WHERE scheduler_id=?", (sid,))  # not ours
            if len(out) >= limit:
                break
        return out

    def entity_batch(self, entity: ent.EntityId, limit: int = ent.MAX_BATCH) -> EntityBatch:
        """The entity's record and its oldest queued operations (unreadable rows are dropped)."""
        with self.store.tx() as conn:
            row = conn.execute("SELECT state FROM entities WHERE scheduler_id=?", (entity.scheduler_id,)).fetchone()
            record = ent.EntityRecord(False, None) if row is None else ent.EntityRecord(True, row["state"])
            seqs: list[int] = []
            requests: list[ent.EntityRequest] = []
            for seq, text in conn.execute(
                "SELECT seq, request FROM entity_queue WHERE scheduler_id=? ORDER BY seq LIMIT ?",
                (entity.scheduler_id, limit),
            ).fetchall():
                try:
                    requests.append(ent.EntityRequest.from_message(json.loads(text)))
                except (ValueError, ent.EntityProtocolError):
                    conn.execute("DELETE FROM entity_queue WHERE seq=?", (seq,))
                    continue
                seqs.append(int(seq))
        return EntityBatch(entity, record, tuple(seqs), tuple(requests))

    def commit_entity_batch(self, batch: EntityBatch, effects: ent.BatchEffects, now: float) -> None:
        """Apply a finished batch in one transaction: dequeue it, store the entity, queue its signals and
        answer its calls (an answer to an execution that has ended or moved on is dropped)."""
        sid = batch.entity.scheduler_id
        with self.store.tx() as conn:
            conn.executemany("DELETE FROM entity_queue WHERE seq=?", [(s,) for s in batch.seqs])
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
                self.enqueue_entity(conn, target, request, now)
            for answer in effects.responses:
                row = conn.execute(
                    "SELECT status, execution_id FROM instances WHERE instance_id=?", (answer.instance_id,)
                ).fetchone()
                if row is None or row["status"] in TERMINAL:
                    continue
                if answer.execution_id is not None and row["execution_id"] != answer.execution_id:
                    continue
                ev = event(EventType.EVENT_RAISED, now, Name=answer.event_name, Input=answer.event_input)
                self.enqueue(conn, Message(answer.instance_id, answer.execution_id, now, ev))

    def list_entities(self, name: str, after: str | None, top: int) -> tuple[list[EntityListing], str | None]:
        """Existing entities of function ``name`` (case-insensitive) by id after the continuation ``after``;
        the page and the next page's token (None on the last page)."""
        rows = self.store.query(
            "SELECT scheduler_id, last_operation_ts, state FROM entities WHERE name=? AND scheduler_id>? "
            "ORDER BY scheduler_id LIMIT ?",
            (name.lower(), after or "", top + 1),
        )
        page = [EntityListing(ent.EntityId.parse(r[0]), float(r[1]), r[2]) for r in rows[:top]]
        token = page[-1].entity.scheduler_id if len(rows) > top and page else None
        return page, token


@dataclass(frozen=True)
class EntityBatch:
    """An entity's record and its oldest queued operations, with their queue positions."""

    entity: ent.EntityId
    record: ent.EntityRecord
    seqs: tuple[int, ...]
    requests: tuple[ent.EntityRequest, ...]


@dataclass(frozen=True)
class EntityListing:
    """One entity as the management API lists it."""

    entity: ent.EntityId
    last_operation_ts: float
    state: str | None


def _created_range(created_from: float | None, created_to: float | None) -> tuple[str, list[Any]]:
    """The instances query (SQL and arguments) limited to a created-time range; filters are appended to it."""
    sql = "SELECT * FROM instances WHERE 1=1"
    args: list[Any] = []
    if created_from is not None:
        sql += " AND created_ts >= ?"
        args.append(created_from)
    if created_to is not None:
        sql += " AND created_ts <= ?"
        args.append(created_to)
    return sql, args
