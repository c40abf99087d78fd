"""Event Grid starter: a ``Microsoft.Storage.BlobCreated`` event starts one ``image_pipeline`` run.

Event Grid delivers at least once and out of order, so the instance id is a function of the blob and its
ETag and an existing run for that version makes the delivery a no-op. Events for other containers, other
APIs or blob names we did not write are acknowledged and ignored (logged), never retried.

Both delivery schemas of the subscription work: the Event Grid schema (the worker passes an
``EventGridEvent``: ``event_type``, ``topic``) and the CloudEvents 1.0 schema (``azure.functions`` >= 1.24
passes a ``CloudEvent``: ``type``, ``source``; an older library passes an ``EventGridEvent`` whose
``event_type`` is None). Subject and data (``api``, ``eTag``) are the same in both.
"""

import logging
import re
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from imagepipe.composition import services
from imagepipe.ids import image_id_from_blob_name
from triggers.runs import start_if_new

bp = df.Blueprint()
log = logging.getLogger("imagepipe.starter")

_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<name>.+)$")
_CREATING_APIS = {"PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"}
BLOB_CREATED = "Microsoft.Storage.BlobCreated"


def event_type_of(event: Any) -> str | None:
    """The event type in either schema: ``eventType`` (Event Grid) or ``type`` (CloudEvents); None when absent."""
    kind = getattr(event, "event_type", None) or getattr(event, "type", None)
    return str(kind) if kind else None


@bp.function_name("on_image_blob_created")
@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def on_image_blob_created(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    settings = services().settings
    kind = event_type_of(event)
    # No type at all: a CloudEvent decoded by an azure.functions without CloudEvent support. The subscription
    # only delivers BlobCreated, and the data's "api" check below still rejects anything else.
    if kind is not None and kind != BLOB_CREATED:
        log.info("ignoring event %s of type %s", event.id, kind)
        return
    match = _SUBJECT.match(event.subject or "")
    data = event.get_json() or {}
    if not isinstance(data, dict):
        log.info("ignoring event %s: its data is not a JSON object", event.id)
        return
    if not match or match.group("container") != settings.images_container:
        log.info("ignoring event %s for subject %s", event.id, event.subject)
        return
    if data.get("api") not in _CREATING_APIS:
        log.info("ignoring event %s with api %s", event.id, data.get("api"))
        return
    name = match.group("name")
    image_id = image_id_from_blob_name(name)
    etag = str(data.get("eTag") or "")
    if image_id is None or not etag:
        log.warning("ignoring blob %s: not an image id name or no eTag in event %s", name, event.id)
        return
    await start_if_new(client, settings, image_id, name, etag, source="eventgrid")
