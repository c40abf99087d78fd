"""Test app for the devhost Event Grid emulator: an Event Grid starter with a durable client."""

from __future__ import annotations

import json
import os
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.event_grid_trigger(arg_name="event")
@app.durable_client_input(client_name="client")
async def on_blob_created(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    out = Path(os.environ["DEVHOST_TEST_OUT"])
    name = event.subject.rsplit("/blobs/", 1)[1]
    if name.startswith("fail-") and not (out / "allow-failures").exists():
        raise RuntimeError(f"refusing {name}")
    # Record what the function was given, in the names of the object it got (the Python worker hands a
    # func.CloudEvent for CloudEvents delivery with azure-functions >= 1.25, else a func.EventGridEvent).
    record: dict = {"kind": type(event).__name__, "id": event.id, "subject": event.subject, "data": event.get_json()}
    if isinstance(event, func.CloudEvent):
        record |= {
            "type": event.type,
            "source": event.source,
            "specversion": event.specversion,
            "time": event.time.isoformat() if event.time else None,
            "datacontenttype": event.datacontenttype,
            "extensions": event.extension_attrs,
        }
    else:
        record |= {
            "topic": event.topic,
            "eventType": event.event_type,
            "eventTime": event.event_time.isoformat() if event.event_time else None,
            "dataVersion": event.data_version,
        }
    instance_id = await client.start_new("note_event", None, {"name": name})
    record["instanceId"] = instance_id
    # write then rename, so a reader never sees a half-written file
    partial = out / f"{event.id}.json.partial"
    partial.write_text(json.dumps(record))
    partial.replace(out / f"{event.id}.json")


@app.orchestration_trigger(context_name="context")
def note_event(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("shout", context.get_input()["name"])
    return result


@app.activity_trigger(input_name="name")
def shout(name: str) -> str:
    return name.upper()
