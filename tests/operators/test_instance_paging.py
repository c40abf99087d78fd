"""Instance queries page like the Durable extension: the operator API must follow every continuation token.

The stand-in (tests/fakes/durable_management.py) holds a few hundred runs and answers 100 per page without
``top``, with tokens, token-only empty pages and an empty token at the end. ``/api/runs``, bulk replay and
``/api/stats`` run on the SDK's real ``DurableOrchestrationClient`` built from a binding that points at it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import azure.durable_functions as df
import azure.functions as func
import pytest
from aiohttp.test_utils import TestServer
from azure.durable_functions.models.utils import http_utils as sdk_http

from imagepipe.composition import reset_services
from imagepipe.ids import instance_id, new_image_id
from imagepipe.operators.instances import (
    InstanceQueryError,
    TooManyInstancesError,
    instances_endpoint,
    query_instances,
)
from tests.fakes.durable_management import FakeManagementApi, Instance
from triggers import api_runs, api_stats

pytestmark = pytest.mark.unit

COUNT = 350
T = TypeVar("T")


def fleet(count: int = COUNT) -> list[Instance]:
    """``count`` pipeline runs created 10 s apart (newest now): every 7th Failed, every 11th Running.

    "Now" is the time of the call, not of the import: the handlers under test read the clock themselves.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    out = []
    for i in range(count):
        created = now - timedelta(seconds=10 * i + 5)
        image_id = new_image_id(int(created.timestamp() * 1000))
        status = "Failed" if i % 7 == 3 else "Running" if i % 11 == 5 else "Completed"
        output = "Orchestrator function 'image_pipeline' failed: analyze_image failed (vision_unavailable): x"
        out.append(
            Instance(
                instance_id=instance_id(image_id, f'"0x8D{i:04d}"'),
                name="image_pipeline",
                runtime_status=status,
                created=created,
                updated=created + timedelta(seconds=4),
                input={"imageId": image_id, "source": "eventgrid"},
                output=output if status == "Failed" else None,
                custom_status={"stage": status.lower(), "imageId": image_id},
            )
        )
    return out


