"""Event Grid dead-letter blobs -> events an operator can read and redrive.

Azure writes one JSON blob per dead-lettered delivery batch under
``<topic>/<subscription>/<yyyy>/<mm>/<dd>/<hh>/<guid>.json``: a JSON array of the original events (Event
Grid schema: ``id, eventType, subject, data, eventTime, topic, dataVersion``) each with ``deadLetterReason``,
``deliveryAttempts``, ``lastDeliveryOutcome``, ``lastHttpStatusCode``, ``publishTime`` and
``lastDeliveryAttemptTime`` added. We also accept a single event object, JSON lines, CloudEvents
(``type``/``time``) and an event wrapped as ``{"event": {...}, <dead-letter fields>}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from imagepipe.ids import image_id_from_blob_name

SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<name>.+)$")
DEADLETTER_FIELDS = (
    "deadLetterReason",
    "deliveryAttempts",
    "lastDeliveryOutcome",
    "lastHttpStatusCode",
    "publishTime",
    "lastDeliveryAttemptTime",
    "lastDeliveryError",  # the devhost's emulator adds the function's error text; Azure does not
)


class DeadLetterFormatError(ValueError):
    """The blob is not a dead-letter document we understand."""


def _normalize(item: dict[str, Any]) -> dict[str, Any]:
    """One event with its dead-letter facts at the top level (unwraps ``{"event": {...}}`` envelopes)."""
    inner = item.get("event") if isinstance(item.get("event"), dict) else None
    if inner is None:
        return item
    merged = dict(inner)
    for key, value in item.items():
        if key != "event":
            merged.setdefault(key, value)
    return merged


def parse_blob(content: bytes) -> list[dict[str, Any]]:
    """The events of one dead-letter blob; raises ``DeadLetterFormatError`` when it is not one."""
    text = content.decode("utf-8-sig", errors="replace").strip()
    if not text:
        return []
    try:
        value: Any = json.loads(text)
    except ValueError:
        try:
            value = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise DeadLetterFormatError(f"not JSON or JSON lines: {exc}") from exc
    items = value if isinstance(value, list) else [value]
    events = [_normalize(item) for item in items if isinstance(item, dict)]
    if len(events) != len(items):
        raise DeadLetterFormatError("expected JSON objects (events)")
    return events


@dataclass(frozen=True)
class BlobTarget:
    """What a BlobCreated event points at."""

    container: str
    name: str
    image_id: str | None
    etag: str


def target_of(event: dict[str, Any]) -> BlobTarget | None:
    """The blob (container, name, image id, eTag) a BlobCreated event names, or None when it names none."""
    match = SUBJECT.match(str(event.get("subject") or ""))
    if not match:
        return None
    data: dict[str, Any] = event["data"] if isinstance(event.get("data"), dict) else {}
    name = match.group("name")
    return BlobTarget(match.group("container"), name, image_id_from_blob_name(name), str(data.get("eTag") or ""))


def describe(blob_name: str, index: int, event: dict[str, Any]) -> dict[str, Any]:
    """One row of ``GET /api/deadletters``."""
    target = target_of(event)
    data: dict[str, Any] = event["data"] if isinstance(event.get("data"), dict) else {}
    row: dict[str, Any] = {
        "id": f"{blob_name}#{index}",
        "blob": blob_name,
        "index": index,
        "eventId": event.get("id"),
        "eventType": event.get("eventType") or event.get("type"),
        "subject": event.get("subject"),
        "eventTime": event.get("eventTime") or event.get("time"),
        "api": data.get("api"),
        "container": target.container if target else None,
        "blobName": target.name if target else None,
        "imageId": target.image_id if target else None,
        "eTag": target.etag if target else None,
    }
    for key in DEADLETTER_FIELDS:
        row[key] = event.get(key)
    return row


def selected(row: dict[str, Any], ids: list[str] | None) -> bool:
    """Whether a dead-letter row is chosen by ``ids`` (row ids, blob names, event ids or image ids; none = all)."""
    if not ids:
        return True
    return any(i in ids for i in (row["id"], row["blob"], row.get("eventId"), row.get("imageId")) if i)
