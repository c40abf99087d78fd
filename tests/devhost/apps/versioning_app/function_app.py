"""Versioning test app: the official orchestration-versioning sample's scenario.

``versioned`` branches on ``context.version``: instances created under version "1.0" keep the legacy path
(one activity), newer ones take the new path (two activities). It first waits for the "Go" event, so an
instance can be in flight while host.json's ``defaultVersion`` changes. ``parent`` starts sub-orchestrations
with and without an explicit version.
"""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.activity_trigger(input_name="step")
def versioned_step(step: str) -> str:
    return step


@app.orchestration_trigger(context_name="context")
def versioned(context: df.DurableOrchestrationContext):
    if context.get_input() == "wait":
        yield context.wait_for_external_event("Go")
    if context.version == "1.0":
        # legacy path: the steps the 1.0 deployment took
        steps = [(yield context.call_activity("versioned_step", "legacy"))]
    else:
        # new path
        steps = [
            (yield context.call_activity("versioned_step", "new")),
            (yield context.call_activity("versioned_step", "extra")),
        ]
    return {"version": context.version, "steps": steps}


@app.orchestration_trigger(context_name="context")
def version_of(context: df.DurableOrchestrationContext):
    return context.version


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    pinned = yield context.call_sub_orchestrator("version_of", None, version="0.5")
    default = yield context.call_sub_orchestrator("version_of")
    return {"own": context.version, "pinned": pinned, "default": default}