@asynccontextmanager
async def serving(api: FakeManagementApi) -> AsyncIterator[str]:
    server = TestServer(api.app(), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def run(api: FakeManagementApi, body: Callable[[str], Awaitable[T]]) -> T:
    # The SDK keeps one aiohttp session per process, bound to the event loop that made it: each asyncio.run
    # here is a new loop, so start from no session (the Functions worker has one loop for its lifetime).
    sdk_http._client_session = None

    async def main() -> T:
        async with serving(api) as origin:
            return await body(origin)

    return asyncio.run(main())


# ---------------------------------------------------------------------------------------------------
# the paging helper
# ---------------------------------------------------------------------------------------------------


def test_every_page_is_collected_through_empty_pages() -> None:
    api = FakeManagementApi(fleet(), empty_every=3)
    found = run(api, lambda origin: query_instances(api.binding(origin), top=100))
    assert sorted(i["instanceId"] for i in found) == sorted(i.instance_id for i in api.instances)
    assert any(q.returned == 0 and q.next_token for q in api.seen), "the stand-in served a token-only empty page"
    # 350 runs at 100 a page are 4 pages, plus the injected empty one (the 3rd); the last has an empty token
    assert len(api.seen) == 5 and api.seen[2].returned == 0 and api.seen[-1].next_token == ""
    assert all(q.path == "/durabletask/instances/" and q.query["top"] == "100" for q in api.seen)


def test_filters_reach_the_extension_and_sparse_pages_are_followed() -> None:
    api = FakeManagementApi(fleet())
    since = api.instances[0].created - timedelta(minutes=40)
    found = run(
        api, lambda origin: query_instances(api.binding(origin), runtime_status=["Failed"], created_from=since, top=25)
    )
    expected = {i.instance_id for i in api.instances if i.runtime_status == "Failed" and i.created >= since}
    assert {i["instanceId"] for i in found} == expected and len(expected) > 25
    assert any(q.returned == 0 for q in api.seen[:-1])  # a scanned chunk without a Failed run: empty, with a token
    assert api.seen[0].query["runtimeStatus"] == "Failed" and api.seen[0].query["createdTimeFrom"].endswith("Z")
    assert json.loads(found[0]["input"])["source"] == "eventgrid"  # showInput=true


def test_without_rpc_base_url_the_public_endpoint_gets_the_system_key() -> None:
    api = FakeManagementApi(fleet(120))
    found = run(api, lambda origin: query_instances(api.binding(origin, rpc=False)))
    assert len(found) == 120
    assert {q.path for q in api.seen} == {"/runtime/webhooks/durabletask/instances/"}
    assert all(q.query["code"] == api.system_key for q in api.seen)


def test_a_refused_query_is_a_clear_error() -> None:
    api = FakeManagementApi(fleet(10), system_key="right")

    async def wrong_key(origin: str) -> Any:
        binding = json.loads(api.binding(origin, rpc=False))
        binding["requiredQueryStringParameters"] = "code=wrong"
        return await query_instances(binding)

    with pytest.raises(InstanceQueryError, match="answered 401"):
        run(api, wrong_key)


def test_the_hard_cap_names_the_filters() -> None:
    api = FakeManagementApi(fleet())
    with pytest.raises(TooManyInstancesError, match="narrow the query") as info:
        run(api, lambda origin: query_instances(api.binding(origin), max_instances=120, top=50))
    assert info.value.http_status == 400
    assert len(api.seen) == 3  # stopped as soon as the cap was passed


def test_tokens_without_end_are_stopped() -> None:
    api = FakeManagementApi(fleet(5), endless=True)
    with pytest.raises(InstanceQueryError, match="pages"):
        run(api, lambda origin: query_instances(api.binding(origin), max_instances=100, top=50))
    assert 5 < len(api.seen) < 100


def test_the_sdk_client_binding_is_understood() -> None:
    api = FakeManagementApi()
    client = df.DurableOrchestrationClient(api.binding("http://127.0.0.1:9"))
    assert instances_endpoint(client).url == "http://127.0.0.1:9/durabletask/instances/"
    public = df.DurableOrchestrationClient(api.binding("http://h:1", rpc=False))
    endpoint = instances_endpoint(public)
    assert endpoint.url == "http://h:1/runtime/webhooks/durabletask/instances/"
    assert endpoint.required == (("code", api.system_key),)


# ---------------------------------------------------------------------------------------------------
# the operator API on top of it: nothing undercounted
# ---------------------------------------------------------------------------------------------------


@pytest.fixture()
def app_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    monkeypatch.setenv("IMAGES_STORAGE", "UseDevelopmentStorage=true")
    monkeypatch.setenv("RECORDS_SQLITE_PATH", str(tmp_path / "records.sqlite3"))
    reset_services()
    yield
    reset_services()


def call(handler: Any, origin: str, api: FakeManagementApi, method: str, route: str, **kw: Any) -> Awaitable[Any]:
    fn = handler.build().get_user_function().client_function
    req = func.HttpRequest(method, f"http://localhost:7071/api/{route}", **kw)
    return fn(req, df.DurableOrchestrationClient(api.binding(origin)))  # type: ignore[no-any-return]


def body_of(response: func.HttpResponse) -> dict[str, Any]:
    assert response.status_code in (200, 202), response.get_body()[:300]
    return json.loads(response.get_body())  # type: ignore[no-any-return]


@pytest.mark.usefixtures("app_settings")
def test_runs_list_counts_every_run() -> None:
    api = FakeManagementApi(fleet(), empty_every=4)

    async def body(origin: str) -> dict[str, Any]:
        return body_of(await call(api_runs.list_runs, origin, api, "GET", "runs", params={"top": "1000"}, body=b""))

    listed = run(api, body)
    assert listed["total"] == COUNT
    assert len(listed["items"]) == COUNT and listed["continuation"] is None


@pytest.mark.usefixtures("app_settings")
def test_stats_count_every_run_in_the_window() -> None:
    api = FakeManagementApi(fleet())

    async def body(origin: str) -> dict[str, Any]:
        return body_of(
            await call(api_stats.get_stats, origin, api, "GET", "stats", params={"windowMinutes": "60"}, body=b"")
        )

    stats = run(api, body)
    in_window = [i for i in api.instances if i.created >= datetime.now(UTC) - timedelta(minutes=60)]
    assert len(in_window) > 300
    assert stats["total"] == len(in_window)
    assert stats["byStatus"]["Failed"] == sum(1 for i in in_window if i.runtime_status == "Failed")


@pytest.mark.usefixtures("app_settings")
def test_bulk_replay_plans_every_failed_run() -> None:
    api = FakeManagementApi(fleet())
    failed = sum(1 for i in api.instances if i.runtime_status == "Failed")

    async def body(origin: str) -> dict[str, Any]:
        spec = json.dumps({"dryRun": True, "limit": 1000, "mode": "restart"}).encode()
        return body_of(await call(api_runs.replay_runs, origin, api, "POST", "runs/replay", body=spec))

    plan = run(api, body)
    assert failed == 50
    assert plan["matched"] == failed and len(plan["wouldReplay"]) == failed
