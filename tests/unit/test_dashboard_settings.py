"""The dashboard page reads the composition's settings (one source of settings per process): after the
settings change and the services are rebuilt, its Content-Security-Policy allows the new blob origin."""

from __future__ import annotations

from pathlib import Path

import pytest

from devhost.azurite import connection_string as storage
from imagepipe.composition import reset_services
from tests.support.inprocess import call_http

pytestmark = pytest.mark.unit


def connect_src() -> str:
    response = call_http("dashboard", "GET", "/api/dashboard", route_params={"asset": ""})
    assert response.status_code == 200, response.get_body()[:300]
    policy = response.headers["Content-Security-Policy"]
    return next(d.strip() for d in policy.split(";") if d.strip().startswith("connect-src"))


def test_page_policy_follows_the_rebuilt_services(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECORDS_SQLITE_PATH", str(tmp_path / "records.sqlite3"))
    monkeypatch.setenv("IMAGES_STORAGE", storage(10031))
    reset_services()
    try:
        assert connect_src() == "connect-src 'self' http://127.0.0.1:10031"
        monkeypatch.setenv("IMAGES_STORAGE", storage(10032))
        reset_services()
        assert connect_src() == "connect-src 'self' http://127.0.0.1:10032"
    finally:
        reset_services()
