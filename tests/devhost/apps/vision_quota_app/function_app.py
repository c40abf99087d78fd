"""Test app: the vision quota entity and the orchestrator's gate of imagepipe, in front of the Azure AI Vision
adapter talking to the fake AI Vision transport (tests/fakes) — so a 429 storm can be played on the devhost.

The orchestration is a stand-in for ``image_pipeline``'s vision step: ``orchestrators.vision_gate.vision_call``
with the activity's retry policy, an activity that calls ``AzureVisionAnalyzer.analyze`` and turns a 429 into
``imagepipe.vision_quota.throttled_result`` (as ``activities/analyze_image.py`` does). HTTP endpoints start
runs, start a storm on the fake service, and read what the service saw.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from functools import cache
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from imagepipe.adapters.azure_vision import AzureVisionAnalyzer
from imagepipe.errors import TransientServiceError
from imagepipe.ports import AnalysisRequest
from imagepipe.retry import ExponentialRetryOptions
from imagepipe.vision_quota import throttled_result
from orchestrators.vision_gate import vision_call
from tests.fakes.credentials import StaticCredential
from tests.fakes.vision_transport import FakeVisionTransport
from triggers import vision_quota

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(vision_quota.bp)

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@cache
def transport() -> FakeVisionTransport:
    return FakeVisionTransport()


@cache
def analyzer() -> AzureVisionAnalyzer:
    # A wait budget below the fake's Retry-After (whole seconds): a 429 surfaces at once, as a long one does.
    return AzureVisionAnalyzer(
        "https://fakevision.cognitiveservices.azure.com/",
        StaticCredential(),
        transport=transport(),
        max_wait_s=0.5,
        retry_backoff_factor=0.001,
    )


@app.orchestration_trigger(context_name="context")
def guarded_analysis(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    given = context.get_input()
    retry = ExponentialRetryOptions(500, 2, 1.0, 1000)  # few, short retries: a storm would exhaust them
    if given.get("visionQuota") is not True:
        return (yield context.call_activity_with_retry("analyze", retry, {"n": given["n"]}))
    result = yield from vision_call(context, "analyze", retry, {"n": given["n"]})
    return result


@app.activity_trigger(input_name="step")
def analyze(step: dict[str, Any]) -> dict[str, Any]:
    try:
        result = analyzer().analyze(JPEG, AnalysisRequest(features=("tags",)))
    except TransientServiceError as exc:
        return throttled_result("analyze", exc, step)
    return {"ok": True, "n": step["n"], "tags": len(result.get("tagsResult", {}).get("values", []))}


@app.route(route="runs", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_run(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    given = req.get_json()
    instance_id = await client.start_new("guarded_analysis", None, given)
    return func.HttpResponse(json.dumps({"id": instance_id}), status_code=202, mimetype="application/json")


@app.route(route="storm", methods=["POST"])
def storm(req: func.HttpRequest) -> func.HttpResponse:
    transport().throttle_for(float(req.params["seconds"]))
    return func.HttpResponse(status_code=204)


@app.route(route="calls", methods=["GET"])
def calls(req: func.HttpRequest) -> func.HttpResponse:
    seen = [{"status": c.status, "arrived": c.arrived} for c in transport().calls]
    return func.HttpResponse(json.dumps(seen), mimetype="application/json")


@app.route(route="quota", methods=["GET"])
@app.durable_client_input(client_name="client")
async def quota_state(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    state = await client.read_entity_state(df.EntityId("vision_quota", "azure-vision"))
    return func.HttpResponse(json.dumps(state.entity_state), mimetype="application/json")
