"""Test app for the devhost's durable entities: a function-based counter, a class-based account, the
orchestrations that call and signal them, and an HTTP API that signals and reads them through the client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


# ---------------------------------------------------------------- entities


@app.entity_trigger(context_name="context", entity_name="Counter")
def counter(context: df.DurableEntityContext) -> None:
    """Function-based: the operation name picks the branch."""
    value = context.get_state(lambda: 0)
    op = context.operation_name
    if op == "add":
        value += context.get_input()
    elif op == "reset":
        value = 0
    elif op == "get":
        context.set_result(value)
        return
    elif op == "slow_add":  # sleeps so that concurrent callers pile up behind it
        time.sleep(0.05)
        value += context.get_input()
    elif op == "hang":  # longer than functionTimeout
        time.sleep(5)
    elif op == "delete":
        context.destruct_on_exit()
        return
    else:
        raise ValueError(f"Counter has no operation {op!r}")
    context.set_state(value)


class Account:
    """Class-based: the state is the object, each public method an operation."""

    def __init__(self, balance: int = 0, history: list[int] | None = None) -> None:
        self.balance = balance
        self.history = history or []

    def deposit(self, amount: int) -> int:
        self.balance += amount
        self.history.append(amount)
        return self.balance

    def withdraw(self, amount: int) -> int:
        if amount > self.balance:
            raise ValueError(f"insufficient funds: balance {self.balance}, asked {amount}")
        self.balance -= amount
        self.history.append(-amount)
        return self.balance

    def get(self) -> dict[str, Any]:
        return {"balance": self.balance, "history": self.history}


def dispatch(cls: type[Any], context: df.DurableEntityContext) -> None:
    """Run the method named by the operation on the object kept as the entity's state."""
    obj = cls(**context.get_state(dict))
    method: Callable[..., Any] | None = getattr(obj, context.operation_name, None)
    if method is None or context.operation_name.startswith("_"):
        raise ValueError(f"{cls.__name__} has no operation {context.operation_name!r}")
    given = context.get_input()
    result = method() if given is None else method(given)
    context.set_state(vars(obj))
    context.set_result(result)


@app.entity_trigger(context_name="context", entity_name="Account")
def account(context: df.DurableEntityContext) -> None:
    dispatch(Account, context)


@app.entity_trigger(context_name="context", entity_name="Broken")
def broken(context: df.DurableEntityContext) -> None:
    """Sets a result the SDK cannot serialize: the whole invocation fails after the batch ran."""
    context.set_state(1)
    context.set_result(object())


# ---------------------------------------------------------------- orchestrations


@app.orchestration_trigger(context_name="context")
def call_and_signal(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    key = context.get_input()["key"]
    entity = df.EntityId("Counter", key)
    yield context.call_entity(entity, "reset")
    context.signal_entity(entity, "add", 5)
    first = yield context.call_entity(entity, "get")  # after the signal: FIFO from one sender
    yield context.call_entity(entity, "add", 10)
    second = yield context.call_entity(entity, "get")
    try:
        yield context.call_entity(entity, "explode")
        error = None
    except Exception as exc:  # noqa: BLE001 - the entity's exception, as a message
        error = str(exc)
    return {"first": first, "second": second, "error": error}


@app.orchestration_trigger(context_name="context")
def bank(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    entity = df.EntityId("Account", context.get_input()["key"])
    yield context.call_entity(entity, "deposit", 100)
    left = yield context.call_entity(entity, "withdraw", 30)
    try:
        yield context.call_entity(entity, "withdraw", 1000)
        refused = None
    except Exception as exc:  # noqa: BLE001 - the SDK raises a plain Exception for a failed entity operation
        refused = str(exc)
    final = yield context.call_entity(entity, "get")
    return {"left": left, "refused": refused, "final": final}


@app.orchestration_trigger(context_name="context")
def increment(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Many of these run at once against one counter: each add is applied exactly once."""
    given = context.get_input()
    return (yield context.call_entity(df.EntityId("Counter", given["key"]), "slow_add", 1))


@app.orchestration_trigger(context_name="context")
def parallel_calls(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Calls to several entities at once (fan-out/fan-in over entities)."""
    keys = context.get_input()["keys"]
    for key in keys:
        context.signal_entity(df.EntityId("Counter", key), "add", len(key))
    return (yield context.task_all([context.call_entity(df.EntityId("Counter", k), "get") for k in keys]))


@app.orchestration_trigger(context_name="context")
def call_many(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """``n`` calls one after the other (each waits for the previous answer)."""
    given = context.get_input()
    entity = df.EntityId("Counter", given["key"])
    for _ in range(given["n"]):
        yield context.call_entity(entity, "add", 1)
    return (yield context.call_entity(entity, "get"))


@app.orchestration_trigger(context_name="context")
def call_broken(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    try:
        yield context.call_entity(df.EntityId("Broken", "x"), "anything")
    except Exception as exc:  # noqa: BLE001 - the SDK raises a plain Exception for a failed entity operation
        return str(exc)
    return None


@app.orchestration_trigger(context_name="context")
def call_hanging(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    try:
        yield context.call_entity(df.EntityId("Counter", context.get_input()["key"]), "hang")
    except Exception as exc:  # noqa: BLE001 - the SDK raises a plain Exception for a failed entity operation
        return str(exc)
    return None


@app.orchestration_trigger(context_name="context")
def call_missing(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    return (yield context.call_entity(df.EntityId("NoSuchEntity", "x"), "get"))


# ---------------------------------------------------------------- HTTP through the durable client


@app.route(route="counters/{key}/{op}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def signal_counter(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    body = req.get_body()
    value = json.loads(body) if body else None
    await client.signal_entity(df.EntityId("Counter", req.route_params["key"]), req.route_params["op"], value)
    return func.HttpResponse(status_code=202)


@app.route(route="counters/{key}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def read_counter(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    state = await client.read_entity_state(df.EntityId("Counter", req.route_params["key"]))
    body = {"exists": state.entity_exists, "state": state.entity_state}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
