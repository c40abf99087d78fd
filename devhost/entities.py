"""Durable entities, the protocol half: entity ids, operation requests, batch requests and responses.

Pure functions over small frozen dataclasses, no SQL, no threads, no clock: the entity worker and the
orchestration decision core call them, and ``tests/devhost/test_entities_units.py`` checks them alone.
What they implement is written down in docs/durable-protocol.md ("Entities"):

* an entity is addressed by ``@<name>@<key>`` (the scheduler id); the name is case-insensitive and kept
  lowercased, as the extension keeps it, and the key is everything after the second ``@``;
* an operation request (a call from an orchestration, a signal from an orchestration or a client) carries
  a request id, the operation name, its input as the extension stores it (JSON text of the action's input
  text, or null) and, for calls, the orchestration to answer;
* the entity function gets one batch ``{"self", "state", "exists", "batch": [{"name", "input", "isSignal",
  "id"}]}`` and answers ``{"entityExists", "entityState", "results": [{"isError", "result", "duration"}],
  "signals": [...]}`` — untrusted text: ``parse_batch_response`` accepts only that shape, and
  ``failed_batch`` is what a batch whose answer is unusable turns into (state kept, every call answered
  with an error, no signals);
* a call is answered to its orchestration as ``EventRaised(Name=<request id>, Input={"result": <JSON
  text>[, "exceptionType": "Error"]})``, the event the Python SDK matches to the task it re-keyed when it
  replayed the ``EventSent`` the host wrote for the call.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Operation name a DELETE on the management API sends, as the extension does.
DELETE_OPERATION = "delete"
#: Longest entity name and key the devhost accepts (a hostile client must not grow the task hub unbounded).
MAX_NAME = 256
MAX_KEY = 1024
MAX_OPERATION = 256
#: Largest entity state, operation input or result text kept, in characters (the Azure Storage backend moves
#: larger payloads to blobs; the devhost refuses them so that a runaway entity is noticed).
MAX_PAYLOAD = 1_000_000
#: Operations handed to one invocation of an entity function (the extension's Consumption-plan default).
MAX_BATCH = 50
#: ``EventSent.Name`` of an entity operation message, as the extension writes it.
OPERATION_EVENT_NAME = "op"
#: Namespace of the deterministic request ids of orchestration calls and signals.
_REQUEST_NS = uuid.UUID("6c1f4e0e-4d52-4c1b-9a53-2f1f3c0b8e11")


class EntityProtocolError(ValueError):
    """Input that breaks the entity protocol: a bad entity id, action, request or batch response."""


# ---------------------------------------------------------------------------------------------------
# entity ids
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class EntityId:
    """An entity: its (lowercased) function name and its key."""

    name: str
    key: str

    @classmethod
    def of(cls, name: Any, key: Any) -> EntityId:
        """A checked entity id; ``EntityProtocolError`` names what is wrong with ``name`` or ``key``."""
        if not isinstance(name, str) or not name.strip():
            raise EntityProtocolError("the entity name must be a non-empty string")
        if not isinstance(key, str) or not key:
            raise EntityProtocolError("the entity key must be a non-empty string")
        if "@" in name:
            raise EntityProtocolError(f"the entity name {name[:40]!r} must not contain '@'")
        if len(name) > MAX_NAME or len(key) > MAX_KEY:
            raise EntityProtocolError(f"the entity name (at most {MAX_NAME}) or key (at most {MAX_KEY}) is too long")
        if any(ord(c) < 0x20 for c in name + key):
            raise EntityProtocolError("the entity name and key must not contain control characters")
        return cls(name.lower(), key)

    @classmethod
    def parse(cls, scheduler_id: Any) -> EntityId:
        """The entity of ``@name@key`` (the key may itself contain ``@``, as in the extension)."""
        if not isinstance(scheduler_id, str) or not scheduler_id.startswith("@"):
            raise EntityProtocolError(f"{str(scheduler_id)[:80]!r} is not an entity instance id (@name@key)")
        name, sep, key = scheduler_id[1:].partition("@")
        if not sep:
            raise EntityProtocolError(f"{scheduler_id[:80]!r} is not an entity instance id (@name@key)")
        return cls.of(name, key)

    @property
    def scheduler_id(self) -> str:
        """``@name@key``: the instance id the SDK and the extension use for this entity."""
        return f"@{self.name}@{self.key}"

    def to_json(self) -> dict[str, str]:
        """``{"name", "key"}``, as the batch's ``self`` and the entity list show it."""
        return {"name": self.name, "key": self.key}


