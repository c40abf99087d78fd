"""Test app for the devhost conformance suite: one orchestrator per Durable feature."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


def _counter_db() -> sqlite3.Connection:
    path = Path(os.environ["DEVHOST_TEST_COUNTER_DB"])
    conn = sqlite3.connect(str(path), timeout=30)
    conn.execute("CREATE TABLE IF NOT EXISTS runs(key TEXT, ts REAL)")
    return conn


def _count(key: str) -> int:
    """Record one execution of ``key`` and return how many there have been."""
    with _counter_db() as conn:
        conn.execute("INSERT INTO runs VALUES(?, ?)", (key, time.time()))
        return int(conn.execute("SELECT COUNT(*) FROM runs WHERE key=?", (key,)).fetchone()[0])


# ---------------------------------------------------------------- HTTP


@app.route(route="orchestrators/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def http_start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    payload = json.loads(body) if body else None
    instance_id = await client.start_new(req.route_params["name"], req.params.get("id"), payload)
    return client.create_check_status_response(req, instance_id)


@app.route(route="echo/{id:int}/{rest?}", methods=["GET", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"url": req.url, "method": req.method, "route": dict(req.route_params), "params": dict(req.params)}),
        mimetype="application/json",
    )


@app.route(route="secret", methods=["GET"])
def secret(req: func.HttpRequest) -> str:
    return "function-level"


@app.route(route="admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> str:
    return "admin-level"


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> str:
    raise RuntimeError("boom")


# ---------------------------------------------------------------- activities


@app.activity_trigger(input_name="name")
def say_hello(name: str) -> str:
    return f"Hello {name}!"


@app.activity_trigger(input_name="n")
def square(n: int) -> int:
    return n * n


@app.activity_trigger(input_name="payload")
def flaky(payload: dict) -> str:
    attempt = _count(f"flaky:{payload['key']}")
    if attempt < payload["succeed_on"]:
        raise ValueError(f"flaky attempt {attempt} failed")
    return f"ok after {attempt}"


@app.activity_trigger(input_name="payload")
def fails_until_file(payload: dict) -> str:
    if not Path(payload["file"]).exists():
        raise RuntimeError("flag file missing")
    return "file found"


@app.activity_trigger(input_name="payload")
def counted(payload: dict) -> str:
    _count(f"counted:{payload['key']}")
    time.sleep(payload.get("sleep", 0))
    return f"done {payload['key']}"


@app.activity_trigger(input_name="seconds")
def sleeper(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


@app.activity_trigger(input_name="n")
def thread_probe(n: int) -> dict:
    """Which thread ran this activity, and how many threads the host process has now."""
    return {"n": n, "tid": threading.get_native_id(), "threads": len(os.listdir("/proc/self/task"))}


# ---------------------------------------------------------------- orchestrators


@app.orchestration_trigger(context_name="context")
def probe_fan(context: df.DurableOrchestrationContext):
    n = context.get_input()["n"]
    results = yield context.task_all([context.call_activity("thread_probe", i) for i in range(n)])
    return results


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext):
    a = yield context.call_activity("say_hello", "Tokyo")
    b = yield context.call_activity("say_hello", "Seattle")
    c = yield context.call_activity("say_hello", "London")
    return [a, b, c]


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):
    n = context.get_input()["n"]
    results = yield context.task_all([context.call_activity("square", i) for i in range(n)])
    return sum(results)


@app.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext):
    inp = context.get_input()
    opts = df.RetryOptions(first_retry_interval_in_milliseconds=200, max_number_of_attempts=inp["max"])
    result = yield context.call_activity_with_retry("flaky", opts, inp)
    return result


class BackoffRetryOptions(df.RetryOptions):
    """RetryOptions that also send the extension's backoffCoefficient (as the JavaScript SDK does)."""

    def __init__(self, first_ms: int, attempts: int, coefficient: float) -> None:
        super().__init__(first_ms, attempts)
        self.coefficient = coefficient

    def to_json(self):
        return {**super().to_json(), "backoffCoefficient": self.coefficient}


