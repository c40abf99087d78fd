"""Event Grid emulator: blob-created events from Azurite, delivered at least once with retries.

Subscriptions come from ``<app>/config/eventgrid-subscriptions.json`` (``function``,
``storageConnectionSetting``, ``includedEventTypes``, ``subjectBeginsWith``/``subjectEndsWith``,
``advancedFilters``, ``retryPolicy``, ``deadLetterContainer``, ``eventDeliverySchema``:
``EventGridSchema`` (default) or ``CloudEventSchemaV1_0``; ``DEVHOST_EVENTGRID_SCHEMA`` overrides it for
every subscription). Filters apply to the event before it is put in the delivery schema. The subscribed
container is listed every ``POLL_S`` (``devhost.blob_listing``: one request per 5,000 blobs, scanned for names
and ETags), or less often when it holds many blobs (``poll_interval``: at most ``LISTED_PER_S`` listed blobs a
second, so the cost stays bounded however large the container grows); a blob whose (name, etag) was not seen
before yields a ``Microsoft.Storage.BlobCreated`` event shaped like Event Grid's. ``data.api`` cannot be observed by
polling: it is ``CopyBlob`` if the blob has copy properties, ``PutBlockList`` if it has committed blocks,
else ``PutBlob``.

The seen (name, etag) pairs and the pending deliveries of one poll are written in one SQLite transaction, so
a killed host redelivers (at least once); the seen pairs are also kept in memory, read from SQLite once.
Failed deliveries are retried on Event Grid's schedule (10 s, 30 s, 1 m, 5 m, 10 m, 30 m, 1 h, 3 h, 6 h, then
every 12 h) multiplied by ``DEVHOST_EVENTGRID_RETRY_SCALE``; after ``maxDeliveryAttempts`` (or the event TTL)
the event is dead-lettered: kept in SQLite (listable and re-drivable over HTTP) and written as a JSON blob to
the dead-letter container.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devhost.blob_listing import ContainerLister, ContainerMissing, ListedBlob
from devhost.protocol import iso

if TYPE_CHECKING:
    from devhost.host import Host

SCHEDULE_S = [10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600]
EVERY_S = 12 * 3600
TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/devhost/providers/"
    "Microsoft.Storage/storageAccounts/devstoreaccount1"
)
SINGLE_PUT_LIMIT = 64 * 1024 * 1024
#: Seconds between container listings, and the most blobs listed per second on average: a container of more
#: than POLL_S * LISTED_PER_S blobs is listed less often (Azurite spends ~0.15 ms per listed blob, so listing
#: stays under ~15 % of a core however large the container grows).
POLL_S = 0.5
LISTED_PER_S = 1000
EVENTGRID_SCHEMA = "EventGridSchema"
CLOUDEVENT_SCHEMA = "CloudEventSchemaV1_0"
DELIVERY_SCHEMAS = (EVENTGRID_SCHEMA, CLOUDEVENT_SCHEMA)
SCHEMA_OVERRIDE_ENV = "DEVHOST_EVENTGRID_SCHEMA"


def delivery_schema(sub: dict[str, Any]) -> str:
    """The subscription's ``eventDeliverySchema`` (``DEVHOST_EVENTGRID_SCHEMA`` overrides every subscription)."""
    chosen = os.environ.get(SCHEMA_OVERRIDE_ENV) or sub.get("eventDeliverySchema") or EVENTGRID_SCHEMA
    if chosen not in DELIVERY_SCHEMAS:
        raise ValueError(
            f"Event Grid subscription {sub.get('name') or sub.get('function')!r}: eventDeliverySchema "
            f"{chosen!r} is not one of {', '.join(DELIVERY_SCHEMAS)}"
        )
    return str(chosen)


CONVERTER_ENV = "DEVHOST_EVENTGRID_CONVERTER"
CONVERTERS = ("library", "legacy")


