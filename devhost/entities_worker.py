"""Durable entities, the running half: a dispatcher that runs one batch per entity at a time.

The dispatcher thread finds entities with queued operations (``entities_store.ready``), claims each one in
memory (so an entity never runs two batches at once), and hands it to the pool. A batch reads the entity and
its oldest operations, calls the entity function once with all of them (``func.EntityContext``, the binding
name of the trigger, as the Python worker does), checks the answer (``entities.parse_batch_response``; an
unusable answer, an exception or a ``functionTimeout`` becomes ``entities.failed_batch``) and commits it in
one transaction: operations dequeued, state stored, outgoing signals queued, calls answered through
``deliver`` (the orchestration inbox). A batch interrupted by a crash holds no claim after the restart and
runs again.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

from devhost import entities as ent
from devhost import entities_store as hub
from devhost.app_loader import FunctionInfo, HostConfig, Registry
from devhost.invoke import build_kwargs, call_sync, log_execution, new_invocation_id
from devhost.store import Store


def missing_entity_message(name: str) -> str:
    """The extension's words for an operation on an entity function the app does not have."""
    return f"The function '{name}' doesn't exist, is disabled, or is not an entity function."


class EntityWorker:
    """Runs entity batches from the SQLite entity queue."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        config: HostConfig,
        app_dir: Path,
        deliver: hub.Deliver,
        on_delivered: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.config = config
        self.app_dir = str(app_dir)
        self.deliver = deliver
        self.on_delivered = on_delivered
        self.functions: dict[str, FunctionInfo] = {n.lower(): f for n, f in registry.entities.items()}
        self._workers = max(1, config.max_orchestrators)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="entity")
        self._exec = ThreadPoolExecutor(2 * self._workers, thread_name_prefix="entity-call")
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with store.tx() as conn:
            hub.ensure_schema(conn)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the dispatcher thread."""
        self._thread = threading.Thread(target=self._loop, name="entity-dispatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop dispatching; a running batch is abandoned (its operations stay queued)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._exec.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Nudge the dispatcher (new operations were queued)."""
        self._wake.set()

    # ------------------------------------------------------------------ API for the engine and the server

    def has_entity(self, name: str) -> bool:
        """Whether the app has an entity function of this (case-insensitive) name."""
        return name.lower() in self.functions

    def enqueue(self, conn: sqlite3.Connection, target: ent.EntityId, request: ent.EntityRequest) -> None:
        """Queue an operation inside the caller's transaction (call ``wake`` after it commits)."""
        hub.enqueue(conn, target, request, time.time())

    def signal(self, target: ent.EntityId, request: ent.EntityRequest) -> None:
        """Queue a client's signal and wake the dispatcher."""
        with self.store.tx() as conn:
            self.enqueue(conn, target, request)
        self.wake()

    def read(self, entity: ent.EntityId) -> ent.EntityRecord:
        """The entity's stored record."""
        with self.store.tx() as conn:
            return hub.read(conn, entity)

    def list(self, name: str, after: str | None, top: int) -> tuple[list[hub.EntityListing], str | None]:
        """A page of the existing entities of one entity function."""
        with self.store.tx() as conn:
            return hub.list_entities(conn, name, after, top)

    # ------------------------------------------------------------------ dispatch

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                with self._lock:
                    busy, free = set(self._busy), self._workers - len(self._busy)
                ready: list[ent.EntityId] = []
                if free > 0:
                    with self.store.tx() as conn:
                        ready = hub.ready(conn, busy, free)
            except Exception:  # noqa: BLE001 - keep the dispatcher alive
                traceback.print_exc()
                self._stop.wait(0.5)
                continue
            for entity in ready:
                with self._lock:
                    if entity.scheduler_id in self._busy:
                        continue
                    self._busy.add(entity.scheduler_id)
                self._pool.submit(self._run, entity)
            self._wake.wait(0.5)

    def _run(self, entity: ent.EntityId) -> None:
        try:
            if not self._stop.is_set():
                self._run_batch(entity)
        except Exception:  # noqa: BLE001 - the operations stay queued and run again
            traceback.print_exc()
            self._stop.wait(0.5)
        finally:
            with self._lock:
                self._busy.discard(entity.scheduler_id)
            self._wake.set()

    def _run_batch(self, entity: ent.EntityId) -> None:
        with self.store.tx() as conn:
            batch = hub.next_batch(conn, entity)
            record = hub.read(conn, entity)
        if not batch.requests:
            if batch.seqs:  # nothing readable was left: drop the rows
                with self.store.tx() as conn:
                    hub.commit_batch(conn, batch, ent.BatchEffects(record, (), ()), time.time(), self.deliver)
            return
        result = self._execute(entity, record, batch.requests)
        if result is None:  # the host is stopping
            return
        new_ids = [str(uuid.uuid4()) for _ in result.signals]
        effects = ent.batch_effects(entity, batch.requests, result, new_ids)
        with self.store.tx() as conn:
            hub.commit_batch(conn, batch, effects, time.time(), self.deliver)
        if effects.signals:
            self._wake.set()
        if effects.responses:
            self.on_delivered()

    def _execute(
        self, entity: ent.EntityId, record: ent.EntityRecord, requests: tuple[ent.EntityRequest, ...]
    ) -> ent.BatchResult | None:
        """Call the entity function with one batch; None when the host stopped before it ran."""
        import azure.functions as func

        info = self.functions.get(entity.name)
        if info is None:
            return ent.failed_batch(record, len(requests), missing_entity_message(entity.name))
        invocation = new_invocation_id()
        started = time.monotonic()
        context = func.EntityContext(ent.batch_request(entity, record, requests))
        kwargs = build_kwargs(info, context, invocation, self.app_dir)
        future: Future[object] = self._exec.submit(call_sync, info, kwargs)
        error: str | None = None
        try:
            returned = future.result(self.config.function_timeout_s)
            result = ent.parse_batch_response(returned, len(requests))
        except FutureTimeout:
            error = (
                f"Timeout value of {self.config.function_timeout_s}s was exceeded by function: Functions.{info.name}"
            )
            result = ent.failed_batch(record, len(requests), error, raw=True)
        except ent.EntityProtocolError as exc:
            error = f"Entity function '{info.name}' returned an invalid answer: {exc}"
            result = ent.failed_batch(record, len(requests), error)
        except RuntimeError as exc:
            if self._stop.is_set():
                return None
            error = f"Entity function '{info.name}' failed: {type(exc).__name__}: {exc}"
            result = ent.failed_batch(record, len(requests), error)
        except Exception as exc:  # noqa: BLE001 - the callers get the error, the state is kept
            error = f"Entity function '{info.name}' failed: {type(exc).__name__}: {exc}"
            result = ent.failed_batch(record, len(requests), error)
        if error is not None:
            sys.stderr.write(f"devhost: {error} (entity {entity.scheduler_id}, {len(requests)} operation(s))\n")
        log_execution(info.name, invocation, started, error, instance_id=entity.scheduler_id, operations=len(requests))
        return result