@app.orchestration_trigger(context_name="context")
def with_backoff(context: df.DurableOrchestrationContext):
    inp = context.get_input()
    opts = BackoffRetryOptions(200, inp["max"], 3.0)
    result = yield context.call_activity_with_retry("flaky", opts, inp)
    return result


@app.orchestration_trigger(context_name="context")
def with_timer(context: df.DurableOrchestrationContext):
    fire = context.current_utc_datetime + datetime.timedelta(seconds=1)
    yield context.create_timer(fire)
    return context.current_utc_datetime >= fire


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):
    timeout_s = context.get_input()["timeout"]
    event = context.wait_for_external_event("Approval")
    timer = context.create_timer(context.current_utc_datetime + datetime.timedelta(seconds=timeout_s))
    winner = yield context.task_any([event, timer])
    if winner == event:
        timer.cancel()
        return {"approved": event.result}
    return {"approved": None, "timedOut": True}


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):
    a = yield context.call_sub_orchestrator("chain")
    b = yield context.call_sub_orchestrator("fan_out", {"n": 3}, instance_id=context.instance_id + "-child")
    return {"chain": a, "fan": b}


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):
    n = context.get_input() or 0
    context.set_custom_status({"n": n})
    if n < 3:
        context.continue_as_new(n + 1)
        return None
    return n


@app.orchestration_trigger(context_name="context")
def failing(context: df.DurableOrchestrationContext):
    context.set_custom_status("about to fail")
    yield context.call_activity("say_hello", "x")
    raise RuntimeError("orchestrator blew up")


@app.orchestration_trigger(context_name="context")
def rewindable(context: df.DurableOrchestrationContext):
    inp = context.get_input()
    first = yield context.call_activity("counted", {"key": inp["key"]})
    second = yield context.call_activity("fails_until_file", inp)
    return [first, second]


@app.orchestration_trigger(context_name="context")
def waiter(context: df.DurableOrchestrationContext):
    value = yield context.wait_for_external_event("Go")
    return value


@app.orchestration_trigger(context_name="context")
def timeout_orch(context: df.DurableOrchestrationContext):
    result = yield context.call_activity("sleeper", 10)
    return result


@app.orchestration_trigger(context_name="context")
def crash_fan(context: df.DurableOrchestrationContext):
    inp = context.get_input()
    tasks = [context.call_activity("counted", {"key": f"{inp['key']}-{i}", "sleep": 0.05}) for i in range(3)]
    results = yield context.task_all(tasks)
    last = yield context.call_activity("counted", {"key": f"{inp['key']}-last", "sleep": 0.05})
    return results + [last]


# ---------------------------------------------------------------- timer


@app.timer_trigger(schedule="*/1 * * * * *", arg_name="timer", run_on_startup=True)
def every_second(timer: func.TimerRequest) -> None:
    _count("timer:past_due" if timer.past_due else "timer")


# ---------------------------------------------------------------- failure propagation


@app.orchestration_trigger(context_name="context")
def parent_catches(context: df.DurableOrchestrationContext):
    opts = df.RetryOptions(first_retry_interval_in_milliseconds=100, max_number_of_attempts=2)
    try:
        yield context.call_sub_orchestrator_with_retry("failing", opts)
    except Exception as exc:  # noqa: BLE001 - the test inspects the propagated message
        sub_error = str(exc)
    try:
        yield context.call_activity("no_such_activity", 1)
    except Exception as exc:  # noqa: BLE001
        act_error = str(exc)
    return {"sub": sub_error, "activity": act_error}


@app.route(route="whoami", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def whoami(req: func.HttpRequest, client: df.DurableOrchestrationClient, context: func.Context) -> str:
    instance_id = await client.start_new("chain")
    return json.dumps({"function": context.function_name, "invocationId": context.invocation_id, "id": instance_id})