# ---------------------------------------------------------------------------------------------------
# operation requests
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityRequest:
    """One operation for one entity, as queued: who asked, what, and with which input."""

    id: str
    operation: str
    input: str | None
    is_signal: bool
    parent_instance: str | None = None
    parent_execution: str | None = None

    def to_message(self) -> dict[str, Any]:
        """The JSON form (queue rows and ``EventSent.Input``; the SDK reads only ``id``)."""
        return {
            "id": self.id,
            "op": self.operation,
            "signal": self.is_signal,
            "input": self.input,
            "parent": self.parent_instance,
            "parentExecution": self.parent_execution,
        }

    @classmethod
    def from_message(cls, message: Any) -> EntityRequest:
        """The request of ``to_message``'s JSON form (checked: queue rows survive restarts and upgrades)."""
        if not isinstance(message, dict):
            raise EntityProtocolError("an entity request must be a JSON object")
        rid, op, given, signal = message.get("id"), message.get("op"), message.get("input"), message.get("signal")
        parent, execution = message.get("parent"), message.get("parentExecution")
        if not isinstance(rid, str) or not rid or not isinstance(op, str) or not isinstance(signal, bool):
            raise EntityProtocolError("an entity request needs a string id, a string op and a boolean signal")
        if given is not None and not isinstance(given, str):
            raise EntityProtocolError("an entity request's input must be JSON text or null")
        if not signal and not (isinstance(parent, str) and parent):
            raise EntityProtocolError("an entity call must name the orchestration to answer")
        return cls(
            rid,
            op,
            given,
            signal,
            parent if isinstance(parent, str) else None,
            execution if isinstance(execution, str) else None,
        )


def request_id(instance_id: str, execution_id: str, event_id: int) -> str:
    """The request id of an orchestration's entity call or signal: a function of where it was decided,
    so an episode that runs again after a crash sends the same request (the extension uses the
    orchestration's deterministic ``NewGuid`` the same way)."""
    return str(uuid.uuid5(_REQUEST_NS, f"{instance_id}\n{execution_id}\n{event_id}"))


def _check_operation(operation: Any) -> str:
    if not isinstance(operation, str):
        raise EntityProtocolError("the entity operation name must be a string")
    if len(operation) > MAX_OPERATION:
        raise EntityProtocolError(f"the entity operation name is longer than {MAX_OPERATION} characters")
    return operation


def _check_payload(text: str | None, what: str) -> str | None:
    if text is not None and len(text) > MAX_PAYLOAD:
        raise EntityProtocolError(f"the {what} is larger than {MAX_PAYLOAD} characters")
    return text


@dataclass(frozen=True)
class OrchestrationEntityAction:
    """A ``CallEntity`` (7) or ``SignalEntity`` (9) action of an orchestration, turned into a request."""

    target: EntityId
    request: EntityRequest

    def event_sent_fields(self) -> dict[str, Any]:
        """The fields of the ``EventSent`` history event the host writes for it (besides EventId/Timestamp)."""
        return {
            "InstanceId": self.target.scheduler_id,
            "Name": OPERATION_EVENT_NAME,
            "Input": json.dumps(self.request.to_message()),
        }


CALL_ENTITY = 7
SIGNAL_ENTITY = 9


def request_from_action(action: Any, instance_id: str, execution_id: str, event_id: int) -> OrchestrationEntityAction:
    """The request of an orchestration's entity action.

    The action's ``input`` is the SDK's serialized input (JSON text); the extension stores it as JSON
    text of that string, which is what the Python entity context decodes twice.
    """
    if not isinstance(action, dict) or action.get("actionType") not in (CALL_ENTITY, SIGNAL_ENTITY):
        raise EntityProtocolError("not an entity action (actionType 7 or 9)")
    target = EntityId.parse(action.get("instanceId"))
    operation = _check_operation(action.get("operation"))
    given = action.get("input")
    if given is not None and not isinstance(given, str):
        raise EntityProtocolError("an entity action's input must be serialized JSON text")
    stored = _check_payload(None if given is None else json.dumps(given), "entity operation input")
    is_signal = action["actionType"] == SIGNAL_ENTITY
    rid = request_id(instance_id, execution_id, event_id)
    request = EntityRequest(
        rid, operation, stored, is_signal, None if is_signal else instance_id, None if is_signal else execution_id
    )
    return OrchestrationEntityAction(target, request)


