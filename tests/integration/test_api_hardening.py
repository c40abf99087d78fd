"""Client API hardening against real Azurite + SQLite: metadata within Azure's limits and re-validated when it
arrives by SAS, type errors as 400s naming the field, links built from configuration (never the Host header),
time filters in UTC, and server-side failures answered with our own words only."""

from __future__ import annotations

import json
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest
import requests

from devhost.azurite import connection_string
from imagepipe.composition import reset_services, services
from imagepipe.ids import instance_id, new_image_id
from imagepipe.pipeline import run_activity
from imagepipe.records import (
    BLOB_METADATA_LIMIT_BYTES,
    INVALID_PROFILE,
    RecordOrigin,
    blob_metadata_size,
    decode_blob_metadata,
    new_record,
)
from imagepipe.vocabulary import Step
from tests.support import images
from tests.support.devhost import free_port
from tests.support.inprocess import body_json, call_http, functions

pytestmark = pytest.mark.integration

FORGED_HOST = "evil.example"


def stored_blobs() -> list[str]:
    return [b.name for b in services().blobs.list()]


def create_upload(spec: Any) -> tuple[int, dict[str, Any]]:
    body = spec if isinstance(spec, bytes) else json.dumps(spec).encode()
    response = call_http(
        "create_upload", "POST", "/api/uploads", body=body, headers={"content-type": "application/json"}
    )
    return response.status_code, body_json(response)


def call_with_host(name: str, method: str, path: str, **kwargs: Any) -> func.HttpResponse:
    """Call a function with a request as the Functions host builds it from a forged ``Host`` header."""
    request = func.HttpRequest(
        method,
        f"http://{FORGED_HOST}{path}",
        headers={"host": FORGED_HOST, **kwargs.pop("headers", {})},
        params=kwargs.pop("params", {}),
        route_params=kwargs.pop("route_params", {}),
        body=kwargs.pop("body", b""),
    )
    result = functions()[name].get_user_function()(request)
    import asyncio

    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def everything(response: func.HttpResponse) -> str:
    return response.get_body().decode(errors="replace") + json.dumps(dict(response.headers.items()))


# ---------------------------------------------------------------------------------------------------
# item 10.10: metadata size and types
# ---------------------------------------------------------------------------------------------------


def big_metadata() -> dict[str, str]:
    """16 keys of 500 characters: each entry passes the per-key rules, together they exceed 8 KiB."""
    return {f"k{i:02d}": "v" * 500 for i in range(16)}


def test_upload_metadata_over_the_blob_limit_is_a_400_naming_it(app_env: dict[str, str]) -> None:
    response = call_http(
        "upload_image",
        "POST",
        "/api/images",
        body=images.jpeg(),
        headers={"content-type": "image/jpeg", "x-client-metadata": json.dumps(big_metadata())},
    )
    body = body_json(response)
    assert response.status_code == 400, body
    assert body["error"]["code"] == "metadata_too_large"
    assert str(BLOB_METADATA_LIMIT_BYTES) in body["error"]["message"]
    assert stored_blobs() == []


def test_upload_url_metadata_over_the_blob_limit_is_a_400(app_env: dict[str, str]) -> None:
    status, body = create_upload({"contentType": "image/png", "metadata": big_metadata()})
    assert status == 400, body
    assert body["error"]["code"] == "metadata_too_large"
    assert str(BLOB_METADATA_LIMIT_BYTES) in body["error"]["message"]


def test_metadata_just_under_the_limit_is_accepted_and_fits(app_env: dict[str, str]) -> None:
    metadata = {f"k{i:02d}": "v" * 450 for i in range(16)}
    status, body = create_upload({"contentType": "image/png", "filename": "x" * 200, "metadata": metadata})
    assert status == 201, body
    sent = {k.removeprefix("x-ms-meta-"): v for k, v in body["requiredHeaders"].items() if k.startswith("x-ms-meta-")}
    assert blob_metadata_size(sent) <= BLOB_METADATA_LIMIT_BYTES
    put = requests.put(body["uploadUrl"], data=images.png(), headers=body["requiredHeaders"], timeout=10)
    assert put.status_code == 201, put.text


