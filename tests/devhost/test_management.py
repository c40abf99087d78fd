"""The Durable management API as Azure serves it: paged instance queries, a keyless loopback path that
refuses browser forgeries, and JSON error bodies for every host-level 4xx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.devhost.harness import APPS, Devhost

pytestmark = [pytest.mark.devhost]

A = 150  # instances left Running
B = 150  # instances started, then terminated
SEGMENT = 150  # instances one query request scans (DEVHOST_DURABLE_QUERY_SEGMENT)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def paged(tmp_path_factory: pytest.TempPathFactory, counter_db: Path) -> Iterator[tuple[Devhost, dict[str, Any]]]:
    """A host holding A Running then B Terminated instances, with the times between the batches."""
    state = tmp_path_factory.mktemp("paged") / "state"
    env = {"DEVHOST_TEST_COUNTER_DB": str(counter_db), "DEVHOST_DURABLE_QUERY_SEGMENT": str(SEGMENT)}
    host = Devhost(APPS / "durable_app", state, env=env).start()
    base = f"{host.base}/runtime/webhooks/durabletask"
    marks: dict[str, Any] = {"t0": time.time()}
    ids_a, ids_b = [], []
    with requests.Session() as http:
        for i in range(A):
            if i == A // 2:
                marks["mid_a"] = time.time()
            r = http.post(f"{base}/orchestrators/waiter/pa-{i:03d}", timeout=30)
            assert r.status_code == 202, r.text
            ids_a.append(f"pa-{i:03d}")
        marks["t1"] = time.time()
        for i in range(B):
            r = http.post(f"{base}/orchestrators/waiter/pb-{i:03d}", timeout=30)
            assert r.status_code == 202, r.text
            ids_b.append(f"pb-{i:03d}")
        for iid in ids_b:
            assert http.post(f"{base}/instances/{iid}/terminate", params={"reason": "t"}, timeout=30).status_code == 202
    marks["a"], marks["b"] = ids_a, ids_b
    try:
        yield host, marks
    finally:
        host.stop()


def _follow(url: str, params: dict[str, Any]) -> tuple[list[str], list[int], int]:
    """Follow continuation tokens until none comes back: ids seen, page sizes, empty pages that had a token."""
    seen: list[str] = []
    sizes: list[int] = []
    empty_with_token = 0
    token = None
    for _ in range(100):
        headers = {"x-ms-continuation-token": token} if token else {}
        r = requests.get(url, params=params, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
        page = r.json()
        token = r.headers.get("x-ms-continuation-token")
        seen += [s["instanceId"] for s in page]
        sizes.append(len(page))
        if not page and token:
            empty_with_token += 1
        if not token:
            return seen, sizes, empty_with_token
    raise AssertionError("continuation tokens never ended")


def test_unpaged_query_returns_one_page_of_100_and_a_token(paged: tuple[Devhost, dict[str, Any]]) -> None:
    host, _ = paged
    r = requests.get(f"{host.base}/runtime/webhooks/durabletask/instances", timeout=30)
    assert r.status_code == 200
    assert len(r.json()) == 100  # the extension's default page size: a caller that does not page undercounts
    assert r.headers.get("x-ms-continuation-token")


def test_following_tokens_sees_every_instance_exactly_once(paged: tuple[Devhost, dict[str, Any]]) -> None:
    host, marks = paged
    url = f"{host.base}/runtime/webhooks/durabletask/instances"
    seen, sizes, _ = _follow(url, {})
    assert len(seen) == len(set(seen)) == A + B
    assert set(seen) == set(marks["a"]) | set(marks["b"])
    assert max(sizes) == 100
    seen, sizes, _ = _follow(url, {"top": 7})
    assert sorted(seen) == sorted(marks["a"] + marks["b"]) and max(sizes) == 7


def test_filters_apply_across_pages_and_a_page_may_be_empty(paged: tuple[Devhost, dict[str, Any]]) -> None:
    host, marks = paged
    url = f"{host.base}/runtime/webhooks/durabletask/instances"
    # The first scan segment holds only Running instances: an empty first page that still has a token.
    seen, sizes, empty = _follow(url, {"runtimeStatus": "Terminated"})
    assert sorted(seen) == sorted(marks["b"])
    assert sizes[0] == 0 and empty >= 1
    seen, _, _ = _follow(url, {"runtimeStatus": "running", "createdTimeFrom": _when(marks["mid_a"])})
    assert sorted(seen) == sorted(marks["a"][A // 2 :])
    seen, _, _ = _follow(url, {"runtimeStatus": "Terminated", "createdTimeTo": _when(marks["t1"])})
    assert seen == []
    seen, _, _ = _follow(url, {"createdTimeFrom": _when(marks["t0"]), "createdTimeTo": _when(marks["t1"]), "top": 40})
    assert sorted(seen) == sorted(marks["a"])


def test_bad_query_parameters_are_400_json(paged: tuple[Devhost, dict[str, Any]]) -> None:
    host, _ = paged
    url = f"{host.base}/runtime/webhooks/durabletask/instances"
    for params, headers in (
        ({"top": "0"}, {}),
        ({"top": "many"}, {}),
        ({"createdTimeFrom": "yesterday"}, {}),
        ({"runtimeStatus": "Sleeping"}, {}),
        ({}, {"x-ms-continuation-token": "not-a-token"}),
    ):
        r = requests.get(url, params=params, headers=headers, timeout=10)
        assert r.status_code == 400, (params, headers, r.text)
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.json()["error"]["code"] == "bad_request" and r.json()["error"]["message"]


# ---------------------------------------------------------------------- the keyless loopback path


def _rpc(host: Devhost) -> str:
    base: str = json.loads(host.binding())["rpcBaseUrl"]
    return base


def test_rpc_base_url_carries_a_per_process_token(durable_host: Devhost) -> None:
    rpc = _rpc(durable_host)
    assert rpc.startswith(durable_host.base + "/durabletask/") and rpc.endswith("/")
    token = rpc[len(durable_host.base + "/durabletask/") : -1]
    assert len(token) >= 24 and "/" not in token
    # without the token the keyless path does not exist
    for url in (f"{durable_host.base}/durabletask/instances/", f"{durable_host.base}/durabletask/wrong/instances/"):
        r = requests.get(url, timeout=10)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_forged_browser_requests_are_refused(durable_host: Devhost) -> None:
    rpc = _rpc(durable_host)
    forged = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    # what a page on another origin can send without a CORS preflight: a text/plain POST with forged input
    for base in (f"{durable_host.base}/durabletask/", rpc, f"{durable_host.base}/runtime/webhooks/durabletask/"):
        r = requests.post(base + "orchestrators/waiter/forged-1", data='"x"', headers=forged, timeout=10)
        assert r.status_code in (403, 404), (base, r.status_code, r.text)
        assert r.json()["error"]["code"] in ("cross_origin", "not_found")
    assert requests.get(rpc + "instances/forged-1", timeout=10).status_code == 404  # nothing was started
    start = requests.post(rpc + "orchestrators/waiter", timeout=10)
    assert start.status_code == 202
    iid = start.json()["id"]
    cases: list[tuple[str, dict[str, str], bytes]] = [
        ("cross-origin", {"Origin": "http://evil.example"}, b""),
        ("null origin", {"Origin": "null"}, b""),
        ("cross-site fetch", {"Sec-Fetch-Site": "cross-site"}, b""),
        ("same-site fetch", {"Sec-Fetch-Site": "same-site"}, b""),
        ("text/plain, no body", {"Content-Type": "text/plain"}, b""),
        ("form body", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1"),
        ("multipart body", {"Content-Type": "multipart/form-data; boundary=x"}, b"--x--"),
        ("json body as text/plain", {"Content-Type": "text/plain;charset=UTF-8"}, b'"y"'),
        ("rebinding Host", {"Host": f"evil.example:{durable_host.port}"}, b""),
    ]
    for label, headers, body in cases:
        for op in ("terminate", "suspend"):
            r = requests.post(f"{rpc}instances/{iid}/{op}?reason=x", data=body, headers=headers, timeout=10)
            assert r.status_code in (403, 415), (label, op, r.status_code, r.text)
            assert r.json()["error"]["code"] in ("cross_origin", "unsupported_media_type", "forbidden_host"), label
        r = requests.delete(f"{rpc}instances/{iid}", headers=headers, timeout=10)
        assert r.status_code in (403, 415), (label, "purge", r.status_code)
    status = requests.get(f"{rpc}instances/{iid}", timeout=10).json()
    assert status["runtimeStatus"] in ("Pending", "Running")
    # the host's own origin and JSON bodies pass
    own = {"Origin": durable_host.base, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
    r = requests.post(f"{rpc}instances/{iid}/raiseEvent/Other", data="1", headers=own, timeout=10)
    assert r.status_code == 202, r.text
    assert requests.post(f"{rpc}instances/{iid}/terminate?reason=done", timeout=10).status_code == 202


# ---------------------------------------------------------------------- JSON error bodies


def _assert_json_error(r: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in r.text
    return body


def test_host_level_errors_are_json(durable_host: Devhost) -> None:
    base = durable_host.base
    _assert_json_error(requests.get(base + "/api/nothing-here", timeout=10), 404, "not_found")
    _assert_json_error(requests.get(base + "/no/such/path", timeout=10), 404, "not_found")
    r = requests.post(base + "/api/echo/1", timeout=10)
    _assert_json_error(r, 405, "method_not_allowed")
    assert set(r.headers["Allow"].split(", ")) == {"GET", "PUT"}
    mgmt = base + "/runtime/webhooks/durabletask"
    r = requests.put(mgmt + "/instances", timeout=10)
    _assert_json_error(r, 405, "method_not_allowed")
    _assert_json_error(requests.get(mgmt + "/orchestrators/chain", timeout=10), 405, "method_not_allowed")
    _assert_json_error(requests.get(mgmt + "/nothing", timeout=10), 404, "not_found")
    _assert_json_error(requests.post(mgmt + "/instances/x/explode", timeout=10), 404, "not_found")
    bad = requests.post(
        mgmt + "/orchestrators/chain", data="{not json", headers={"Content-Type": "application/json"}, timeout=10
    )
    _assert_json_error(bad, 400, "bad_request")
    unknown = _assert_json_error(requests.post(mgmt + "/orchestrators/nope", json=1, timeout=10), 400, "bad_request")
    assert "doesn't exist" in unknown["ExceptionMessage"]  # what the SDK's start_new raises
    _assert_json_error(requests.get(mgmt + "/instances/no-such-instance", timeout=10), 404, "not_found")
    _assert_json_error(requests.get(base + "/admin/nothing", timeout=10), 404, "not_found")
    _assert_json_error(requests.post(base + "/admin/functions/nope", json={}, timeout=10), 404, "not_found")
    _assert_json_error(
        requests.post(base + "/runtime/webhooks/eventgrid", params={"functionName": "x"}, json=[], timeout=10),
        404,
        "not_found",
    )
    _assert_json_error(requests.get(base + "/api/boom", timeout=10), 500, "function_failed")


def test_unauthorized_is_json(tmp_path: Path, counter_db: Path) -> None:
    env = {"DEVHOST_TEST_COUNTER_DB": str(counter_db)}
    host = Devhost(APPS / "durable_app", tmp_path / "state", env=env, no_auth=False).start()
    try:
        _assert_json_error(requests.get(host.base + "/api/secret", timeout=10), 401, "unauthorized")
        r = requests.get(host.base + "/runtime/webhooks/durabletask/instances", timeout=10)
        _assert_json_error(r, 401, "unauthorized")
        _assert_json_error(requests.get(host.base + "/admin/durabletask/binding", timeout=10), 401, "unauthorized")
    finally:
        host.stop()


def test_management_routes_keep_encoded_segments_and_answer_the_sdks_paths(durable_host: Devhost) -> None:
    mgmt = durable_host.base + "/runtime/webhooks/durabletask"
    listed = requests.get(mgmt + "/instances/", timeout=10)  # the SDK's get_status_all asks for "instances/"
    assert listed.status_code == 200 and isinstance(listed.json(), list)
    missing = _assert_json_error(requests.get(mgmt + "/instances/a%2Fb%20c", timeout=10), 404, "not_found")
    assert "'a/b c'" in missing["error"]["message"]
    r = requests.get(mgmt + "/instances/x/terminate", timeout=10)
    _assert_json_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "POST"
    r = requests.post(mgmt + "/instances/x", timeout=10)
    assert _assert_json_error(r, 405, "method_not_allowed") and r.headers["Allow"] == "DELETE, GET"
    _assert_json_error(requests.get(mgmt + "/entities/counter/k", timeout=10), 404, "not_found")
    r = requests.put(mgmt + "/entities/counter/k", timeout=10)
    assert _assert_json_error(r, 405, "method_not_allowed") and r.headers["Allow"] == "DELETE, GET, POST"
    _assert_json_error(requests.post(mgmt + "/instances/no-such/terminate", timeout=10), 404, "not_found")
