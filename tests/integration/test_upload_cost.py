"""What one upload costs, against real Azurite: the image is decoded once (the full validation decode, nothing
more), the blob is stored with one storage request whose answer gives the stored blob's facts, and concurrent
uploads up to HTTP_WORKER_THREADS reuse their storage connections instead of opening new ones, and the storage
client reads the environment's proxy settings once (still honouring them) instead of on every call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests.utils
from PIL import ImageFile

from devhost.process import free_port
from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.composition import services
from imagepipe.errors import TransientServiceError
from tests.integration.samples import SAMPLES as SAMPLES_DIR
from tests.support import images
from tests.support.inprocess import body_json, call_http

pytestmark = pytest.mark.integration


def sample(name: str) -> bytes:
    return (SAMPLES_DIR / name).read_bytes()


@pytest.fixture()
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The formats of the images Pillow decodes (a ``load`` that has image data left to decode)."""
    seen: list[str] = []
    original = ImageFile.ImageFile.load

    def counting(self: ImageFile.ImageFile) -> Any:
        if self.tile:
            seen.append(str(self.format))
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    yield seen


def _upload(data: bytes, content_type: str) -> dict[str, Any]:
    response = call_http("upload_image", "POST", "/api/images", body=data, headers={"content-type": content_type})
    body: dict[str, Any] = body_json(response)
    assert response.status_code == 202, body
    return body


@pytest.mark.parametrize(
    ("data", "content_type", "fmt"),
    [
        (sample("cat.jpg"), "image/jpeg", "JPEG"),
        (sample("insurance-claim.png"), "image/png", "PNG"),
        (images.encode("GIF"), "image/gif", "GIF"),
        (images.encode("WEBP"), "image/webp", "WEBP"),
    ],
    ids=["jpeg", "png", "gif", "webp"],
)
def test_an_upload_decodes_the_image_once(
    app_env: dict[str, str], decodes: list[str], data: bytes, content_type: str, fmt: str
) -> None:
    _upload(data, content_type)
    assert decodes == [fmt]


def test_put_is_one_storage_request_and_returns_what_storage_holds(azurite: str) -> None:
    requests_sent: list[str] = []
    store = AzureBlobStore(
        "putcost", connection_string=azurite, raw_request_hook=lambda r: requests_sent.append(r.http_request.method)
    )
    store.ensure_container()
    requests_sent.clear()
    info = store.put("one.png", sample("qr-code.png"), content_type="image/png", metadata={"profile": "general"})
    assert requests_sent == ["PUT"]
    stored = store.get_properties("one.png")
    assert (info.container, info.name, info.etag, info.size, info.content_type) == (
        stored.container,
        stored.name,
        stored.etag,
        stored.size,
        stored.content_type,
    )
    assert info.last_modified == stored.last_modified
    assert dict(info.metadata) == dict(stored.metadata) == {"profile": "general"}
    assert info.url == stored.url


def test_concurrent_uploads_reuse_their_storage_connections(
    app_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    threads = services().settings.http_worker_threads
    start = threading.Barrier(threads)
    data = sample("cat-copy-small.jpg")

    def upload(_: int) -> None:
        start.wait(timeout=30)
        _upload(data, "image/jpeg")

    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        for _ in range(2):
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(upload, range(threads)))
    discarded = [r.getMessage() for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert discarded == []


def test_put_does_not_scan_the_environment_for_proxies_on_every_call(
    azurite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AzureBlobStore("proxyscan", connection_string=azurite)
    store.ensure_container()
    scans: list[str] = []
    original = requests.utils.getproxies  # type: ignore[attr-defined]

    def counting() -> dict[str, str]:
        scans.append("scan")
        return dict(original())

    monkeypatch.setattr(requests.utils, "getproxies", counting)
    store.put("a.png", sample("qr-code.png"), content_type="image/png", metadata={})
    assert scans == []


@pytest.mark.parametrize("bypassed", [False, True], ids=["through-proxy", "no-proxy"])
def test_the_environment_proxy_settings_still_apply(
    azurite: str, monkeypatch: pytest.MonkeyPatch, bypassed: bool
) -> None:
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    if bypassed:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    store = AzureBlobStore("proxied", connection_string=azurite, retry_total=0, connect_timeout_s=2)
    if bypassed:
        store.ensure_container()
        assert store.put("a.png", sample("qr-code.png"), content_type="image/png", metadata={}).size > 0
    else:
        with pytest.raises(TransientServiceError):
            store.put("a.png", sample("qr-code.png"), content_type="image/png", metadata={})
