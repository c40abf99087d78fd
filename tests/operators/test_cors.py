"""CORS rules for browser direct upload: the policy file, origin checks, the blob origin the page may PUT to,
and the rules as Azurite stores them through the real SDK."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from imagepipe.cors import (
    apply_cors,
    apply_local_cors,
    blob_origin,
    check_origin,
    cors_rules,
    devhost_origins,
    load_policy,
    local_policy,
)
from imagepipe.errors import ConfigurationError
from imagepipe.settings import Settings


def write(tmp_path: Path, body: object) -> Path:
    path = tmp_path / "cors.json"
    path.write_text(json.dumps(body))
    return path


@pytest.mark.unit
def test_policy_file_is_read_and_checked(tmp_path: Path) -> None:
    good = {
        "$comment": "ignored",
        "allowedMethods": ["put", "OPTIONS"],
        "allowedHeaders": ["content-type", "x-ms-blob-type", "x-ms-meta-*"],
        "exposedHeaders": ["etag"],
        "maxAgeInSeconds": 600,
    }
    policy = load_policy(write(tmp_path, good))
    assert policy.allowed_methods == ("PUT", "OPTIONS") and policy.max_age_s == 600
    for bad, named in (
        ({**good, "allowedMethods": ["PUT", "FETCH"]}, "FETCH"),
        ({**good, "allowedHeaders": []}, "allowedHeaders"),
        ({**good, "maxAgeInSeconds": True}, "maxAgeInSeconds"),
        ([], "JSON object"),
    ):
        with pytest.raises(ConfigurationError, match=named):
            load_policy(write(tmp_path, bad))
    with pytest.raises(ConfigurationError, match="cors.json"):
        load_policy(tmp_path / "missing" / "cors.json")


@pytest.mark.unit
@pytest.mark.parametrize(
    ("origin", "expected"),
    [("https://Ops.Example.com", "https://ops.example.com"), ("http://127.0.0.1:7071/", "http://127.0.0.1:7071")],
)
def test_origins_are_normalised(origin: str, expected: str) -> None:
    assert check_origin(origin) == expected


@pytest.mark.unit
@pytest.mark.parametrize(
    "origin", ["*", "https://*.example.com", "ftp://x", "https://x.com/app", "https://u@x.com", "x.com", ""]
)
def test_wildcards_paths_and_non_origins_are_refused(origin: str) -> None:
    with pytest.raises(ConfigurationError, match="origin"):
        check_origin(origin)


@pytest.mark.unit
def test_no_origins_means_no_rule() -> None:
    assert cors_rules([]) == [] and cors_rules([" "]) == []
    (rule,) = cors_rules(["http://127.0.0.1:7071", "http://127.0.0.1:7071/"])
    assert rule.allowed_origins == "http://127.0.0.1:7071"
    assert rule.allowed_methods == "PUT,OPTIONS"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("env", "origin"),
    [
        (
            {"IMAGES_STORAGE__blobServiceUri": "https://acct.blob.core.windows.net/"},
            "https://acct.blob.core.windows.net",
        ),
        (
            {"IMAGES_STORAGE": "DefaultEndpointsProtocol=http;AccountName=a;BlobEndpoint=http://127.0.0.1:10123/a;"},
            "http://127.0.0.1:10123",
        ),
        (
            {"IMAGES_STORAGE": "DefaultEndpointsProtocol=https;AccountName=acct;EndpointSuffix=core.chinacloudapi.cn"},
            "https://acct.blob.core.chinacloudapi.cn",
        ),
        ({"IMAGES_STORAGE": "UseDevelopmentStorage=true"}, "http://127.0.0.1:10000"),
    ],
)
def test_blob_origin(env: dict[str, str], origin: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("IMAGES_STORAGE", "IMAGES_STORAGE__blobServiceUri"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert blob_origin(Settings()) == origin


@pytest.mark.integration
def test_rules_round_trip_through_azurite(azurite: str) -> None:
    service = BlobServiceClient.from_connection_string(azurite)
    apply_local_cors(azurite, devhost_origins(7071, "https://ops.example.com, "))
    (stored,) = service.get_service_properties()["cors"]
    assert stored.allowed_origins == "http://127.0.0.1:7071,http://localhost:7071,https://ops.example.com"
    assert stored.allowed_headers == ",".join(local_policy().allowed_headers)
    assert stored.max_age_in_seconds == local_policy().max_age_s
    apply_cors(service, [])
    assert service.get_service_properties()["cors"] == []
