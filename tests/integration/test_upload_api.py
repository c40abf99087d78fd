"""Upload API against real Azurite + SQLite: accepted uploads land as blobs; every bad upload is a clear 4xx
and leaves nothing behind."""

from __future__ import annotations

import json

import pytest
import requests

from imagepipe.composition import services
from imagepipe.records import decode_blob_metadata
from tests.support import images
from tests.support.inprocess import body_json, call_http, multipart

pytestmark = pytest.mark.integration


def stored_blobs() -> list[str]:
    return [b.name for b in services().blobs.list()]


def upload(body: bytes, content_type: str = "image/jpeg", **kwargs: object) -> tuple[int, dict[str, object]]:
    headers = {"content-type": content_type, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    response = call_http("upload_image", "POST", "/api/images", body=body, headers=headers, **kwargs)  # type: ignore[arg-type]
    return response.status_code, body_json(response)


def test_raw_upload_is_accepted_and_stored(app_env: dict[str, str]) -> None:
    status, body = upload(images.jpeg(), params={"profile": "insurance"}, headers={"x-filename": "claim 1.jpg"})
    assert status == 202, body
    image_id = body["id"]
    assert body["status"] == "pending"
    assert body["statusUrl"] == f"/api/images/{image_id}/status"  # no PUBLIC_BASE_URL / WEBSITE_HOSTNAME set
    assert stored_blobs() == [f"{image_id}.jpg"]
    info = services().blobs.get_properties(f"{image_id}.jpg")
    assert info.content_type == "image/jpeg"
    assert decode_blob_metadata(dict(info.metadata)) == ("insurance", "claim 1.jpg", {})


def test_multipart_upload_with_metadata_and_path_tricks(app_env: dict[str, str]) -> None:
    data, content_type = multipart(
        {"profile": "fashion", "metadata": json.dumps({"sku": "A-100", "season": "ss27"})},
        "../../etc/passwd\x00.png",
        images.png(),
        "image/png",
    )
    status, body = upload(data, content_type)
    assert status == 202, body
    assert stored_blobs() == [f"{body['id']}.png"]
    profile, name, client = decode_blob_metadata(dict(services().blobs.get_properties(f"{body['id']}.png").metadata))
    assert (profile, name, client) == ("fashion", "passwd.png", {"sku": "A-100", "season": "ss27"})


BAD_UPLOADS = [
    ("not an image", b"hello, this is text", "application/octet-stream", 415, "unsupported_media_type"),
    ("empty body", b"", "image/jpeg", 400, "empty_body"),
    ("truncated jpeg", images.jpeg(800, 600)[:2000], "image/jpeg", 400, "undecodable_image"),
    ("too small", images.jpeg(40, 40), "image/jpeg", 400, "invalid_dimensions"),
    ("too wide", images.png(16050, 60), "image/png", 400, "invalid_dimensions"),
    ("declared png, is jpeg", images.jpeg(), "image/png", 415, "content_type_mismatch"),
    ("decompression bomb", images.png_bomb(), "image/png", 413, "too_many_pixels"),
    ("png with a zip appended", images.png() + b"PK\x03\x04" + b"\x00" * 4096, "image/png", 415, "trailing_payload"),
    ("html", b"<html><script>alert(1)</script></html>", "text/html", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(
    ("case", "data", "content_type", "status", "code"), BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS]
)
def test_bad_upload_is_a_clear_4xx_and_leaves_nothing(
    app_env: dict[str, str], case: str, data: bytes, content_type: str, status: int, code: str
) -> None:
    got, body = upload(data, content_type)
    assert got == status, body
    assert body["error"]["code"] == code
    assert len(body["error"]["message"]) > 20
    assert stored_blobs() == []
    assert services().records.search(__import__("imagepipe.ports", fromlist=["SearchQuery"]).SearchQuery()).items == []


def test_too_big_upload(app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from imagepipe.composition import reset_services

    monkeypatch.setenv("MAX_UPLOAD_BYTES", "5000")
    reset_services()
    got, body = upload(images.jpeg(1200, 900))
    assert got == 413 and body["error"]["code"] == "payload_too_large"
    assert stored_blobs() == []


@pytest.mark.parametrize(
    ("params", "headers", "code"),
    [
        ({"profile": "nope"}, {}, "unknown_profile"),
        ({}, {"x-client-metadata": "[1,2]"}, "invalid_metadata"),
        ({}, {"x-client-metadata": '{"bad key": "v"}'}, "invalid_metadata"),
    ],
)
def test_bad_parameters(app_env: dict[str, str], params: dict[str, str], headers: dict[str, str], code: str) -> None:
    got, body = upload(images.jpeg(), params=params, headers=headers)
    assert got == 400 and body["error"]["code"] == code
    assert stored_blobs() == []


def test_sas_upload_url_allows_one_direct_put(app_env: dict[str, str]) -> None:
    response = call_http(
        "create_upload",
        "POST",
        "/api/uploads",
        body=json.dumps({"contentType": "image/png", "profile": "general", "filename": "big.png"}).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201
    spec = body_json(response)
    put = requests.put(spec["uploadUrl"], data=images.png(), headers=spec["requiredHeaders"], timeout=10)
    assert put.status_code == 201, put.text
    assert stored_blobs() == [f"{spec['id']}.png"]
    meta = services().blobs.get_properties(f"{spec['id']}.png").metadata
    assert decode_blob_metadata(dict(meta))[:2] == ("general", "big.png")
    read = requests.get(spec["uploadUrl"], timeout=10)
    assert read.status_code == 403  # the SAS grants create/write only


def test_sas_upload_rejects_non_image_type(app_env: dict[str, str]) -> None:
    response = call_http(
        "create_upload",
        "POST",
        "/api/uploads",
        body=b'{"contentType": "text/html"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert body_json(response)["error"]["code"] == "invalid_content_type"


def test_get_unknown_and_malformed_ids(app_env: dict[str, str]) -> None:
    missing = call_http("get_image", "GET", "/api/images/x", route_params={"id": "0" * 26})
    assert missing.status_code == 404
    tricky = call_http("get_image", "GET", "/api/images/x", route_params={"id": "../../secrets"})
    assert tricky.status_code == 400 and body_json(tricky)["error"]["code"] == "invalid_id"
