"""End to end on a devhost + Azurite: a vision outage and a poison image, found, explained and replayed.

One image fails permanently (the service rejects it), another transiently beyond its retries. The operator
API and the CLI find both runs and their reasons; the fault plan is cleared; a bulk rewind brings both to
Completed without running the steps that had already succeeded again.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.client import ApiError
from tests.operators.stack import CONTAINER, small_png
from tests.support.devhost import ROOT
from tests.support.stack import Stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


def cli(stack: Stack, *args: str, rc: int = 0, as_json: bool = True) -> Any:
    env = dict(os.environ, IMAGEPIPE_URL=stack.host.base, IMAGEPIPE_KEY="")
    done = subprocess.run(
        [sys.executable, "-m", "imagepipe.cli", *args, *(["--json"] if as_json else [])],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == rc, done.stderr + done.stdout
    return json.loads(done.stdout) if as_json else done.stdout


def wait_runs(stack: Stack, instances: list[str], statuses: tuple[str, ...], timeout: float = 120) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def reached() -> bool:
        for instance in instances:
            try:
                last[instance] = stack.client.run(instance)
            except ApiError as exc:
                last[instance] = {"runtimeStatus": f"error {exc.code}"}
        return all(last[i]["runtimeStatus"] in statuses for i in instances)

    assert eventually(reached, timeout, interval=0.5), (
        f"runs did not reach {statuses}: {[(i, last[i].get('runtimeStatus')) for i in instances]}"
    )
    return last


def test_outage_and_poison_image_are_found_explained_and_rewound(ops_stack: Stack, tmp_path: Path) -> None:
    stack = ops_stack
    poison, flaky = small_png(1), small_png(2)
    rules = [
        {"sha256": hashlib.sha256(poison).hexdigest(), "fault": "permanent"},
        {"sha256": hashlib.sha256(flaky).hexdigest(), "fault": "transient"},
    ]
    stack.fault_plan.write_text(json.dumps({"rules": rules}))
    files = []
    for name, data in (("poison.png", poison), ("flaky.png", flaky)):
        path = tmp_path / name
        path.write_bytes(data)
        files.append(str(path))

    uploaded = cli(stack, "upload", *files, "--profile", "general", "--wait", "--timeout", "150", rc=1)
    finals = {Path(row["file"]).name: row["final"] for row in uploaded}
    assert {n: f["status"] for n, f in finals.items()} == {"poison.png": "failed", "flaky.png": "failed"}, finals
    poison_run, flaky_run = finals["poison.png"]["instanceId"], finals["flaky.png"]["instanceId"]

    # find them: API filter and the CLI agree
    listed = stack.client.runs(status="Failed", profile="general")
    assert {r["instanceId"] for r in listed["items"]} == {poison_run, flaky_run}
    by_cli = cli(stack, "runs", "list", "--status", "failed")
    assert {r["instanceId"] for r in by_cli["items"]} == {poison_run, flaky_run}
    assert stack.client.runs(status="Completed")["items"] == []
    paged = stack.client.runs(status="Failed", top=1)
    assert len(paged["items"]) == 1 and paged["continuation"]
    rest = stack.client.runs(status="Failed", top=1, continuation=paged["continuation"])
    assert {paged["items"][0]["instanceId"], rest["items"][0]["instanceId"]} == {poison_run, flaky_run}

    # read the reasons
    poison_detail = cli(stack, "runs", "show", poison_run)
    assert poison_detail["error"]["step"] == "analyze_image"
    assert poison_detail["error"]["code"] == "InvalidImageFormat"
    steps = {s["name"]: s for s in poison_detail["timeline"]["steps"]}
    assert steps["fetch_image_metadata"]["status"] == "succeeded"
    assert steps["analyze_image"]["status"] == "failed"
    assert steps["analyze_image"]["attemptCount"] == 1
    assert steps["analyze_image"]["error"]["retryable"] is False
    assert poison_detail["links"]["record"].endswith(f"/api/images/{poison_detail['imageId']}")

    text = cli(stack, "runs", "show", poison_run, as_json=False)
    assert "InvalidImageFormat" in text and "analyze_image" in text and "fetch_image_metadata" in text
    text = cli(stack, "runs", "list", "--status", "Failed", as_json=False)
    assert poison_run in text and flaky_run in text and "2 of 2 runs" in text

    flaky_detail = stack.client.run(flaky_run)
    assert flaky_detail["error"]["code"] == "retries_exhausted"
    analyze = {s["name"]: s for s in flaky_detail["timeline"]["steps"]}["analyze_image"]
    assert analyze["attemptCount"] == 3 and analyze["failedAttempts"] == 3
    assert analyze["attempts"][0]["error"]["type"] == "TransientServiceError"
    assert "injected transient fault" in analyze["attempts"][0]["error"]["message"]
    assert all(a["durationMs"] is not None for a in analyze["attempts"])
    assert len(analyze["retryTimers"]) >= 2  # DTFx arms one more timer after the last failed attempt
    assert [t["attemptAfter"] for t in analyze["retryTimers"]][:2] == [2, 3]

    stats = cli(stack, "stats", "--window", "30")
    assert stats["byStatus"].get("Failed") == 2
    assert "retries_exhausted" in cli(stack, "stats", as_json=False)
    assert {(r["step"], r["code"]) for r in stats["failureReasons"]} == {
        ("analyze_image", "InvalidImageFormat"),
        ("analyze_image", "retries_exhausted"),
    }

    # a replay of a finished run in the wrong mode is refused; an unknown run is a 404
    with pytest.raises(ApiError) as refused:
        stack.client.request("POST", "/api/runs/nope-000000000000/replay")
    assert refused.value.status == 404

    # the poison image's rejection is recorded as a result: a rewind would replay it, so it is refused
    assert poison_detail["rewindable"] is False and flaky_detail["rewindable"] is True
    with pytest.raises(ApiError) as not_rewindable:
        stack.client.replay(poison_run, "rewind")
    assert not_rewindable.value.status == 409 and not_rewindable.value.code == "not_rewindable"

    # clear the outage; dry run, then replay both in bulk: rewind the outage victim, restart the poison image
    stack.fault_plan.write_text(json.dumps({"rules": []}))
    dry = cli(stack, "runs", "replay", "--status", "Failed")
    assert dry["dryRun"] is True
    assert {r["instanceId"]: r["action"] for r in dry["wouldReplay"]} == {poison_run: "restart", flaky_run: "rewind"}
    assert stack.client.run(poison_run)["runtimeStatus"] == "Failed"  # nothing happened on a dry run
    done = cli(stack, "runs", "replay", "--status", "Failed", "--yes")
    assert done["accepted"] == 2, done
    assert "Traceback" not in json.dumps(stack.client.runs())

    with pytest.raises(ApiError) as busy:  # a run that is running again cannot be replayed
        for _ in range(20):
            stack.client.replay(flaky_run, "rewind")
    assert busy.value.status == 409

    finished = wait_runs(stack, [poison_run, flaky_run], ("Completed",))
    for detail in finished.values():
        assert detail["scheduled"]["fetch_image_metadata"] == 1, detail["scheduled"]
        assert detail["record"]["status"] == "completed"
    log = stack.host.log.read_text().splitlines()

    def executions(run: str, function: str) -> int:
        return sum(1 for line in log if f'"instanceId": "{run}"' in line and f'"function": "{function}"' in line)

    # rewind: fetch_image_metadata ran once, before the failure; the rewind reused its result
    assert executions(flaky_run, "fetch_image_metadata") == 1
    assert executions(flaky_run, "analyze_image") == 4  # 3 failed attempts + 1 after the rewind
    assert executions(poison_run, "fetch_image_metadata") == 2  # restart: a fresh execution
    assert cli(stack, "status", finished[poison_run]["imageId"])["status"] == "completed"

    # restart (auto on a Completed run) runs it again, from the start, under the same id
    before = stack.client.run(flaky_run)["createdTime"]
    restarted = stack.client.replay(flaky_run, "auto")
    assert restarted["action"] == "restart"
    again = wait_runs(stack, [flaky_run], ("Completed",))[flaky_run]
    assert again["createdTime"] >= before and again["scheduled"]["analyze_image"] == 1


def test_lost_event_is_redriven_from_the_deadletter_container(ops_stack: Stack, tmp_path: Path) -> None:
    """An event that never started a run: its run is purged, and Azure's dead-letter blob brings it back."""
    stack = ops_stack
    path = tmp_path / "lost.png"
    path.write_bytes(small_png(3))
    final = cli(stack, "upload", str(path), "--wait", "--timeout", "120")[0]["final"]
    assert final["status"] == "completed", final
    image_id, instance = final["id"], final["instanceId"]
    # the run never happened, as far as Durable knows; the blob is there and Event Grid will not send it again
    assert cli(stack, "runs", "purge", instance)["instancesDeleted"] == 1
    with pytest.raises(ApiError) as gone:
        stack.client.run(instance)
    assert gone.value.status == 404

    info = next(stack.blobs.list(prefix=f"{image_id}."))
    event = {
        "id": "dl-1",
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
        "eventType": "Microsoft.Storage.BlobCreated",
        "subject": f"/blobServices/default/containers/{CONTAINER}/blobs/{info.name}",
        "data": {"api": "PutBlob", "eTag": f'"{info.etag}"'},
        "dataVersion": "",
        "eventTime": "2026-01-01T00:00:00.0000000Z",
        "deadLetterReason": "MaxDeliveryAttemptsExceeded",
        "deliveryAttempts": 30,
        "lastDeliveryOutcome": "GenericError",
        "lastHttpStatusCode": 500,
        "publishTime": "2026-01-01T00:00:00.0000000Z",
        "lastDeliveryAttemptTime": "2026-01-01T01:00:00.0000000Z",
    }
    blob = "acct/IMAGES-BLOB-CREATED/2026/01/01/01/dl-1.json"
    deadletters = AzureBlobStore("deadletters", connection_string=stack.env["IMAGES_STORAGE"])
    deadletters.put(blob, json.dumps([event]).encode(), content_type="application/json", metadata={})

    listed = cli(stack, "deadletters", "list")
    row = next(r for r in listed["items"] if r["blob"] == blob)
    assert row["imageId"] == image_id and row["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert row["lastHttpStatusCode"] == 500
    dry = cli(stack, "deadletters", "redrive", image_id, "--dry-run")
    assert [r["outcome"] for r in dry["results"]] == ["would_start"] and dry["deletedBlobs"] == []
    redriven = cli(stack, "deadletters", "redrive", image_id)
    assert [r["outcome"] for r in redriven["results"]] == ["started"], redriven
    assert redriven["results"][0]["instanceId"] == instance
    assert redriven["deletedBlobs"] == [blob]
    wait_runs(stack, [instance], ("Completed",))
    assert all(r["blob"] != blob for r in stack.client.deadletters()["items"])
