"""The operator API and dashboard are admin-only: a function key is refused, the master key is accepted."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.devhost.harness import ROOT, Devhost

pytestmark = pytest.mark.e2e


def test_operator_routes_need_the_admin_key(azurite: str, tmp_path: Path) -> None:
    port = azurite.split("127.0.0.1:")[1].split("/")[0]
    env = {
        "IMAGES_STORAGE": azurite,
        "AZURITE_BLOB_PORT": port,
        "RECORDS_SQLITE_PATH": str(tmp_path / "records.sqlite3"),
        "VISION_PROVIDER": "local",
    }
    host = Devhost(ROOT, tmp_path / "devhost", env=env, no_auth=False, storage="azurite").start(timeout=120)
    try:
        keys = host.keys()
        function_key, master = keys["functionKeys"]["default"], keys["masterKey"]
        for path in ("/api/runs", "/api/stats", "/api/deadletters", "/api/dashboard"):
            assert requests.get(host.base + path, timeout=30).status_code == 401, path
            assert requests.get(host.base + path, params={"code": function_key}, timeout=30).status_code == 401, path
            ok = requests.get(host.base + path, headers={"x-functions-key": master}, timeout=30)
            assert ok.status_code == 200, (path, ok.text[:300])
        page = requests.get(host.base + "/api/dashboard", params={"code": master}, timeout=30)
        assert page.headers["content-type"].startswith("text/html") and "<script>" in page.text
        assert "//__JS__" not in page.text and "/*__CSS__*/" not in page.text
        missing = requests.get(host.base + "/api/runs/nope-1", headers={"x-functions-key": master}, timeout=30)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "run_not_found"
        bad = requests.get(host.base + "/api/runs", params={"status": "Broken", "code": master}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_status"
    finally:
        host.stop()