def converter_mode() -> str:
    """How events are turned into the function's argument (``DEVHOST_EVENTGRID_CONVERTER``).

    ``library`` (default): the installed ``azure.functions`` converter, which is what the Python worker
    uses when the app's own azure-functions wins (Python 3.13+, or ``PYTHON_ISOLATE_WORKER_DEPENDENCIES=1``);
    from azure-functions 1.25 it gives a ``func.CloudEvent`` (``type``, ``source``, ``time``) for an event
    with ``specversion``, else a ``func.EventGridEvent``. ``legacy``: the converter of azure-functions before
    CloudEvents support, which a worker bundling an older library applies: always a ``func.EventGridEvent``
    read from the Event Grid field names, so a CloudEvent arrives with ``event_type``, ``topic``,
    ``event_time`` and ``data_version`` all None.
    """
    mode = os.environ.get(CONVERTER_ENV) or "library"
    if mode not in CONVERTERS:
        raise ValueError(f"{CONVERTER_ENV}={mode!r} is not one of {', '.join(CONVERTERS)}")
    return mode


def decode_event(event: dict[str, Any], mode: str) -> Any:
    """The trigger argument for one event, as the Python worker builds it (see ``converter_mode``)."""
    from azure.functions import EventGridEvent, meta
    from azure.functions.eventgrid import EventGridEventInConverter

    if mode == "legacy":
        # the worker passes missing fields as None although the SDK annotates them str: keep that (Any)
        fields: dict[str, Any] = {
            "id": event.get("id"),
            "topic": event.get("topic"),
            "subject": event.get("subject"),
            "event_type": event.get("eventType"),
            "data": event.get("data"),
            "data_version": event.get("dataVersion"),
        }
        return EventGridEvent(event_time=EventGridEventInConverter._parse_datetime(event.get("eventTime")), **fields)
    return EventGridEventInConverter.decode(meta.Datum(type="json", value=json.dumps(event)), trigger_metadata=None)


def to_cloud_event(event: dict[str, Any]) -> dict[str, Any]:
    """An Event Grid schema event as Event Grid delivers it to a ``CloudEventSchemaV1_0`` subscription:
    ``source`` is the topic (the storage account's resource id), ``type`` the event type, ``time`` the
    event time; ``dataVersion``/``metadataVersion`` have no CloudEvents counterpart."""
    return {
        "specversion": "1.0",
        "type": event["eventType"],
        "source": event["topic"],
        "id": event["id"],
        "time": event["eventTime"],
        "subject": event["subject"],
        "datacontenttype": "application/json",
        "data": event.get("data"),
    }


def retry_delay(attempts: int, scale: float) -> float:
    """Delay before the next attempt after ``attempts`` failed deliveries."""
    base = SCHEDULE_S[attempts - 1] if attempts - 1 < len(SCHEDULE_S) else EVERY_S
    return base * scale


def load_subscriptions(app_dir: Path) -> list[dict[str, Any]]:
    """Read the subscriptions file (missing → none)."""
    path = app_dir / "config" / "eventgrid-subscriptions.json"
    if not path.exists():
        return []
    subs = json.loads(path.read_text(encoding="utf-8")).get("subscriptions") or []
    return [s for s in subs if isinstance(s, dict)]


def _lookup(event: dict[str, Any], key: str) -> Any:
    cur: Any = event
    for part in key.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def matches(sub: dict[str, Any], event: dict[str, Any]) -> bool:
    """Apply the subscription's filters to an event."""
    types = sub.get("includedEventTypes")
    if types and event.get("eventType") not in types:
        return False
    subject = str(event.get("subject", ""))
    if sub.get("subjectBeginsWith") and not subject.startswith(sub["subjectBeginsWith"]):
        return False
    if sub.get("subjectEndsWith") and not subject.endswith(sub["subjectEndsWith"]):
        return False
    for f in sub.get("advancedFilters") or []:
        value = _lookup(event, f.get("key", ""))
        op = f.get("operatorType")
        values = f.get("values") or []
        text = "" if value is None else str(value).lower()
        if op == "StringIn" and text not in {str(v).lower() for v in values}:
            return False
        if op == "StringNotIn" and text in {str(v).lower() for v in values}:
            return False
        if op == "StringBeginsWith" and not any(text.startswith(str(v).lower()) for v in values):
            return False
        if op == "StringEndsWith" and not any(text.endswith(str(v).lower()) for v in values):
            return False
        if op == "StringContains" and not any(str(v).lower() in text for v in values):
            return False
    return True


