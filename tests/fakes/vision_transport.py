"""A fake Azure AI Vision 4.0 Image Analysis endpoint: an azure-core ``HttpTransport`` answering in memory.

It serves ``POST /computervision/imageanalysis:analyze?api-version=2024-02-01&features=...`` with bodies
shaped like the service's (model version ``2023-10-01``, ``metadata``, one ``<feature>Result`` per requested
feature), rejects bytes that are not JPEG/PNG/GIF/BMP/WebP/TIFF with the service's ``InvalidImageFormat``
error, and plays scripted fault sequences (``script([...])``: 429 with ``Retry-After``, 500/503, 401/403
or any error body) so the SDK's retry policy and our error translation can be observed.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.core.utils import CaseInsensitiveDict

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


class FakeVisionTransport(HttpTransport):  # type: ignore[misc]
    """Answers Image Analysis requests; ``script`` queues faults answered before normal results."""

    def __init__(self, service: FakeVisionService | None = None) -> None:
        self.service = service or FakeVisionService()
        self.requests: list[SeenRequest] = []
        self._faults: list[Fault | Exception] = []
        self._lock = threading.Lock()

    def script(self, faults: Iterable[Fault | Exception]) -> None:
        """Answer the next requests with these faults, in order (an exception is raised, as by a transport)."""
        with self._lock:
            self._faults.extend(faults)

    def __enter__(self) -> FakeVisionTransport:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def send(self, request: Any, **kwargs: Any) -> _Response:
        url = urlparse(request.url)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        headers = {k.lower(): v for k, v in request.headers.items()}
        raw = getattr(request, "content", None)
        body = raw if isinstance(raw, bytes) else bytes(raw or b"")
        with self._lock:
            self.requests.append(SeenRequest(request.method, url.path, query, headers, body))
            fault = self._faults.pop(0) if self._faults else None
        if isinstance(fault, Exception):
            raise fault
        if fault is not None:
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return self._json(request, fault.status, fault.body(), extra)
        if request.method != "POST" or url.path != "/computervision/imageanalysis:analyze":
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