def client_signal(operation: Any, body: bytes, content_type: str | None, new_id: str) -> EntityRequest:
    """The request of a management-API signal (``POST .../entities/{name}/{key}?op=``).

    As the extension: an empty body is no input; an ``application/json`` body must be JSON (re-serialized);
    any other body is taken as a string. The SDK's client posts ``json.dumps(value)`` as a JSON string.
    """
    op = _check_operation(operation if operation is not None else "")
    if not body:
        return EntityRequest(new_id, op, None, True)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EntityProtocolError("the signal's body is not UTF-8 text") from exc
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json":
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise EntityProtocolError(f"could not parse the signal's JSON content: {exc}") from exc
        stored = json.dumps(value)
    else:
        stored = json.dumps(text)
    return EntityRequest(new_id, op, _check_payload(stored, "signal body"), True)


# ---------------------------------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityRecord:
    """What the task hub keeps of an entity between batches: whether it exists and its state (JSON text)."""

    exists: bool = False
    state: str | None = None

    def state_value(self) -> Any:
        """The state as a JSON value (what the management API and ``read_entity_state`` return)."""
        return None if self.state is None else json.loads(self.state)


def batch_request(entity: EntityId, record: EntityRecord, requests: Sequence[EntityRequest]) -> str:
    """The JSON text passed to the entity function for one batch (the extension's out-of-process shape)."""
    if not requests:
        raise EntityProtocolError("an entity batch needs at least one operation")
    return json.dumps(
        {
            "self": entity.to_json(),
            "exists": record.exists,
            "state": record.state if record.exists else None,
            "batch": [{"name": r.operation, "input": r.input, "isSignal": r.is_signal, "id": r.id} for r in requests],
        }
    )


@dataclass(frozen=True)
class OperationOutcome:
    """The result of one operation: JSON text of its value, or of the error message when ``is_error``.

    ``raw`` marks a result that is not JSON text (a timeout message, which the SDK recognises by its
    prefix and encodes itself, as it does for the real host).
    """

    is_error: bool
    result: str
    duration_ms: int = 0
    raw: bool = False

    def response_input(self) -> str:
        """``EventRaised.Input`` of the answer to a call: ``{"result"[, "exceptionType"]}``."""
        body: dict[str, Any] = {"result": self.result}
        if self.is_error:
            body["exceptionType"] = "Error"
        return json.dumps(body)


@dataclass(frozen=True)
class OutgoingSignal:
    """A signal an entity sends to another entity (the Python SDK has no API for it; the protocol has)."""

    target: EntityId
    operation: str
    input: str | None


@dataclass(frozen=True)
class BatchResult:
    """What one batch did: the entity afterwards, one outcome per operation, and the signals it sends."""

    record: EntityRecord
    outcomes: tuple[OperationOutcome, ...]
    signals: tuple[OutgoingSignal, ...] = ()
    error: str | None = None


def _json_text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise EntityProtocolError(f"{what} must be JSON text (a string)")
    _check_payload(value, what)
    try:
        json.loads(value)
    except ValueError as exc:
        raise EntityProtocolError(f"{what} is not valid JSON text: {exc}") from exc
    return value


def _outcome(item: Any, index: int) -> OperationOutcome:
    if not isinstance(item, dict):
        raise EntityProtocolError(f"results[{index}] must be an object")
    is_error = item.get("isError")
    duration = item.get("duration", 0)
    if not isinstance(is_error, bool):
        raise EntityProtocolError(f"results[{index}].isError must be a boolean")
    if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not math.isfinite(duration):
        raise EntityProtocolError(f"results[{index}].duration must be a number of milliseconds")
    result = _json_text(item.get("result"), f"results[{index}].result")
    return OperationOutcome(is_error, result, max(0, int(duration)))


