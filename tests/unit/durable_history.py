"""Hand-built Durable history for replay tests: feeds the real SDK exactly what the host would send."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

OS, ES, TS, TC, TF, TCR, TFI, OC = 12, 0, 4, 5, 6, 10, 11, 13


class History:
    def __init__(self, orchestration_input: Any, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.input = orchestration_input
        self.events: list[dict[str, Any]] = []
        self._episode(first=True)

    def _event(self, kind: int, event_id: int = -1, **fields: Any) -> None:
        self.events.append(
            {
                "EventType": kind,
                "EventId": event_id,
                "IsPlayed": False,
                "Timestamp": self.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                **fields,
            }
        )

    def _episode(self, first: bool = False) -> None:
        for event in self.events:
            event["IsPlayed"] = True
        self.now += timedelta(seconds=1)
        self._event(OS)
        if first:
            self._event(ES, Name="image_pipeline", Version=None, Input=json.dumps(self.input))

    def scheduled(self, task_id: int, name: str) -> History:
        self._event(TS, task_id, Name=name)
        self._event(OC)
        self._episode()
        return self

    def completed(self, task_id: int, result: Any) -> History:
        self._event(TC, TaskScheduledId=task_id, Result=json.dumps(result))
        return self

    def failed(self, task_id: int, reason: str, details: str = "") -> History:
        self._event(TF, TaskScheduledId=task_id, Reason=reason, Details=details)
        return self

    def timer(self, timer_id: int, delay_ms: int) -> History:
        fire_at = self.now + timedelta(milliseconds=delay_ms)
        self._event(TCR, timer_id, FireAt=fire_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        self._event(OC)
        self._episode()
        self.now = max(self.now, fire_at)
        self._event(TFI, TimerId=timer_id, FireAt=fire_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        return self

    def context(self, instance_id: str = "inst-1") -> str:
        return json.dumps(
            {
                "history": self.events,
                "input": self.input,
                "instanceId": instance_id,
                "isReplaying": False,
                "parentInstanceId": None,
                "upperSchemaVersion": 1,
                "upperSchemaVersionNew": 2,
            }
        )


def flatten(actions: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for action in actions:
        if isinstance(action, list):
            out.extend(flatten(action))
        elif action.get("compoundActions"):
            out.extend(flatten(action["compoundActions"]))
        else:
            out.append(action)
    return out


def run(handle: Any, history: History) -> dict[str, Any]:
    """Replay ``history`` through the SDK handle; returns the state (``error`` set when it failed)."""
    try:
        return json.loads(handle(history.context()))
    except Exception as exc:
        text = str(exc)
        marker = "$OutOfProcData$:"
        if marker not in text:
            raise
        return json.loads(text.split(marker, 1)[1])
