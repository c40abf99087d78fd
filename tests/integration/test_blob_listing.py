"""Blob listings keep the port's error contract while they iterate (Azurite).

``ContainerClient.list_blobs`` is lazy: the SDK fetches each page when iteration reaches it, so a missing or
deleted container fails inside ``next()``, not in the call. The adapter must translate those errors too; a
caller (the dead-letter API) sees ``imagepipe.errors`` only, never azure-core exceptions.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

import pytest
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient

from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.errors import NotFoundError
from tests.support.inprocess import body_json, call_http

pytestmark = pytest.mark.integration


def _container() -> str:
    return f"list{uuid.uuid4().hex[:12]}"


def test_listing_a_missing_container_is_not_found(azurite: str) -> None:
    store = AzureBlobStore(_container(), connection_string=azurite)
    listing = store.list()  # nothing is fetched before iteration starts
    with pytest.raises(NotFoundError) as caught:
        next(listing)
    assert caught.value.http_status == 404 and store.container in caught.value.message
    assert not isinstance(caught.value, AzureError)


def test_container_deleted_between_pages_is_not_found(azurite: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = AzureBlobStore(_container(), connection_string=azurite)
    store.ensure_container()
    for name in ("a.png", "b.png", "c.png"):
        store.put(name, b"x", content_type="image/png", metadata={})
    # the real SDK client, with pages of two blobs: the third blob is on a second page, fetched lazily
    container_client: Any = store._container
    monkeypatch.setattr(
        container_client, "list_blobs", functools.partial(container_client.list_blobs, results_per_page=2)
    )
    listing = store.list()
    assert [next(listing).name, next(listing).name] == ["a.png", "b.png"]
    BlobServiceClient.from_connection_string(azurite).delete_container(store.container)
    with pytest.raises(NotFoundError):
        next(listing)


def test_deadletters_api_without_a_deadletter_container_lists_nothing(app_env: dict[str, str]) -> None:
    # app_env creates the images container only: nothing was ever dead-lettered
    response = call_http("list_deadletters", "GET", "/api/deadletters")
    assert response.status_code == 200, response.get_body()[:300]
    body = body_json(response)
    assert body["items"] == [] and body["total"] == 0 and body["unreadable"] == []


def test_deadletters_api_skips_a_blob_deleted_while_it_lists(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from imagepipe.composition import services

    store = services().deadletters
    store.ensure_container()
    for n in range(3):
        event = {"id": f"ev{n}", "eventType": "Microsoft.Storage.BlobCreated", "subject": "", "data": {}}
        store.put(f"dl{n}.json", json.dumps([event]).encode(), content_type="application/json", metadata={})
    listed = list(store.list())

    def list_then_redrive_elsewhere(prefix: str = "") -> Any:
        store.delete("dl1.json")  # a concurrent redrive (another operator, another instance) removes one blob
        return iter(listed)

    monkeypatch.setattr(store, "list", list_then_redrive_elsewhere)
    response = call_http("list_deadletters", "GET", "/api/deadletters")
    assert response.status_code == 200, response.get_body()[:300]
    body = body_json(response)
    assert sorted(item["blob"] for item in body["items"]) == ["dl0.json", "dl2.json"]
    assert body["unreadable"] == []
