"""A fake Azure AI Vision 4.0 Image Analysis endpoint: an azure-core ``HttpTransport`` answering in memory.

It serves ``POST /computervision/imageanalysis:analyze?api-version=2024-02-01&features=...`` with bodies
shaped like the service's (model version ``2023-10-01``, ``metadata``, one ``<feature>Result`` per requested
feature), rejects bytes that are not JPEG/PNG/GIF/BMP/WebP/TIFF with the service's ``InvalidImageFormat``
error, and plays scripted fault sequences (``script([...])``: 429 with ``Retry-After``, 500/503, 401/403
or any error body) so the SDK's retry policy and our error translation can be observed.

Throttling like the service: ``quota_tps`` answers 429 to a request that would be the (n+1)-th within one
second (every arrival counts, answered or not, as the account's rate limit counts calls), and
``throttle_for(seconds)`` answers 429 to every request for a stretch of time from the next one. A 429 is
what AI Vision sends: ``{"error": {"code": "429", "message": "Requests to the Analyze Operation under
Computer Vision API (...) have exceeded rate limit of your current ComputerVision S1 pricing tier. Please
retry after N second(s)..."}}`` with ``Retry-After: N`` (whole seconds, at least 1) and ``apim-request-id``.
``calls`` records each request's arrival and end (``time.monotonic()``), image digest, status and
Retry-After; ``latency_s`` keeps each request in flight that long so concurrency can be observed.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import CaseInsensitiveDict

from tests.fakes.in_memory import InMemoryTransport

JsonDict = dict[str, Any]
MODEL_VERSION = "2023-10-01"
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


class _Response(HttpResponseImpl):
    """A complete in-memory response of the ``azure.core.rest`` kind (what the SDK's generated code reads)."""

    def __init__(self, request: Any, status: int, headers: dict[str, str], body: bytes) -> None:
        cid = CaseInsensitiveDict(headers)
        super().__init__(
            request=request,
            internal_response=None,
            status_code=status,
            reason="OK" if status == 200 else "Error",
            content_type=cid.get("Content-Type"),
            headers=cid,
            stream_download_generator=None,
        )
        self._content = body

    def read(self) -> bytes:
        return self._content or b""

    def iter_bytes(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.read()

    def iter_raw(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.read()


@dataclass
class Fault:
    """One scripted answer: an HTTP status with the service's error body (and optional Retry-After)."""

    status: int
    code: str = ""
    message: str = "injected fault"
    inner_code: str | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None

    def body(self) -> bytes:
        error: JsonDict = {
            "code": self.code or _DEFAULT_CODES.get(self.status, "InternalServerError"),
            "message": self.message,
        }
        if self.inner_code:
            error["innererror"] = {"code": self.inner_code, "message": self.message}
        return json.dumps({"error": error}).encode()


_DEFAULT_CODES = {
    400: "InvalidRequest",
    401: "401",
    403: "403",
    429: "429",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def invalid_image(inner_code: str, message: str) -> Fault:
    """The 400 the service answers for an image it rejects (code InvalidRequest + an innererror code)."""
    return Fault(400, "InvalidRequest", message, inner_code)


def throttled_body(retry_after_s: int) -> bytes:
    """The body of AI Vision's 429 (the account's rate limit), as the service words it."""
    unit = "second" if retry_after_s == 1 else "seconds"
    message = (
        "Requests to the Analyze Operation under Computer Vision API (2024-02-01) have exceeded rate limit of your "
        f"current ComputerVision S1 pricing tier. Please retry after {retry_after_s} {unit}. Please contact Azure "
        "support service if you would like to further increase the default rate limit."
    )
    return json.dumps({"error": {"code": "429", "message": message}}).encode()


@dataclass
class Call:
    """One request as the fake saw it: when it arrived and ended, which image, what it answered."""

    arrived: float
    image: str
    status: int = 0
    retry_after_s: float | None = None
    ended: float = 0.0


@dataclass
class SeenRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeVisionService:
    """What the fake answers for a valid image; change the fields to script other results."""

    width: int = 640
    height: int = 480
    tags: list[tuple[str, float]] = field(default_factory=lambda: [("cat", 0.99), ("animal", 0.95), ("indoor", 0.8)])
    caption: tuple[str, float] = ("a cat sitting on a sofa", 0.83)
    lines: list[str] = field(default_factory=lambda: ["STOP", "Main Street 12"])


class FakeVisionTransport(InMemoryTransport):
    """Answers Image Analysis requests; ``script`` queues faults answered before normal results."""

    def __init__(
        self, service: FakeVisionService | None = None, *, quota_tps: int | None = None, latency_s: float = 0.0
    ) -> None:
        self.service = service or FakeVisionService()
        self.requests: list[SeenRequest] = []
        self.calls: list[Call] = []
        self.quota_tps = quota_tps
        self.latency_s = latency_s
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: list[Fault | Exception] = []
        self._lock = threading.Lock()
        self._arrivals: list[float] = []
        self._throttle_s: float | None = None
        self._throttle_until: float | None = None

    def throttle_for(self, seconds: float) -> None:
        """Answer 429 to every request for ``seconds``, counted from the next request's arrival."""
        with self._lock:
            self._throttle_s, self._throttle_until = seconds, None

    def _throttled(self, now: float) -> int | None:
        """Retry-After (whole seconds) when the service would refuse a request arriving ``now``, else None."""
        if self._throttle_s is not None:
            if self._throttle_until is None:
                self._throttle_until = now + self._throttle_s
            if now < self._throttle_until:
                return max(1, math.ceil(self._throttle_until - now))
        if self.quota_tps is not None:
            self._arrivals = [t for t in self._arrivals if t > now - 1.0]
            self._arrivals.append(now)
            if len(self._arrivals) > self.quota_tps:
                return max(1, math.ceil(self._arrivals[-self.quota_tps - 1] + 1.0 - now))
        return None

    def script(self, faults: Iterable[Fault | Exception]) -> None:
        """Answer the next requests with these faults, in order (an exception is raised, as by a transport)."""
        with self._lock:
            self._faults.extend(faults)

    def send(self, request: Any, **kwargs: Any) -> _Response:
        url = urlparse(request.url)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = getattr(request, "content", None)
        body = raw if isinstance(raw, bytes) else bytes(raw or b"")
        call = Call(time.monotonic(), hashlib.sha256(body).hexdigest()[:16])
        with self._lock:
            self.requests.append(SeenRequest(request.method, url.path, query, headers, body))
            self.calls.append(call)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            fault = self._faults.pop(0) if self._faults else None
            throttled = None if fault is not None else self._throttled(call.arrived)
        try:
            if self.latency_s:
                time.sleep(self.latency_s)
            response = self._answer(request, url.path, query, headers, body, fault, throttled)
        finally:
            with self._lock:
                self.in_flight -= 1
                call.ended = time.monotonic()
        call.status = response.status_code
        retry_after = response.headers.get("Retry-After")
        call.retry_after_s = float(retry_after) if retry_after else None
        return response

    def _answer(
        self,
        request: Any,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        fault: Fault | Exception | None,
        throttled: int | None,
    ) -> _Response:
        if isinstance(fault, Exception):
            raise fault
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            if fault.retry_after_ms is not None:
                extra["retry-after-ms"] = fault.retry_after_ms
            return self._json(request, fault.status, fault.body(), extra)
        if throttled is not None:
            return self._json(request, 429, throttled_body(throttled), {"Retry-After": str(throttled)})
        if request.method != "POST" or path != "/computervision/imageanalysis:analyze":
            return self._json(request, 404, Fault(404, "404", "Resource not found").body())
        if not headers.get("authorization", "").startswith("Bearer "):
            return self._json(request, 401, Fault(401, "401", "Access denied due to invalid subscription key").body())
        if query.get("api-version") not in ("2023-10-01", "2024-02-01"):
            return self._json(request, 400, Fault(400, "InvalidRequest", "unsupported api-version").body())
        features = [f for f in query.get("features", "").split(",") if f]
        if not features:
            return self._json(request, 400, invalid_image("InvalidParameter", "features are required").body())
        if not body.startswith(_MAGIC):
            fault = invalid_image("InvalidImageFormat", "Input data is not a valid image.")
            return self._json(request, 400, fault.body())
        return self._json(request, 200, json.dumps(self._result(features)).encode())

    # -- result shapes ------------------------------------------------------------------------------

    def _result(self, features: list[str]) -> JsonDict:
        s = self.service
        result: JsonDict = {"modelVersion": MODEL_VERSION, "metadata": {"width": s.width, "height": s.height}}
        box = {"x": 10, "y": 20, "w": 200, "h": 150}
        for feature in features:
            key = feature.lower()
            if key == "tags":
                result["tagsResult"] = {"values": [{"name": n, "confidence": c} for n, c in s.tags]}
            elif key == "caption":
                result["captionResult"] = {"text": s.caption[0], "confidence": s.caption[1]}
            elif key == "densecaptions":
                result["denseCaptionsResult"] = {
                    "values": [
                        {
                            "text": s.caption[0],
                            "confidence": s.caption[1],
                            "boundingBox": {"x": 0, "y": 0, "w": s.width, "h": s.height},
                        },
                        {"text": "a cat", "confidence": 0.7, "boundingBox": box},
                    ]
                }
            elif key == "objects":
                result["objectsResult"] = {
                    "values": [{"boundingBox": box, "tags": [{"name": "cat", "confidence": 0.9}]}]
                }
            elif key == "people":
                result["peopleResult"] = {"values": [{"boundingBox": box, "confidence": 0.92}]}
            elif key == "smartcrops":
                result["smartCropsResult"] = {
                    "values": [{"aspectRatio": 1.33, "boundingBox": {"x": 0, "y": 0, "w": 640, "h": 480}}]
                }
            elif key == "read":
                result["readResult"] = {"blocks": [{"lines": [self._line(i, text) for i, text in enumerate(s.lines)]}]}
        return result

    @staticmethod
    def _line(index: int, text: str) -> JsonDict:
        y = 30 + 40 * index
        words = []
        x = 10
        for word in text.split():
            w = 12 * len(word)
            words.append(
                {
                    "text": word,
                    "boundingPolygon": [
                        {"x": x, "y": y},
                        {"x": x + w, "y": y},
                        {"x": x + w, "y": y + 30},
                        {"x": x, "y": y + 30},
                    ],
                    "confidence": 0.98,
                }
            )
            x += w + 10
        polygon = [{"x": 10, "y": y}, {"x": x, "y": y}, {"x": x, "y": y + 30}, {"x": 10, "y": y + 30}]
        return {"text": text, "boundingPolygon": polygon, "words": words}

    @staticmethod
    def _json(request: Any, status: int, body: bytes, extra: dict[str, str] | None = None) -> _Response:
        headers = {"Content-Type": "application/json; charset=utf-8", "apim-request-id": str(uuid.uuid4())} | (
            extra or {}
        )
        return _Response(request, status, headers, body)
