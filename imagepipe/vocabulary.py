"""The run vocabulary, defined once: the orchestrator and its step names, runtime statuses, history events.

Runtime statuses and history event types are the SDK's own enums (``OrchestrationRuntimeStatus``,
``HistoryEventType`` of azure-functions-durable); this module only adds what the SDK leaves implicit: which
statuses count as *active* (a run that may still write), the names the management API renders history
events with (``TaskScheduled``), and the integer codes raw Durable Task history uses for a run's status.
"""

from __future__ import annotations

from enum import StrEnum

from azure.durable_functions.models.history.HistoryEventType import HistoryEventType
from azure.durable_functions.models.OrchestrationRuntimeStatus import OrchestrationRuntimeStatus

#: The orchestrator function: one run per image blob version.
ORCHESTRATOR = "image_pipeline"


class Step(StrEnum):
    """The pipeline's activity functions, in the order a run calls them (``read_text`` only when text-heavy)."""

    FETCH_IMAGE_METADATA = "fetch_image_metadata"
    ANALYZE_IMAGE = "analyze_image"
    READ_TEXT = "read_text"
    PERSIST_RECORD = "persist_record"


ACTIVITY_STEPS: tuple[Step, ...] = tuple(Step)

RuntimeStatus = OrchestrationRuntimeStatus
#: Every runtime status name, in the order of the Durable Task ``OrchestrationStatus`` codes (0 = Running).
RUNTIME_STATUSES: tuple[str, ...] = tuple(status.value for status in OrchestrationRuntimeStatus)
#: A run in one of these may still schedule work and write the record: terminate it before deleting its image,
#: never purge it, never let the reconcile sweep end its record.
ACTIVE_STATUSES: frozenset[str] = frozenset(
    status.value
    for status in (
        RuntimeStatus.Pending,
        RuntimeStatus.Running,
        RuntimeStatus.ContinuedAsNew,
        RuntimeStatus.Suspended,
    )
)


def is_active(status: str | OrchestrationRuntimeStatus | None) -> bool:
    """Whether a run with this runtime status (name or SDK enum) may still do work."""
    name = status.value if isinstance(status, OrchestrationRuntimeStatus) else status
    return name in ACTIVE_STATUSES


def runtime_status_name(code: int) -> str:
    """The name of a raw history ``OrchestrationStatus`` code (``3`` -> ``Failed``); the number as text if unknown."""
    return RUNTIME_STATUSES[code] if 0 <= code < len(RUNTIME_STATUSES) else str(code)


def history_event_name(kind: int | str | None) -> str:
    """A history event's rendered name (``TaskScheduled``) from raw history's integer type or a rendered name."""
    if isinstance(kind, int) and not isinstance(kind, bool):
        try:
            member = HistoryEventType(kind)
        except ValueError:
            return str(kind)
        return "".join(part.capitalize() for part in member.name.split("_"))
    return str(kind)
