"""The operator API and the dashboard's data are admin-only: a function key is refused, the master key is
accepted. The dashboard page itself (HTML, CSS, JS; no data, no key) is anonymous."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from imagepipe.adapters.azure_blob import AzureBlobStore
from tests.support.devhost import ROOT, Devhost

pytestmark = pytest.mark.e2e


def test_operator_routes_need_the_admin_key(azurite: str, tmp_path: Path) -> None:
    port = azurite.split("127.0.0.1:")[1].split("/")[0]
    env = {
        "IMAGES_STORAGE": azurite,
        "AZURITE_BLOB_PORT": port,
        "RECORDS_SQLITE_PATH": str(tmp_path / "records.sqlite3"),
        "VISION_PROVIDER": "local",
    }
    AzureBlobStore("images", connection_string=azurite).ensure_container()
    host = Devhost(ROOT, tmp_path / "devhost", env=env, no_auth=False, storage="azurite").start(timeout=120)
    try:
        keys = host.keys()
        function_key, master = keys["functionKeys"]["default"], keys["masterKey"]
        content = "/api/dashboard/images/01m8vkqn3sqjqtcnnpb61n2cr7/content"
        for path in ("/api/runs", "/api/stats", "/api/deadletters", content):
            assert requests.get(host.base + path, timeout=30).status_code == 401, path
            assert requests.get(host.base + path, params={"code": function_key}, timeout=30).status_code == 401, path
            ok = requests.get(host.base + path, headers={"x-functions-key": master}, timeout=30)
            assert ok.status_code == (404 if path == content else 200), (path, ok.text[:300])
        page = requests.get(host.base + "/api/dashboard", timeout=30)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert '<script src="/api/dashboard/dashboard.js"></script>' in page.text
        missing = requests.get(host.base + "/api/runs/nope-1", headers={"x-functions-key": master}, timeout=30)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found"
        bad = requests.get(host.base + "/api/runs", params={"status": "Broken", "code": master}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_status"
    finally:
        host.stop()
