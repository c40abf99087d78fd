"""HTTP triggers: route templates, methods, absolute URLs, auth levels and keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.devhost.harness import APPS, Devhost

pytestmark = [pytest.mark.devhost]


@pytest.fixture(scope="module")
def auth_host(tmp_path_factory: pytest.TempPathFactory, counter_db: Path) -> Iterator[Devhost]:
    state = tmp_path_factory.mktemp("auth") / "state"
    host = Devhost(APPS / "durable_app", state, env={"DEVHOST_TEST_COUNTER_DB": str(counter_db)}, no_auth=False).start()
    yield host
    host.stop()


def test_route_template_methods_and_absolute_url(auth_host: Devhost) -> None:
    r = requests.get(auth_host.base + "/api/echo/42/tail?x=1", timeout=10)
    assert r.status_code == 200
    body = r.json()
    assert body["url"] == auth_host.base + "/api/echo/42/tail?x=1"
    assert body["route"] == {"id": "42", "rest": "tail"} and body["params"] == {"x": "1"}
    assert requests.get(auth_host.base + "/api/echo/42", timeout=10).json()["route"] == {"id": "42"}
    assert requests.put(auth_host.base + "/api/echo/7", timeout=10).json()["method"] == "PUT"
    assert requests.get(auth_host.base + "/api/echo/notanint", timeout=10).status_code == 404
    assert requests.post(auth_host.base + "/api/echo/1", timeout=10).status_code == 405
    assert requests.get(auth_host.base + "/api/nothing-here", timeout=10).status_code == 404


def test_function_and_admin_keys(auth_host: Devhost) -> None:
    keys = auth_host.keys()
    fkey, master = keys["functionKeys"]["default"], keys["masterKey"]
    url = auth_host.base + "/api/secret"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"code": "wrong"}, timeout=10).status_code == 401
    assert requests.get(url, params={"code": fkey}, timeout=10).text == "function-level"
    assert requests.get(url, headers={"x-functions-key": master}, timeout=10).status_code == 200
    admin = auth_host.base + "/api/admin-only"
    assert requests.get(admin, headers={"x-functions-key": fkey}, timeout=10).status_code == 401
    assert requests.get(admin, headers={"x-functions-key": master}, timeout=10).text == "admin-level"
    # management API needs a key; the status endpoint does not
    assert requests.get(auth_host.base + "/runtime/webhooks/durabletask/instances", timeout=10).status_code == 401
    assert requests.get(auth_host.base + "/admin/host/status", timeout=10).status_code == 200


def test_keys_survive_restart(auth_host: Devhost) -> None:
    before = auth_host.keys()
    assert (auth_host.state / "keys.json").exists()
    assert before == auth_host.keys()


def test_starter_with_keys_returns_keyed_urls(auth_host: Devhost) -> None:
    fkey = auth_host.keys()["functionKeys"]["default"]
    r = requests.post(auth_host.base + "/api/orchestrators/chain", params={"code": fkey}, timeout=30)
    assert r.status_code == 202
    status_url = r.json()["statusQueryGetUri"]
    assert "code=" in status_url
    assert requests.get(status_url, timeout=10).status_code in (200, 202)


def test_unhandled_exception_is_500(auth_host: Devhost) -> None:
    assert requests.get(auth_host.base + "/api/boom", timeout=10).status_code == 500


def test_context_parameter_is_passed(auth_host: Devhost) -> None:
    body = requests.get(auth_host.base + "/api/whoami", timeout=30).json()
    assert body["function"] == "whoami" and len(body["invocationId"]) == 36 and body["id"]