@pytest.mark.parametrize(
    ("spec", "code", "field"),
    [
        ({"contentType": "image/png", "profile": {"a": 1}}, "invalid_field", "profile"),
        ({"contentType": "image/png", "filename": ["a"]}, "invalid_field", "filename"),
        ({"contentType": ["image/png"]}, "invalid_field", "contentType"),
        ({"contentType": "image/png", "metadata": "sku=1"}, "invalid_metadata", "metadata"),
        ({"contentType": "image/png", "metadata": {"sku": {"nested": 1}}}, "invalid_metadata", "sku"),
        ({"contentType": "image/png", "metadata": [1, 2]}, "invalid_metadata", "metadata"),
        ({"contentType": "image/png", "content_type": "image/png"}, "invalid_field", "content_type"),
        ([{"contentType": "image/png"}], "invalid_input", "JSON object"),
        ({"contentType": "image/png", "profile": "p" * 5000}, "unknown_profile", "64 characters"),
        (b"{not json", "invalid_input", "JSON"),
    ],
)
def test_upload_url_type_errors_are_400s_naming_the_field(
    app_env: dict[str, str], spec: Any, code: str, field: str
) -> None:
    status, body = create_upload(spec)
    assert status == 400, body
    assert body["error"]["code"] == code
    assert field in body["error"]["message"]


def test_direct_upload_metadata_is_revalidated_before_it_reaches_a_record(app_env: dict[str, str]) -> None:
    status, spec = create_upload({"contentType": "image/png", "profile": "fashion", "filename": "ok.png"})
    assert status == 201, spec
    hostile_client = {f"key{i}": "v" * 40 for i in range(20)} | {"bad key": "x", "long": "y" * 600, "obj": {"a": 1}}
    headers = {
        **spec["requiredHeaders"],
        "x-ms-meta-originalname": urllib.parse.quote("../../../../etc/passwd", safe=""),
        "x-ms-meta-clientmetadata": urllib.parse.quote(json.dumps(hostile_client), safe=""),
        **{f"x-ms-meta-extra{i}": "z" * 600 for i in range(6)},
    }
    put = requests.put(spec["uploadUrl"], data=images.png(), headers=headers, timeout=10)
    assert put.status_code == 201, put.text
    info = services().blobs.get_properties(f"{spec['id']}.png")
    assert "extra0" in {k.lower() for k in info.metadata}  # storage kept what the client sent
    profile, original, client = decode_blob_metadata(dict(info.metadata))
    assert (profile, original) == ("fashion", "passwd")
    assert len(client) == 16 and all(k.startswith("key") and v == "v" * 40 for k, v in client.items())

    step = {
        "imageId": spec["id"],
        "blobName": info.name,
        "etag": info.etag,
        "instanceId": instance_id(spec["id"], info.etag),
    }
    assert run_activity(Step.FETCH_IMAGE_METADATA, services(), step)["ok"] is True
    record = services().records.get(spec["id"])
    assert record is not None
    # what was validated when the URL was issued wins over what the PUT sent (imagepipe.acceptance)
    assert record["client"] == {"originalName": "ok.png", "metadata": {}}
    assert "passwd" not in json.dumps(record) and "extra0" not in json.dumps(record)


def test_direct_upload_with_a_forged_profile_keeps_the_validated_one(app_env: dict[str, str]) -> None:
    status, spec = create_upload({"contentType": "image/png"})
    assert status == 201, spec
    headers = {**spec["requiredHeaders"], "x-ms-meta-profile": "<script>" + "p" * 590}
    put = requests.put(spec["uploadUrl"], data=images.png(), headers=headers, timeout=10)
    assert put.status_code == 201, put.text
    info = services().blobs.get_properties(f"{spec['id']}.png")
    assert decode_blob_metadata(dict(info.metadata))[0] == INVALID_PROFILE
    step = {
        "imageId": spec["id"],
        "blobName": info.name,
        "etag": info.etag,
        "instanceId": instance_id(spec["id"], info.etag),
    }
    outcome = run_activity(Step.FETCH_IMAGE_METADATA, services(), step)
    # the profile validated when the URL was issued (the default) wins over the forged one
    assert outcome["ok"] is True and outcome["profile"] == "general"
    record = services().records.get(spec["id"])
    assert record is not None and record["profile"] == "general"
    assert "script" not in json.dumps(record) and "ppppp" not in json.dumps(outcome)


def test_decode_tolerates_hand_made_blobs() -> None:
    assert decode_blob_metadata({}) == ("general", None, {})
    assert decode_blob_metadata({"Profile": "insurance", "OriginalName": "a%2Fb.jpg"}) == ("insurance", "b.jpg", {})
    assert decode_blob_metadata({"clientmetadata": "%7Bnot json"}) == ("general", None, {})
    assert decode_blob_metadata({"clientmetadata": urllib.parse.quote("[1]")})[2] == {}


