"""The client follows the status URLs the API hands out, absolute or root-relative, on its own origin only."""

from __future__ import annotations

from typing import Any

import pytest

from imagepipe.client import ApiError, ImagepipeClient

pytestmark = pytest.mark.unit


def _recording(base: str) -> tuple[ImagepipeClient, list[tuple[str, str, Any]]]:
    client = ImagepipeClient(base, key="k")
    calls: list[tuple[str, str, Any]] = []

    def request(method: str, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
        calls.append((method, path, kwargs.get("params")))
        return 200, {"ok": True}, {}

    client.request = request  # type: ignore[method-assign]
    return client, calls


@pytest.mark.parametrize(
    "url",
    ["https://app.example/api/images/x/status?a=1", "/api/images/x/status?a=1"],
    ids=["absolute", "root-relative"],
)
def test_status_urls_on_our_origin_are_followed(url: str) -> None:
    client, calls = _recording("https://app.example")
    assert client.follow(url) == {"ok": True}
    assert calls == [("GET", "/api/images/x/status", {"a": "1"})]


@pytest.mark.parametrize(
    "url", ["https://evil.example/api/images/x/status", "//evil.example/api/images/x/status", "http://app.example/x"]
)
def test_urls_on_another_origin_are_refused_and_get_no_key(url: str) -> None:
    client, calls = _recording("https://app.example")
    with pytest.raises(ApiError) as refused:
        client.follow(url)
    assert refused.value.code == "foreign_url" and calls == []
