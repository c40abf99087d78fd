"""The client API on the devhost stays responsive while one request is slow: a slow multipart upload of a
costly image, or a storage outage, must not stall a concurrent host-status poll or another route, and an
outage answers a fast 503 ``storage_unavailable``.

The Functions worker runs ``async def`` handlers on one event loop; any blocking call in a handler stalls
every other invocation. This test owns the Azurite the devhost uses (the devhost adopts a listening one), so
it can stop storage by the process it started and bring it back afterwards.
"""

from __future__ import annotations

import http.client
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from PIL import Image

from devhost import azurite as launcher
from imagepipe.adapters.azure_blob import AzureBlobStore
from imagepipe.client import ImagepipeClient
from tests.support.devhost import ROOT, Devhost, free_port
from tests.support.inprocess import multipart

pytestmark = pytest.mark.e2e

#: the longest a concurrent poll may take while another request is slow: a few hundred ms, generous for a shared
#: 2-core machine where the slow request's decoding competes for the CPU (a blocked loop stalls for seconds)
MAX_STALL_S = 0.75


@dataclass
class OwnStorageStack:
    host: Devhost
    client: ImagepipeClient
    azurite: launcher.AzuriteProcess
    location: Path


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnStorageStack]:
    state = tmp_path_factory.mktemp("responsive")
    location = state / "azurite"
    storage = launcher.start(free_port(), location, ROOT)
    env = {
        "IMAGES_STORAGE": storage.connection_string,
        "IMAGES_CONTAINER": "images",
        "AZURITE_BLOB_PORT": str(storage.port),  # the devhost adopts the Azurite listening there
        "RECORD_STORE": "sqlite",
        "RECORDS_SQLITE_PATH": str(state / "records.sqlite3"),
        "VISION_PROVIDER": "local",
        "DEVHOST_EVENTGRID_RETRY_SCALE": "0.01",
    }
    try:
        AzureBlobStore("images", connection_string=storage.connection_string).ensure_container()
        AzureBlobStore("deadletters", connection_string=storage.connection_string).ensure_container()
        host = Devhost(ROOT, state / "devhost", env=env, storage="azurite").start(timeout=120)
    except BaseException:
        storage.stop()
        raise
    running = OwnStorageStack(host, ImagepipeClient(host.base, key=""), storage, location)
    try:
        yield running
    finally:
        host.stop()
        running.azurite.stop()


@dataclass
class Poller:
    """Polls URLs in a loop from a thread; records the slowest answer while running."""

    urls: list[str]
    latencies: list[tuple[str, float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def _run(self) -> None:
        with requests.Session() as session:
            while not self.stop.is_set():
                for url in self.urls:
                    started = time.monotonic()
                    response = session.get(url, timeout=120)
                    self.latencies.append((url, time.monotonic() - started, response.status_code))
                self.stop.wait(0.05)

    def __enter__(self) -> Poller:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=130)

    def slowest(self) -> tuple[str, float, int]:
        assert self.latencies, "the poller made no request"
        for url in self.urls:
            times = sorted(seconds for seen, seconds, _ in self.latencies if seen == url)
            print(f"  {url}: {len(times)} polls, median {times[len(times) // 2]:.3f} s, max {times[-1]:.3f} s")
        return max(self.latencies, key=lambda row: row[1])


def costly_png() -> bytes:
    """A small file that takes the decoder a long time: 6000x6000 px of a smooth gradient (36 Mpx)."""
    image = Image.linear_gradient("L").resize((6000, 6000)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def slow_post(base: str, path: str, body: bytes, content_type: str, seconds: float) -> tuple[int, bytes, float]:
    """POST ``body`` in small pieces spread over ``seconds``; (status, body, seconds from the last byte)."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=120)
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", content_type)
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders()
    pieces = 20
    step = -(-len(body) // pieces)
    for offset in range(0, len(body), step):
        connection.send(body[offset : offset + step])
        time.sleep(seconds / pieces)
    sent = time.monotonic()
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data, time.monotonic() - sent


def test_slow_multipart_upload_does_not_stall_other_requests(own: OwnStorageStack) -> None:
    base = own.host.base
    body, content_type = multipart({"profile": "general"}, "big.png", costly_png(), "image/png")
    result: list[tuple[int, bytes, float]] = []
    with Poller([f"{base}/admin/host/status", f"{base}/api/images?limit=5"]) as poller:
        uploader = threading.Thread(
            target=lambda: result.append(slow_post(base, "/api/images", body, content_type, 2.0)), daemon=True
        )
        uploader.start()
        uploader.join(timeout=180)
    assert result, "the slow upload did not finish"
    status, answer, handling_s = result[0]
    assert status == 202, answer[:500]
    url, slowest, code = poller.slowest()
    assert code == 200, url
    print(f"upload handled in {handling_s:.2f} s after its last byte; slowest concurrent poll {slowest:.3f} s ({url})")
    assert slowest < MAX_STALL_S, f"{url} took {slowest:.2f} s while the upload was handled ({handling_s:.2f} s)"


def test_storage_outage_answers_503_fast_without_stalling_the_host(own: OwnStorageStack) -> None:
    base = own.host.base
    accepted = own.client.upload(ROOT / "samples" / "cat.jpg")
    own.client.wait([accepted["id"]], timeout_s=300)
    own.azurite.stop()
    try:
        answers: list[tuple[str, int, dict[str, object], float]] = []

        def call(method: str, path: str, body: bytes | None = None) -> None:
            started = time.monotonic()
            response = requests.request(
                method, base + path, data=body, headers={"content-type": "image/jpeg"}, timeout=120
            )
            answers.append((path, response.status_code, response.json(), time.monotonic() - started))

        calls = [
            threading.Thread(target=call, args=("POST", "/api/images", (ROOT / "samples" / "coffee.jpg").read_bytes())),
            threading.Thread(target=call, args=("GET", f"/api/images/{accepted['id']}/status")),
            threading.Thread(target=call, args=("POST", "/api/uploads", b'{"contentType": "image/png"}')),
        ]
        with Poller([f"{base}/admin/host/status", f"{base}/api/images/{accepted['id']}"]) as poller:
            for thread in calls:
                thread.start()
            for thread in calls:
                thread.join(timeout=180)
        for path, status, body, seconds in answers:
            print(f"{path}: {status} in {seconds:.2f} s: {body}")
        assert len(answers) == len(calls), answers
        by_path = {path: (status, body, seconds) for path, status, body, seconds in answers}
        # an upload URL is signed locally (account key), so it may be issued while storage is down
        assert by_path["/api/uploads"][0] in (201, 503)
        assert by_path["/api/uploads"][2] < 5
        for path in ("/api/images", f"/api/images/{accepted['id']}/status"):
            status, body, seconds = by_path[path]
            assert status == 503, (path, body)
            error = body["error"]
            assert isinstance(error, dict) and error["code"] == "storage_unavailable"
            assert "retry" in str(error["message"]).lower()
            assert "http://" not in str(error["message"]) and "Errno" not in str(error["message"])
            assert seconds < 5, (path, seconds)
        url, slowest, code = poller.slowest()
        assert code == 200, url
        print(f"slowest concurrent poll during the outage: {slowest:.3f} s ({url})")
        assert slowest < MAX_STALL_S, f"{url} took {slowest:.2f} s during the storage outage"
    finally:
        own.azurite = launcher.start(own.azurite.port, own.location, ROOT)
