"""Runs as operators see them: summaries of status JSON + record, filters, paging and replay decisions."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imagepipe.errors import ConflictError, InvalidInputError
from imagepipe.ids import image_id_from_instance_id
from imagepipe.operators.history import parse_run_failure
from imagepipe.timeutil import iso, millis_between, parse_time
from imagepipe.vocabulary import ACTIVE_STATUSES, RUNTIME_STATUSES, RuntimeStatus

REPLAY_MODES = ("rewind", "restart", "auto")
DEFAULT_REPLAY_LIMIT = 100
MAX_REPLAY_LIMIT = 1000


def parse_statuses(raw: str | list[str] | None) -> list[str]:
    """``"failed,Running"`` -> ``["Failed", "Running"]``; a 400 naming the allowed values on a typo."""
    if raw is None or raw == "" or raw == []:
        return []
    parts = raw if isinstance(raw, list) else str(raw).split(",")
    by_lower = {s.lower(): s for s in RUNTIME_STATUSES}
    out: list[str] = []
    for part in parts:
        key = str(part).strip().lower()
        if not key:
            continue
        if key not in by_lower:
            raise InvalidInputError(
                f"status '{str(part)[:40]}' is not one of {', '.join(RUNTIME_STATUSES)}", code="invalid_status"
            )
        if by_lower[key] not in out:
            out.append(by_lower[key])
    return out


def parse_time_param(raw: Any, name: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    value = parse_time(raw)
    if value is None:
        raise InvalidInputError(f"'{name}' must be an ISO 8601 time, not '{str(raw)[:40]}'")
    return value


@dataclass(frozen=True)
class RunFilter:
    """Filters of ``GET /api/runs`` and ``POST /api/runs/replay``; all optional, combined with AND."""

    statuses: tuple[str, ...] = ()
    profile: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    image_id: str | None = None

    def matches(self, summary: dict[str, Any]) -> bool:
        if self.statuses and summary.get("runtimeStatus") not in self.statuses:
            return False
        if self.profile and summary.get("profile") != self.profile:
            return False
        if self.image_id and summary.get("imageId") != self.image_id:
            return False
        created = parse_time(summary.get("createdTime"))
        if self.created_from and (created is None or created < self.created_from):
            return False
        if self.created_to and (created is None or created > self.created_to):
            return False
        return True


def run_filter_from(values: dict[str, Any]) -> RunFilter:
    """A filter from query parameters or a JSON body (``status``, ``profile``, ``createdFrom``, ``createdTo``)."""
    image_id = values.get("imageId") or None
    return RunFilter(
        statuses=tuple(parse_statuses(values.get("status"))),
        profile=str(values["profile"]) if values.get("profile") else None,
        created_from=parse_time_param(values.get("createdFrom"), "createdFrom"),
        created_to=parse_time_param(values.get("createdTo"), "createdTo"),
        image_id=str(image_id) if image_id else None,
    )


def input_of(status: dict[str, Any]) -> dict[str, Any]:
    """The run's input as a dict (the API may return it as JSON text)."""
    value = status.get("input")
    for _ in range(2):
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                return {}
    return value if isinstance(value, dict) else {}


def image_id_of(status: dict[str, Any]) -> str | None:
    return image_id_from_instance_id(str(status.get("instanceId") or "")) or input_of(status).get("imageId")


def failure_of(status: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any] | None:
    """Why a run failed: the record's error (written by the pipeline) when it describes this run, else the output."""
    runtime = status.get("runtimeStatus")
    if runtime not in ("Failed", "Terminated", "Canceled"):
        return None
    if runtime == "Failed" and record and isinstance(record.get("error"), dict):
        run = record.get("run") or {}
        if not run.get("instanceId") or run.get("instanceId") == status.get("instanceId"):
            error = record["error"]
            # the SDK joins an activity's reason and traceback as "reason \n details": keep the reason
            message = str(error.get("message") or "").split("\n")[0].strip()
            return {"code": error.get("code"), "message": message, "step": error.get("step")}
    if runtime != "Failed":
        return {"code": str(runtime).lower(), "message": str(status.get("output") or ""), "step": "run"}
    return parse_run_failure(status.get("output"))