# ---------------------------------------------------------------------------------------------------
# item 10.4: links from configuration, never from the Host header
# ---------------------------------------------------------------------------------------------------


def test_forged_host_header_never_appears_in_a_response(app_env: dict[str, str]) -> None:
    upload = call_with_host(
        "upload_image", "POST", "/api/images", body=images.jpeg(), headers={"content-type": "image/jpeg"}
    )
    assert upload.status_code == 202
    image_id = body_json(upload)["id"]
    direct = call_with_host(
        "create_upload",
        "POST",
        "/api/uploads",
        body=b'{"contentType":"image/png"}',
        headers={"content-type": "application/json"},
    )
    assert direct.status_code == 201
    accepted = call_with_host("get_image", "GET", f"/api/images/{image_id}", route_params={"id": image_id})
    assert accepted.status_code == 200  # the acceptance record, pending
    unknown = new_image_id()
    missing = call_with_host("get_image", "GET", f"/api/images/{unknown}", route_params={"id": unknown})
    assert missing.status_code == 404
    for response in (upload, direct, accepted, missing):
        assert FORGED_HOST not in everything(response)
    assert body_json(upload)["statusUrl"] == f"/api/images/{image_id}/status"
    assert upload.headers["Location"] == f"/api/images/{image_id}/status"


@pytest.mark.parametrize(
    ("setting", "value", "root"),
    [
        ("PUBLIC_BASE_URL", "https://images.example.com/", "https://images.example.com"),
        ("WEBSITE_HOSTNAME", "imagepipe-prod.azurewebsites.net", "https://imagepipe-prod.azurewebsites.net"),
        ("WEBSITE_HOSTNAME", "localhost:7071", "http://localhost:7071"),
    ],
)
def test_links_use_the_configured_address(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, setting: str, value: str, root: str
) -> None:
    monkeypatch.setenv(setting, value)
    reset_services()
    upload = call_with_host(
        "upload_image", "POST", "/api/images", body=images.jpeg(), headers={"content-type": "image/jpeg"}
    )
    body = body_json(upload)
    assert upload.status_code == 202, body
    assert body["statusUrl"] == f"{root}/api/images/{body['id']}/status"
    assert upload.headers["Location"] == body["statusUrl"]
    assert FORGED_HOST not in everything(upload)


