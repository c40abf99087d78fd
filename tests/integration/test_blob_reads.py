"""Bounded reads of the blob store against Azurite: ``download_within`` gives the whole blob in one request
when it fits, and for a larger one its properties and true size having read no more than the limit; an empty
blob (which has no byte 0 to range over) and a missing one behave like ``download``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.errors import NotFoundError

pytestmark = pytest.mark.integration


@pytest.fixture()
def store(azurite: str) -> Iterator[AzureBlobStore]:
    blobs = AzureBlobStore(f"reads{uuid.uuid4().hex[:12]}", connection_string=azurite)
    blobs.ensure_container()
    yield blobs


@pytest.mark.parametrize("size", [1, 999, 1000])
def test_a_blob_within_the_limit_comes_whole_with_its_properties(store: AzureBlobStore, size: int) -> None:
    data = bytes(range(256)) * 4
    stored = store.put("a.jpg", data[:size], content_type="image/jpeg", metadata={"profile": "general"})
    got, info = store.download_within("a.jpg", 1000)
    assert got == data[:size]
    assert (info.etag, info.size, info.content_type, info.metadata) == (
        stored.etag,
        size,
        "image/jpeg",
        stored.metadata,
    )


def test_a_larger_blob_gives_its_size_and_no_bytes(store: AzureBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.storage.blob import BlobClient

    stored = store.put("big.jpg", b"x" * 5000, content_type="image/jpeg", metadata={"profile": "general"})
    ranges: list[tuple[object, object]] = []
    real = BlobClient.download_blob

    def recorded(self: BlobClient, offset: object = None, length: object = None, **kw: object) -> object:
        ranges.append((offset, length))
        return real(self, offset, length, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(BlobClient, "download_blob", recorded)
    got, info = store.download_within("big.jpg", 1000)
    assert got is None
    assert (info.etag, info.size, info.metadata) == (stored.etag, 5000, {"profile": "general"})
    assert ranges == [(0, 1001)], "one request, for no more than the limit and one byte"


def test_an_empty_blob_is_empty_bytes(store: AzureBlobStore) -> None:
    store.put("empty.jpg", b"", content_type="image/jpeg", metadata={})
    got, info = store.download_within("empty.jpg", 1000)
    assert (got, info.size) == (b"", 0)


def test_a_missing_blob_is_not_found(store: AzureBlobStore) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        store.download_within("nothing.jpg", 1000)
