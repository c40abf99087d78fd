"""Event Grid starter: a ``Microsoft.Storage.BlobCreated`` event starts one ``image_pipeline`` run.

Event Grid delivers at least once and out of order, so the instance id is a function of the blob and its
ETag and an existing run for that version makes the delivery a no-op. Events for other containers, other
APIs or blob names we did not write are acknowledged and ignored (logged), never retried.
"""

import logging
import re

import azure.durable_functions as df
import azure.functions as func

from imagepipe.composition import services
from imagepipe.ids import image_id_from_blob_name
from triggers.runs import start_if_new

bp = df.Blueprint()
log = logging.getLogger("imagepipe.starter")

_SUBJECT = re.compile(r"^/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<name>.+)$")
_CREATING_APIS = {"PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose"}


@bp.function_name("on_image_blob_created")
@bp.event_grid_trigger(arg_name="event")
@bp.durable_client_input(client_name="client")
async def on_image_blob_created(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    settings = services().settings
    if event.event_type != "Microsoft.Storage.BlobCreated":
        log.info("ignoring event %s of type %s", event.id, event.event_type)
        return
    match = _SUBJECT.match(event.subject or "")
    data = event.get_json() or {}
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