def summarize(status: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    """One row of the runs table."""
    custom: dict[str, Any] = status["customStatus"] if isinstance(status.get("customStatus"), dict) else {}
    created = parse_time(status.get("createdTime"))
    updated = parse_time(status.get("lastUpdatedTime"))
    runtime = status.get("runtimeStatus")
    given = input_of(status)
    failure = failure_of(status, record)
    stage = custom.get("stage") or ("starting" if runtime == RuntimeStatus.Pending.value else None)
    return {
        "instanceId": status.get("instanceId"),
        "name": status.get("name"),
        "imageId": image_id_of(status),
        "runtimeStatus": runtime,
        "stage": stage,
        "step": custom.get("step") or (failure or {}).get("step"),
        "profile": (record or {}).get("profile"),
        "recordStatus": (record or {}).get("status"),
        "source": given.get("source"),
        "createdTime": iso(created),
        "lastUpdatedTime": iso(updated),
        "durationMs": millis_between(created, updated) if runtime not in ACTIVE_STATUSES else None,
        "error": failure,
    }


# ---------------------------------------------------------------------------------------------------
# paging: newest first, keyset continuation over (createdTime, instanceId)
# ---------------------------------------------------------------------------------------------------


def _sort_key(summary: dict[str, Any]) -> tuple[str, str]:
    return (str(summary.get("createdTime") or ""), str(summary.get("instanceId") or ""))


def encode_continuation(summary: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(_sort_key(summary))).encode()).decode().rstrip("=")


def decode_continuation(token: str) -> tuple[str, str]:
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(value, list) and len(value) == 2:
            return (str(value[0]), str(value[1]))
    except (ValueError, binascii.Error):
        pass
    raise InvalidInputError("continuation is not a token returned by this API", code="invalid_continuation")


def page(items: list[dict[str, Any]], top: int, continuation: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """Newest-first page of at most ``top`` runs after ``continuation``; the next token or None."""
    ordered = sorted(items, key=_sort_key, reverse=True)
    if continuation:
        after = decode_continuation(continuation)
        ordered = [s for s in ordered if _sort_key(s) < after]
    chunk = ordered[:top]
    return chunk, (encode_continuation(chunk[-1]) if len(ordered) > top else None)


# ---------------------------------------------------------------------------------------------------
# replay
# ---------------------------------------------------------------------------------------------------


def replay_action(runtime_status: str | None, mode: str, rewindable: bool = True) -> str:
    """``rewind`` or ``restart`` for a run in ``runtime_status``; 409 when the run is still active.

    ``rewindable`` is False when a step failed by returning a permanent failure (see
    ``history.is_rewindable``): rewinding would replay that recorded failure, so ``auto`` restarts instead.
    """
    if mode not in REPLAY_MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(REPLAY_MODES)}", code="invalid_mode")
    if runtime_status in ACTIVE_STATUSES:
        raise ConflictError(
            f"the run is {runtime_status}; wait for it to finish (or terminate it) before replaying",
            code="run_active",
        )
    if mode == "rewind":
        if runtime_status != "Failed":
            raise ConflictError(
                f"only a Failed run can be rewound (this one is {runtime_status}); use mode=restart",
                code="not_failed",
            )
        if not rewindable:
            raise ConflictError(
                "this run failed with a permanent error that its history records as a result; a rewind would "
                "replay it. Fix the cause, then use mode=restart (or auto)",
                code="not_rewindable",
            )
        return "rewind"
    if mode == "restart":
        return "restart"
    return "rewind" if runtime_status == "Failed" and rewindable else "restart"


def replay_limit(raw: Any) -> int:
    if raw is None or raw == "":
        return DEFAULT_REPLAY_LIMIT
    try:
        value = int(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"limit must be an integer, not '{str(raw)[:40]}'") from exc
    if not 1 <= value <= MAX_REPLAY_LIMIT:
        raise InvalidInputError(f"limit must be between 1 and {MAX_REPLAY_LIMIT}")
    return value


def plan_bulk_replay(
    summaries: list[dict[str, Any]], run_filter: RunFilter, mode: str, limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """(planned ``[{instanceId, imageId, runtimeStatus, action, error}]``, skipped, matched count), oldest first.

    Without a status filter only Failed runs are chosen: a bulk replay never re-runs good work by accident.
    """
    effective = run_filter if run_filter.statuses else RunFilter(("Failed",), *_rest(run_filter))
    matched = sorted((s for s in summaries if effective.matches(s)), key=_sort_key)
    planned: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for summary in matched:
        row = {k: summary.get(k) for k in ("instanceId", "imageId", "runtimeStatus", "profile", "error")}
        try:
            row["action"] = replay_action(summary.get("runtimeStatus"), mode, bool(summary.get("rewindable", True)))
        except (ConflictError, InvalidInputError) as exc:
            skipped.append({**row, "reason": exc.message})
            continue
        if len(planned) < limit:
            planned.append(row)
    return planned, skipped, len(matched)


def _rest(run_filter: RunFilter) -> tuple[str | None, datetime | None, datetime | None, str | None]:
    return (run_filter.profile, run_filter.created_from, run_filter.created_to, run_filter.image_id)