def test_a_malformed_public_base_url_is_refused_naming_the_setting(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagepipe.errors import ConfigurationError
    from imagepipe.settings import load_settings

    monkeypatch.setenv("PUBLIC_BASE_URL", "images.example.com/x?y=1")
    with pytest.raises(ConfigurationError, match="PUBLIC_BASE_URL"):
        load_settings()


# ---------------------------------------------------------------------------------------------------
# item 10.11: time filters in UTC
# ---------------------------------------------------------------------------------------------------


def test_time_filters_select_the_same_instant_whatever_the_offset(app_env: dict[str, str]) -> None:
    store = services().records
    info = services().blobs.put("seed.jpg", images.jpeg(), content_type="image/jpeg", metadata={})
    created = {}
    for hour in (9, 10, 11):
        image_id = new_image_id()
        record = new_record(
            image_id, info, None, RecordOrigin("general", None, {}), instance_id=f"run-{hour}", existing=None
        )
        record["createdAt"] = f"2026-03-01T{hour:02d}:00:00.000000Z"
        record["status"] = "completed"
        assert store.upsert_if_not_older(record)
        created[hour] = image_id

    def ids(**params: str) -> set[str]:
        response = call_http("search_images", "GET", "/api/images", params=params)
        assert response.status_code == 200, body_json(response)
        return {item["id"] for item in body_json(response)["items"]}

    expected = {created[10], created[11]}
    assert ids(**{"from": "2026-03-01T10:00:00Z"}) == expected
    assert ids(**{"from": "2026-03-01T12:00:00+02:00"}) == expected
    assert ids(**{"from": "2026-03-01T05:00:00-05:00"}) == expected
    assert ids(**{"from": "2026-03-01T12:00:00 02:00"}) == expected  # an unencoded '+' arrives as a space
    assert ids(**{"from": "2026-03-01T10:00:00"}) == expected  # no offset: UTC
    assert ids(**{"to": "2026-03-01T11:59:59+01:00"}) == {created[9], created[10]}
    bad = call_http("search_images", "GET", "/api/images", params={"from": "yesterday"})
    assert bad.status_code == 400 and "from" in body_json(bad)["error"]["message"]


# ---------------------------------------------------------------------------------------------------
# items 10.6 / 10.4: a storage outage is a fast 503 in our own words
# ---------------------------------------------------------------------------------------------------


def test_storage_outage_is_a_fast_503_without_internals(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = free_port()
    monkeypatch.setenv("IMAGES_STORAGE", connection_string(closed))
    reset_services()
    for name, kwargs in (
        ("upload_image", {"body": images.jpeg(), "headers": {"content-type": "image/jpeg"}}),
        ("get_image", {"route_params": {"id": new_image_id()}}),
    ):
        started = time.monotonic()
        response = call_http(name, "POST" if name == "upload_image" else "GET", "/api/images", **kwargs)
        elapsed = time.monotonic() - started
        body = body_json(response)
        assert response.status_code == 503, (name, body)
        assert body["error"]["code"] == "storage_unavailable"
        assert "retry" in body["error"]["message"].lower()
        text = everything(response)
        for internal in (str(closed), "127.0.0.1", "Errno", "http://", "Traceback", "devstoreaccount1"):
            assert internal not in text, (name, internal, text)
        assert int(response.headers["Retry-After"]) >= 1
        assert elapsed < 5, (name, elapsed)


def test_query_time_is_utc() -> None:
    from triggers.http_common import query_time

    request = func.HttpRequest("GET", "http://x/api/images", params={"from": "2026-03-01T12:00:00+02:00"}, body=b"")
    value = query_time(request, "from")
    assert value == datetime(2026, 3, 1, 10, tzinfo=UTC) and value.utcoffset() is not None
    assert value.tzinfo is UTC


def test_storage_refusing_our_key_is_reported_without_sdk_text(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagepipe.adapters.azure_blob import AzureBlobStore
    from imagepipe.errors import ConfigurationError

    wrong_key = app_env["IMAGES_STORAGE"].replace("AccountKey=", "AccountKey=AAAA")
    store = AzureBlobStore(app_env["IMAGES_CONTAINER"], connection_string=wrong_key)
    with pytest.raises(ConfigurationError) as refused:
        store.put("x.jpg", images.jpeg(), content_type="image/jpeg", metadata={})
    for sdk_text in ("RequestId", "http://", "Authorization header", "Time:"):
        assert sdk_text not in refused.value.message, refused.value.message
    monkeypatch.setenv("IMAGES_STORAGE", wrong_key)
    reset_services()
    response = call_http(
        "upload_image", "POST", "/api/images", body=images.jpeg(), headers={"content-type": "image/jpeg"}
    )
    body = body_json(response)
    assert response.status_code == 500 and body["error"]["code"] == "configuration_error", body
    assert "operator" in body["error"]["message"]
    assert "AccountKey" not in everything(response) and "devstoreaccount1" not in everything(response)


def test_a_failed_record_shows_its_reason_without_urls_or_traceback(app_env: dict[str, str]) -> None:
    info = services().blobs.put("01m8vn0000000000000000000a.jpg", images.jpeg(), content_type="image/jpeg", metadata={})
    image_id = info.name.split(".")[0]
    record = new_record(image_id, info, None, RecordOrigin("general", None, {}), instance_id="run-1", existing=None)
    record["status"] = "failed"
    record["error"] = {
        "code": "retries_exhausted",
        "message": "analyze_image kept failing after its retries: ServiceRequestError: "
        "https://vision.example/analyze?sv=1&sig=SECRET \nTraceback (most recent call last):\n"
        '  File "/srv/app/imagepipe/pipeline.py", line 1',
        "step": "analyze_image",
    }
    assert services().records.upsert_if_not_older(record)
    binding = json.dumps({"taskHubName": "hub", "creationUrls": {}, "managementUrls": {}, "baseUrl": "http://x"})
    request = func.HttpRequest(
        "GET", f"http://127.0.0.1/api/images/{image_id}/status", route_params={"id": image_id}, body=b""
    )
    import asyncio

    response = asyncio.run(functions()["get_image_status"].get_user_function()(request, client=binding))
    body = body_json(response)
    assert body["status"] == "failed" and body["error"]["code"] == "retries_exhausted", body
    assert body["error"]["message"].startswith("analyze_image kept failing after its retries")
    for internal in ("SECRET", "sig=", "Traceback", "/srv/app", "vision.example"):
        assert internal not in everything(response), internal