def _signal(item: Any, index: int) -> OutgoingSignal:
    if not isinstance(item, dict) or not isinstance(item.get("target"), dict):
        raise EntityProtocolError(f"signals[{index}] must be an object with a target {{name, key}}")
    target = EntityId.of(item["target"].get("name"), item["target"].get("key"))
    given = item.get("input")
    if given is not None and not isinstance(given, str):
        raise EntityProtocolError(f"signals[{index}].input must be JSON text or null")
    return OutgoingSignal(target, _check_operation(item.get("name")), _check_payload(given, f"signals[{index}].input"))


def parse_batch_response(returned: Any, batch_size: int) -> BatchResult:
    """The checked result of an entity function's answer (its return value: JSON text, or a dict).

    Raises ``EntityProtocolError`` naming the first problem; the caller then applies ``failed_batch``.
    """
    if isinstance(returned, (bytes, bytearray)):
        returned = bytes(returned).decode("utf-8", "replace")
    if isinstance(returned, str):
        try:
            returned = json.loads(returned)
        except ValueError as exc:
            raise EntityProtocolError(f"the entity function did not return JSON: {exc}") from exc
    if not isinstance(returned, dict):
        raise EntityProtocolError("the entity function must return a JSON object")
    exists = returned.get("entityExists")
    if not isinstance(exists, bool):
        raise EntityProtocolError("entityExists must be a boolean")
    state = returned.get("entityState")
    state = None if state is None else _json_text(state, "entityState")
    results = returned.get("results")
    if not isinstance(results, list) or len(results) != batch_size:
        raise EntityProtocolError(f"results must be a list of one result per operation ({batch_size})")
    signals = returned.get("signals") or []
    if not isinstance(signals, list):
        raise EntityProtocolError("signals must be a list")
    outcomes = tuple(_outcome(item, i) for i, item in enumerate(results))
    record = EntityRecord(True, state) if exists else EntityRecord(False, None)
    return BatchResult(record, outcomes, tuple(_signal(item, i) for i, item in enumerate(signals)))


def failed_batch(record: EntityRecord, batch_size: int, message: str, *, raw: bool = False) -> BatchResult:
    """A batch whose entity function failed or answered nonsense: the state stays as it was, every
    operation fails with ``message`` (raw for a timeout, as the extension sends it), nothing is signalled."""
    result = message if raw else json.dumps(message)
    outcome = OperationOutcome(True, result, 0, raw)
    return BatchResult(record, tuple(outcome for _ in range(batch_size)), (), message)


# ---------------------------------------------------------------------------------------------------
# effects of a batch
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallResponse:
    """The answer to one call: an ``EventRaised`` for the calling orchestration's execution."""

    instance_id: str
    execution_id: str | None
    event_name: str
    event_input: str


@dataclass(frozen=True)
class BatchEffects:
    """Everything a finished batch changes, applied by the task hub in one transaction."""

    record: EntityRecord
    responses: tuple[CallResponse, ...]
    signals: tuple[tuple[EntityId, EntityRequest], ...]


def batch_effects(
    entity: EntityId, requests: Sequence[EntityRequest], result: BatchResult, new_ids: Sequence[str]
) -> BatchEffects:
    """The new entity record, one response per call (in batch order) and the signals to enqueue.

    ``new_ids`` gives a fresh request id per outgoing signal (the caller owns randomness).
    """
    if len(result.outcomes) != len(requests):
        raise EntityProtocolError("one outcome per operation is needed")
    if len(new_ids) < len(result.signals):
        raise EntityProtocolError("one request id per outgoing signal is needed")
    responses = tuple(
        CallResponse(r.parent_instance, r.parent_execution, r.id, o.response_input())
        for r, o in zip(requests, result.outcomes, strict=True)
        if not r.is_signal and r.parent_instance is not None
    )
    signals = tuple(
        (s.target, EntityRequest(rid, s.operation, s.input, True, entity.scheduler_id))
        for s, rid in zip(result.signals, new_ids, strict=False)
    )
    return BatchEffects(result.record, responses, signals)
