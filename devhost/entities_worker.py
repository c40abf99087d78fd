"""Durable entities, the running half: a dispatcher that runs one batch per entity at a time.

The dispatcher thread finds entities with queued operations (``TaskHub.ready_entities``), claims each one in
memory (so an entity never runs two batches at once), and hands it to the pool. A batch reads the entity and
its oldest operations, calls the entity function once with all of them (``func.EntityContext``, the binding
name of the trigger, as the Python worker does), checks the answer (``entities.parse_batch_response``; an
unusable answer, an exception or a ``functionTimeout`` becomes ``entities.failed_batch``) and commits it in
one transaction (``TaskHub.commit_entity_batch``): operations dequeued, state stored, outgoing signals
queued, calls answered in their orchestrations' inboxes. A batch interrupted by a crash holds no claim after
the restart and runs again; its operations were not dequeued, so none takes effect twice.
"""

from __future__ import annotations

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
from devhost.app_loader import FunctionInfo, HostConfig, Registry
from devhost.invoke import build_kwargs, call_sync, log_execution, new_invocation_id
from devhost.taskhub import EntityListing, TaskHub


def missing_entity_message(name: str) -> str:
    """The extension's words for an operation on an entity function the app does not have."""
    return f"The function '{name}' doesn't exist, is disabled, or is not an entity function."


class EntityWorker:
    """Runs entity batches from the SQLite entity queue."""

    def __init__(
        self,
        hub: TaskHub,
        registry: Registry,
        config: HostConfig,
        app_dir: Path,
        on_answered: Callable[[str], None] = lambda instance_id: None,
    ) -> None:
        self.hub = hub
        self.config = config
        self.app_dir = str(app_dir)
        self.on_answered = on_answered
        self.functions: dict[str, FunctionInfo] = {n.lower(): f for n, f in registry.entities.items()}
        self.names = frozenset(self.functions)
        self._workers = max(1, config.max_orchestrators)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="entity")
        self._exec = ThreadPoolExecutor(2 * self._workers, thread_name_prefix="entity-call")
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    def signal(self, target: ent.EntityId, request: ent.EntityRequest) -> None:
        """Queue a client's signal and wake the dispatcher."""
        self.hub.signal_entity(target, request, time.time())
        self.wake()

    def read(self, entity: ent.EntityId) -> ent.EntityRecord:
        """The entity's stored record."""
        return self.hub.entity(entity)

    def list(self, name: str, after: str | None, top: int) -> tuple[list[EntityListing], str | None]:
        """A page of the existing entities of one entity function."""
        return self.hub.list_entities(name, after, top)

    # ------------------------------------------------------------------ dispatch

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                with self._lock:
                    busy, free = set(self._busy), self._workers - len(self._busy)
                ready = self.hub.ready_entities(busy, free) if free > 0 else []
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
        batch = self.hub.entity_batch(entity)
        if not batch.requests:
            if batch.seqs:
                self.hub.commit_entity_batch(batch, ent.BatchEffects(batch.record, (), ()), time.time())
            return
        result = self._execute(entity, batch.record, batch.requests)
        if result is None or self._stop.is_set():  # the host is stopping: the batch runs again at the next start
            return
        new_ids = [str(uuid.uuid4()) for _ in result.signals]
        effects = ent.batch_effects(entity, batch.requests, result, new_ids)
        self.hub.commit_entity_batch(batch, effects, time.time())
        if effects.signals:
            self._wake.set()
        for instance_id in dict.fromkeys(r.instance_id for r in effects.responses):
            self.on_answered(instance_id)  # run the answered orchestrations now

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
        error: str | None = None
        try:
            future: Future[object] = self._exec.submit(call_sync, info, kwargs)
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
