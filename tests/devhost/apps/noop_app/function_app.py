"""Benchmark app for the devhost engine: no-op activities in a chain and in a fan-out/fan-in."""

from __future__ import annotations

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.activity_trigger(input_name="value")
def noop(value: int) -> int:
    return value


@app.orchestration_trigger(context_name="context")
def noop_chain(context: df.DurableOrchestrationContext):
    n = context.get_input()["n"]
    total = 0
    for i in range(n):
        total += yield context.call_activity("noop", i)
    return total


@app.orchestration_trigger(context_name="context")
def noop_fan(context: df.DurableOrchestrationContext):
    n = context.get_input()["n"]
    results = yield context.task_all([context.call_activity("noop", i) for i in range(n)])
    return sum(results)