def container_of(sub: dict[str, Any]) -> str | None:
    """Container named by ``subjectBeginsWith`` (``/blobServices/default/containers/<c>/…``)."""
    prefix = str(sub.get("subjectBeginsWith") or "")
    parts = prefix.split("/")
    if len(parts) > 4 and parts[1:4] == ["blobServices", "default", "containers"] and parts[4]:
        return parts[4]
    return None


def poll_interval(listed: int) -> float:
    """Seconds until the next listing after one that listed ``listed`` blobs: ``POLL_S``, or longer for a large
    container (``LISTED_PER_S``). It follows the container's size, not the listing's duration, which a busy
    machine stretches and which would then delay events exactly when uploads pour in."""
    return max(POLL_S, listed / LISTED_PER_S)


def blob_created_event(container: str, blob: ListedBlob, url: str, api: str) -> dict[str, Any]:
    """A ``Microsoft.Storage.BlobCreated`` event as Event Grid builds it."""
    when = blob.last_modified.timestamp() if blob.last_modified else time.time()
    return {
        "topic": TOPIC,
        "subject": f"/blobServices/default/containers/{container}/blobs/{blob.name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": str(uuid.uuid4()),
        "data": {
            "api": api,
            "clientRequestId": str(uuid.uuid4()),
            "requestId": str(uuid.uuid4()),
            "eTag": blob.etag if blob.etag.startswith('"') else f'"{blob.etag}"',
            "contentType": blob.content_type,
            "contentLength": blob.size,
            "blobType": blob.blob_type,
            "url": url,
            "sequencer": f"{time.time_ns():032x}",
            "storageDiagnostics": {"batchId": str(uuid.uuid4())},
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": iso(when).replace("Z", "0Z"),
    }


class EventGridEmulator:
    """Polls Azurite and delivers events to eventGridTrigger functions."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.store = host.store
        self.scale = float(os.environ.get("DEVHOST_EVENTGRID_RETRY_SCALE", "1"))
        self.subs = [s for s in load_subscriptions(host.app_dir) if s.get("function") in host.registry.eventgrid]
        self.schemas = {id(s): delivery_schema(s) for s in self.subs}  # fails fast on an unknown schema
        self._clients: dict[str, Any] = {}
        self._listers: dict[str, ContainerLister] = {}
        self._seen: dict[str, dict[str, str]] = {}  # "<subscription>/<container>" -> blob -> etag
        self._warned: set[str] = set()
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ polling

    def _client(self, setting: str) -> Any:
        from azure.storage.blob import BlobServiceClient

        if setting not in self._clients:
            conn = os.environ.get(setting)
            if not conn:
                if setting not in self._warned:
                    self._warned.add(setting)
                    print(f"devhost: Event Grid: app setting {setting!r} is not set; not polling", file=sys.stderr)
                return None
            self._clients[setting] = BlobServiceClient.from_connection_string(conn)
        return self._clients[setting]

    def _lister(self, setting: str) -> ContainerLister | None:
        if setting not in self._listers:
            svc = self._client(setting)
            if svc is None:
                return None
            self._listers[setting] = ContainerLister(svc)
        return self._listers[setting]

    def _api_of(self, lister: ContainerLister, container: str, blob: ListedBlob) -> str:
        if blob.copied:
            return "CopyBlob"
        if blob.size > SINGLE_PUT_LIMIT or lister.has_committed_blocks(container, blob.name):
            return "PutBlockList"
        return "PutBlob"

    def _seen_of(self, key: str) -> dict[str, str]:
        """The (blob, etag) pairs already seen for ``key`` ("<subscription>/<container>"), read once."""
        if key not in self._seen:
            rows = self.store.query("SELECT blob, etag FROM eg_seen WHERE subscription=?", (key,))
            self._seen[key] = {r["blob"]: r["etag"] for r in rows}
        return self._seen[key]

    def poll_once(self) -> int:
        """List subscribed containers once; queue deliveries for new blobs. Returns how many blobs it listed
        (``poll_interval`` of that paces the next poll)."""
        listed_in_all = 0
        for sub in self.subs:
            setting = str(sub.get("storageConnectionSetting", ""))
            svc, lister = self._client(setting), self._lister(setting)
            if svc is None or lister is None:
                continue
            sub_name = str(sub.get("name") or sub["function"])
            named = container_of(sub)
            containers = (
                [named]
                if named
                else [c.name for c in svc.list_containers() if c.name != sub.get("deadLetterContainer")]
            )
            for cname in containers:
                key = f"{sub_name}/{cname}"
                seen = self._seen_of(key)
                try:
                    listed = lister.blobs(cname)
                except ContainerMissing:
                    continue
                listed_in_all += len(listed)
                fresh = [b for b in listed if seen.get(b.name) != b.etag]
                if not fresh:
                    continue
                retry = sub.get("retryPolicy") or {}
                events = []
                for entry in fresh:
                    blob = entry.details()
                    api = self._api_of(lister, cname, blob)
                    ev = blob_created_event(cname, blob, lister.blob_url(cname, blob.name), api)
                    if matches(sub, ev):
                        events.append(to_cloud_event(ev) if self.schemas[id(sub)] == CLOUDEVENT_SCHEMA else ev)
                now = time.time()
                with self.store.tx() as conn:
                    conn.executemany(
                        "INSERT INTO eg_seen(subscription, blob, etag) VALUES(?,?,?) ON CONFLICT"
                        "(subscription, blob) DO UPDATE SET etag=excluded.etag",
                        [(key, blob.name, blob.etag) for blob in fresh],
                    )
                    for out in events:
                        self._insert(conn, sub, out, now, retry)
                seen.update((blob.name, blob.etag) for blob in fresh)
        return listed_in_all

    def _insert(self, conn: Any, sub: dict[str, Any], ev: dict[str, Any], now: float, retry: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO eg_deliveries(id, subscription, function, event, attempts, next_at, first_at, state, "
            "max_attempts, ttl_minutes, dead_letter_container, storage_setting) VALUES(?,?,?,?,0,?,?,"
            "'pending',?,?,?,?)",
            (
                ev["id"],
                str(sub.get("name") or sub["function"]),
                sub["function"],
                json.dumps(ev),
                now,
                now,
                int(retry.get("maxDeliveryAttempts", 30)),
                float(retry.get("eventTimeToLiveInMinutes", 1440)),
                sub.get("deadLetterContainer"),
                sub.get("storageConnectionSetting"),
            ),
        )

    # ------------------------------------------------------------------ delivery

    async def deliver_due(self) -> int:
        """Attempt every due delivery once (concurrently); returns how many were attempted."""
        rows = self.store.query(
            "SELECT * FROM eg_deliveries WHERE state='pending' AND next_at<=? ORDER BY next_at LIMIT 32", (time.time(),)
        )
        await asyncio.gather(*(self._attempt(dict(r)) for r in rows))
        return len(rows)

    async def _attempt(self, row: dict[str, Any]) -> None:
        info = self.host.registry.eventgrid.get(row["function"])
        ev = json.loads(row["event"])
        err = "function not found" if info is None else await self.host.invoke_eventgrid(info, ev)
        now = time.time()
        if err is None:
            self.store.execute("DELETE FROM eg_deliveries WHERE id=?", (row["id"],))
            return
        attempts = int(row["attempts"]) + 1
        expired = now - float(row["first_at"]) > float(row["ttl_minutes"]) * 60 * self.scale
        if attempts >= int(row["max_attempts"]) or expired:
            reason = "MaxDeliveryAttemptsExceeded" if not expired else "TimeToLiveExceeded"
            self.store.execute(
                "UPDATE eg_deliveries SET state='deadlettered', attempts=?, last_error=?, "
                "dead_lettered_time=? WHERE id=?",
                (attempts, err, iso(now), row["id"]),
            )
            await asyncio.to_thread(self._write_dead_letter, row, ev, attempts, err, reason, now)
            return
        self.store.execute(
            "UPDATE eg_deliveries SET attempts=?, last_error=?, next_at=? WHERE id=?",
            (attempts, err, now + retry_delay(attempts, self.scale), row["id"]),
        )

    def _write_dead_letter(
        self, row: dict[str, Any], ev: dict[str, Any], attempts: int, err: str, reason: str, now: float
    ) -> None:
        container = row.get("dead_letter_container")
        if not container or not row.get("storage_setting"):
            return
        try:
            svc = self._client(str(row["storage_setting"]))
            if svc is None:
                return
            cc = svc.get_container_client(container)
            if not cc.exists():
                cc.create_container()
            dt = datetime.fromtimestamp(now, UTC)
            path = f"DEVSTOREACCOUNT1/{str(row['subscription']).upper()}/{dt:%Y/%m/%d/%H}/{ev['id']}.json"
            body = [
                ev
                | {
                    "deadLetterReason": reason,
                    "deliveryAttempts": attempts,
                    "lastDeliveryOutcome": "Failed",
                    "lastHttpStatusCode": 500,
                    "lastDeliveryError": err,
                    "publishTime": iso(float(row["first_at"])),
                    "lastDeliveryAttemptTime": iso(now),
                }
            ]
            cc.upload_blob(path, json.dumps(body).encode(), overwrite=True)
        except Exception:  # noqa: BLE001 - the SQLite record is the source of truth
            traceback.print_exc()

    # ------------------------------------------------------------------ admin API

    def list_deadletters(self) -> dict[str, Any]:
        """JSON for ``GET /admin/eventgrid/deadletters``."""
        rows = self.store.query("SELECT * FROM eg_deliveries WHERE state='deadlettered' ORDER BY dead_lettered_time")
        return {
            "value": [
                {
                    "id": r["id"],
                    "subscription": r["subscription"],
                    "function": r["function"],
                    "deliveryAttempts": r["attempts"],
                    "lastError": r["last_error"],
                    "deadLetteredTime": r["dead_lettered_time"],
                    "event": json.loads(r["event"]),
                }
                for r in rows
            ]
        }

    def redrive(self, ids: list[str] | None) -> list[str]:
        """Queue dead-lettered events again (all if ``ids`` is None); returns the ids re-driven."""
        rows = self.store.query("SELECT id FROM eg_deliveries WHERE state='deadlettered'")
        chosen = [r["id"] for r in rows if ids is None or r["id"] in ids]
        now = time.time()
        with self.store.tx() as conn:
            for i in chosen:
                conn.execute(
                    "UPDATE eg_deliveries SET state='pending', attempts=0, next_at=?, first_at=?, "
                    "dead_lettered_time=NULL WHERE id=?",
                    (now, now, i),
                )
        self._wake.set()
        return chosen

    async def run(self) -> None:
        """Poll and deliver until cancelled."""
        next_poll = 0.0
        while True:
            try:
                if self.subs and time.monotonic() >= next_poll:
                    started = time.monotonic()
                    listed = await asyncio.to_thread(self.poll_once)
                    next_poll = started + poll_interval(listed)
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep polling
                traceback.print_exc()
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), 0.2)
            except TimeoutError:
                pass
