"""Custom labels end to end on the devhost with keys enforced: the label set API is admin-only; a set trained
with the CLI (``imagepipe labels train``) labels a later upload in its record, and search finds it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.label_images import image
from imagepipe import cli
from imagepipe.client import ImagepipeClient
from tests.support.devhost import Devhost
from tests.support.stack import start_keyed_host

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devhost]:
    running = start_keyed_host(tmp_path_factory.mktemp("labels"))
    try:
        yield running
    finally:
        running.stop()


def test_label_set_api_is_admin_only(host: Devhost) -> None:
    function_key = host.keys()["functionKeys"]["default"]
    for method, path in (
        ("GET", "/api/labelsets"),
        ("POST", "/api/labelsets"),
        ("GET", "/api/labelsets/general/garments"),
        ("POST", "/api/labelsets/general/garments/test"),
        ("DELETE", "/api/labelsets/general/garments"),
    ):
        assert requests.request(method, host.base + path, timeout=30).status_code == 401, path
        answer = requests.request(method, host.base + path, params={"code": function_key}, timeout=30)
        assert answer.status_code == 401, path


def test_trained_set_labels_an_upload_and_search_finds_it(
    host: Devhost, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = host.keys()
    function_key, master = keys["functionKeys"]["default"], keys["masterKey"]
    args = ["labels", "train", "garments", "--url", host.base, "--key", master, "--json"]
    for label in ("tshirt", "dress", "bag"):
        files = []
        for seed in range(4):
            path = tmp_path / f"{label}-{seed}.png"
            path.write_bytes(image(label, seed))
            files.append(str(path))
        args += ["--label", label, *files]
    assert cli.main(args) == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["version"] == 1 and trained["active"] is True and trained["loo"]["evaluated"] == 12

    upload = tmp_path / "new-dress.png"
    upload.write_bytes(image("dress", 900))
    client = ImagepipeClient(host.base, function_key, timeout_s=60)
    image_id = client.upload(upload)["id"]
    status = client.wait([image_id], timeout_s=240)[image_id]
    assert status["status"] == "completed", status
    record = client.get(image_id)
    assert record["customLabels"] == [
        {"labelSet": "garments", "version": 1, "name": "dress", "confidence": record["customLabels"][0]["confidence"]}
    ]
    assert record["customLabelNames"] == ["garments:dress"]
    assert [r["id"] for r in client.search(customLabel="garments:dress")["items"]] == [image_id]
    assert client.search(customLabel="garments:bag")["items"] == []

    assert cli.main(["labels", "list", "--url", host.base, "--key", master]) == 0
    assert "general/garments  active v1" in capsys.readouterr().out
    assert cli.main(["labels", "test", "garments", str(upload), "--url", host.base, "--key", master]) == 0
    assert capsys.readouterr().out.startswith("dress  confidence")
    assert cli.main(["labels", "delete", "garments", "--url", host.base, "--key", master]) == 0
    assert "deleted 1 version(s)" in capsys.readouterr().out
