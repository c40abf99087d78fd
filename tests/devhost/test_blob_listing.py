"""The Event Grid emulator's container listing against a real Azurite: every blob across pages, names XML cannot
carry as they are, the properties an event carries, copies told apart, a missing container named; and the poll
cadence that bounds what listing costs as the container grows."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devhost import blob_listing, eventgrid
from devhost.blob_listing import ContainerLister, ContainerMissing, parse_page

pytestmark = [pytest.mark.devhost, pytest.mark.integration]


@pytest.fixture()
def container(azurite: str) -> Iterator[Any]:
    from azure.storage.blob import BlobServiceClient

    svc = BlobServiceClient.from_connection_string(azurite)
    client = svc.create_container(f"listing{time.time_ns() % 10**12}")
    try:
        yield client
    finally:
        client.delete_container()
        svc.close()


def _sdk_view(container: Any) -> dict[str, tuple[str, int, str | None]]:
    return {p.name: (str(p.etag), int(p.size), p.content_settings.content_type) for p in container.list_blobs()}


def test_lists_every_blob_across_pages_as_the_sdk_sees_them(
    container: Any, monkeypatch: pytest.MonkeyPatch, azurite: str
) -> None:
    from azure.storage.blob import BlobServiceClient, ContentSettings

    names = [f"img/{i:03d}.jpg" for i in range(23)] + ["a b/é&<x>.png", "tab\there.jpg", "zz/ü.gif"]
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda n: container.upload_blob(
                    n, n.encode() * 3, content_settings=ContentSettings(content_type="image/jpeg")
                ),
                names,
            )
        )
    monkeypatch.setattr(blob_listing, "PAGE_SIZE", 5)  # 26 blobs: six requests, five continuation markers
    lister = ContainerLister(BlobServiceClient.from_connection_string(azurite))
    try:
        listed = lister.blobs(container.container_name)
    finally:
        lister.close()
    assert sorted(b.name for b in listed) == sorted(names)
    details = [b.details() for b in listed]
    assert {b.name: (b.etag, b.size, b.content_type) for b in details} == _sdk_view(container)
    assert all(b.blob_type == "BlockBlob" and not b.copied and b.last_modified is not None for b in details)


def test_a_copied_blob_is_marked_copied(container: Any, azurite: str) -> None:
    from azure.storage.blob import BlobServiceClient

    source = container.upload_blob("source.jpg", b"x" * 50)
    container.get_blob_client("copy.jpg").start_copy_from_url(source.url, requires_sync=True)
    lister = ContainerLister(BlobServiceClient.from_connection_string(azurite))
    try:
        copied = {b.name: b.details().copied for b in lister.blobs(container.container_name)}
    finally:
        lister.close()
    assert copied == {"source.jpg": False, "copy.jpg": True}


def test_a_missing_container_is_named(azurite: str) -> None:
    from azure.storage.blob import BlobServiceClient

    lister = ContainerLister(BlobServiceClient.from_connection_string(azurite))
    try:
        with pytest.raises(ContainerMissing, match="nosuchcontainer"):
            lister.blobs("nosuchcontainer")
    finally:
        lister.close()


def test_parse_page_reads_escaped_and_encoded_names_and_the_marker() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?><EnumerationResults><Blobs>'
        b'<Blob><Name Encoded="true">bad%01name.jpg</Name><Properties><Etag>0x1</Etag>'
        b"<Content-Length>7</Content-Length><Last-Modified>Tue, 08 Dec 2026 03:35:02 GMT</Last-Modified>"
        b"<BlobType>BlockBlob</BlobType><CopyId>abc</CopyId></Properties></Blob>"
        b"<Blob><Name>a &amp; b &lt;c&gt; &#233;.jpg</Name><Properties><Etag>0x2</Etag></Properties></Blob>"
        b"</Blobs><NextMarker>m2</NextMarker></EnumerationResults>"
    )
    blobs, marker = parse_page(body)
    assert marker == "m2"
    first, second = (b.details() for b in blobs)
    assert (first.name, first.etag, first.size, first.copied) == ("bad\x01name.jpg", "0x1", 7, True)
    assert first.last_modified is not None and first.last_modified.isoformat() == "2026-12-08T03:35:02+00:00"
    assert (second.name, second.etag, second.size, second.copied) == ("a & b <c> \u00e9.jpg", "0x2", 0, False)
    assert parse_page(b"<EnumerationResults><Blobs/><NextMarker/></EnumerationResults>") == ([], None)


def test_large_containers_are_listed_less_often() -> None:
    assert eventgrid.poll_interval(0) == eventgrid.poll_interval(400) == eventgrid.POLL_S
    assert eventgrid.poll_interval(5000) == pytest.approx(5.0)  # at most LISTED_PER_S listed blobs a second


def test_block_lists_and_urls_as_the_sdk_sees_them(container: Any, azurite: str) -> None:
    from azure.storage.blob import BlobServiceClient

    container.upload_blob("put.jpg", b"p" * 10)
    blocks = container.get_blob_client("blocks/ä b~c.jpg")
    blocks.stage_block("b1", b"a" * 10)
    blocks.commit_block_list(["b1"])
    staged_only = container.get_blob_client("staged.jpg")
    staged_only.upload_blob(b"s")
    staged_only.stage_block("b9", b"x")  # staged, never committed: not a block list upload
    container.get_blob_client("append.log").create_append_blob()
    lister = ContainerLister(BlobServiceClient.from_connection_string(azurite))
    try:
        name = container.container_name
        assert lister.has_committed_blocks(name, "blocks/ä b~c.jpg")
        assert not lister.has_committed_blocks(name, "put.jpg")
        assert not lister.has_committed_blocks(name, "staged.jpg")
        assert not lister.has_committed_blocks(name, "append.log")
        assert not lister.has_committed_blocks(name, "gone.jpg")
        assert lister.blob_url(name, "blocks/ä b~c.jpg") == blocks.url
    finally:
        lister.close()
