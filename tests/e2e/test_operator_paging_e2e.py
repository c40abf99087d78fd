"""The operator API sees every run on a devhost that pages instance queries like the Durable extension.

The devhost answers at most 100 instances per query page without ``top`` (tests/devhost/test_management.py);
the SDK's ``get_status_by`` reads one page only, so an operator API built on it undercounts. Here a few hundred
runs of the real app are started through the public management API and ``/api/runs`` must count every one.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from imagepipe.ids import instance_id, new_image_id
from tests.support.stack import Stack, start_stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

RUNS = 230  # more than two pages of 100


@pytest.fixture(scope="module")
def paging_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = start_stack(tmp_path_factory.mktemp("paging"))
    try:
        yield stack
    finally:
        stack.stop()


def _start(stack: Stack) -> str:
    """One run as the starter would start it (for a blob that does not exist: the run ends quickly)."""
    image_id = new_image_id()
    etag = f'"0x8D{image_id[-10:].upper()}"'
    instance = instance_id(image_id, etag)
    given = {"imageId": image_id, "blobName": f"{image_id}.jpg", "etag": etag, "instanceId": instance, "source": "test"}
    status, body, _ = stack.client.request(
        "POST", f"/runtime/webhooks/durabletask/orchestrators/image_pipeline/{instance}", json_body=given
    )
    assert status == 202, body
    return instance


def test_api_runs_counts_every_run_across_query_pages(paging_stack: Stack) -> None:
    with ThreadPoolExecutor(8) as pool:
        started = set(pool.map(lambda _: _start(paging_stack), range(RUNS)))
    assert len(started) == RUNS

    def listed() -> set[str]:
        seen: set[str] = set()
        continuation: str | None = None
        while True:
            status, body, _ = paging_stack.client.request(
                "GET", "/api/runs", params={"top": 1000, "continuation": continuation}
            )
            assert status == 200, body
            assert body["total"] >= len(seen)
            seen.update(item["instanceId"] for item in body["items"])
            continuation = body.get("continuation")
            if not continuation:
                return seen

    assert eventually(lambda: started <= listed(), timeout=60), "the operator API missed runs beyond the first page"
    status, body, _ = paging_stack.client.request("GET", "/api/runs", params={"top": 1000})
    assert body["total"] >= RUNS
