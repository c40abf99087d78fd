"""A fake Azure AI Document Intelligence endpoint (API 2024-11-30): an azure-core ``HttpTransport`` answering in memory.

It serves the analyze long-running operation as the service does:

- ``POST /documentintelligence/documentModels/{modelId}:analyze?api-version=2024-11-30[&locale=..&features=queryFields
  &queryFields=A,B]`` with a JSON body ``{"base64Source": ...}`` answers ``202 Accepted``, no body, with
  ``Operation-Location: {endpoint}/documentintelligence/documentModels/{modelId}/analyzeResults/{resultId}``
  (with ``?api-version=``) and ``apim-request-id``; a body that is not an image answers 400 ``InvalidRequest``
  with inner error ``InvalidContent``;
- ``GET`` on that URL answers ``{"status": "running", "createdDateTime", "lastUpdatedDateTime"}`` for the first
  ``running_polls`` polls, then ``"succeeded"`` with ``analyzeResult`` (``apiVersion``, ``modelId``,
  ``stringIndexType``, ``content``, ``pages`` in pixels, ``documents[0]`` with ``docType``, ``boundingRegions``,
  ``fields`` and ``confidence``), or ``"failed"`` with the service's ``error`` when scripted.

``DocumentFieldValue`` bodies carry ``type``, ``content``, ``boundingRegions`` (flat polygons), ``spans``,
``confidence`` and the typed value: ``valueCurrency`` (``amount``, ``currencySymbol``, ``currencyCode``),
``valueDate`` (ISO), ``valueString``. Query fields come back as ``string`` fields named as asked.
``script([...])`` answers the next POSTs with (status, code, inner code, message) faults.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.fakes.in_memory import InMemoryTransport
from tests.fakes.vision_transport import _MAGIC, _Response

JsonDict = dict[str, Any]
API_VERSION = "2024-11-30"
NOW = "2026-12-08T00:00:00Z"


@dataclass
class DocFault:
    status: int
    code: str
    inner: str | None = None
    message: str = "The request is invalid."

    def body(self) -> bytes:
        error: JsonDict = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner, "message": self.message}
        return json.dumps({"error": error}).encode()


@dataclass
class FakeDocumentService:
    """What the fake answers: the value of each field the model finds (name -> (kind, value, content))."""

    fields: dict[str, tuple[str, Any, str]] = field(default_factory=dict)
    running_polls: int = 1
    fail_operation: DocFault | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: JsonDict | None


def _polygon(index: int) -> list[float]:
    y = 40.0 + 40 * index
    return [60.0, y, 420.0, y, 420.0, y + 30, 60.0, y + 30]


def field_value(index: int, kind: str, value: Any, content: str) -> JsonDict:
    """One ``DocumentField`` as the service writes it."""
    body: JsonDict = {
        "type": kind,
        "content": content,
        "boundingRegions": [{"pageNumber": 1, "polygon": _polygon(index)}],
        "confidence": 0.948,
        "spans": [{"offset": 10 * index, "length": len(content)}],
    }
    if kind == "currency":
        body["valueCurrency"] = value
    elif kind == "date":
        body["valueDate"] = value
    else:
        body["valueString"] = value
    return body


class FakeDocumentsTransport(InMemoryTransport):
    def __init__(self, service: FakeDocumentService, endpoint: str) -> None:
        self.service = service
        self.endpoint = endpoint.rstrip("/")
        self.requests: list[Seen] = []
        self._faults: list[DocFault] = []
        self._operations: dict[str, tuple[str, int, list[str]]] = {}  # result id -> (model, polls, query fields)

    def script(self, faults: Iterable[DocFault]) -> None:
        self._faults.extend(faults)

    def send(self, request: Any, **kwargs: Any) -> _Response:
        url = urlparse(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        raw = request.content if request.content is not None else request.data
        body = json.loads(raw) if raw else None
        self.requests.append(Seen(request.method, url.path, query, body))
        headers = {"apim-request-id": str(uuid.uuid4())}
        if query.get("api-version") != API_VERSION:
            return self._json(request, 404, DocFault(404, "404", None, "Resource not found").body())
        if request.method == "POST" and url.path.endswith(":analyze"):
            if self._faults:
                fault = self._faults.pop(0)
                return self._json(request, fault.status, fault.body())
            model = url.path.rsplit("/", 1)[1].removesuffix(":analyze")
            data = base64.b64decode((body or {}).get("base64Source") or "")
            if not data.startswith(_MAGIC):
                fault = DocFault(
                    400, "InvalidRequest", "InvalidContent", "The file is corrupted or format is unsupported."
                )
                return self._json(request, 400, fault.body())
            result_id = str(uuid.uuid4())
            asked = [q for q in query.get("queryFields", "").split(",") if q]
            self._operations[result_id] = (model, 0, asked)
            location = f"{self.endpoint}/documentintelligence/documentModels/{model}/analyzeResults/{result_id}"
            headers["Operation-Location"] = f"{location}?api-version={API_VERSION}"
            return _Response(request, 202, headers, b"")
        if request.method == "GET" and "/analyzeResults/" in url.path:
            result_id = url.path.rsplit("/", 1)[1]
            model, polls, asked = self._operations[result_id]
            self._operations[result_id] = (model, polls + 1, asked)
            status: JsonDict = {"createdDateTime": NOW, "lastUpdatedDateTime": NOW}
            if polls < self.service.running_polls:
                return self._json(request, 200, json.dumps({"status": "running", **status}).encode())
            if self.service.fail_operation is not None:
                error = json.loads(self.service.fail_operation.body())["error"]
                return self._json(request, 200, json.dumps({"status": "failed", **status, "error": error}).encode())
            answer = {"status": "succeeded", **status, "analyzeResult": self.analyze_result(model, asked)}
            return self._json(request, 200, json.dumps(answer).encode())
        return self._json(request, 404, DocFault(404, "404", None, "Resource not found").body())

    def analyze_result(self, model: str, asked: list[str]) -> JsonDict:
        fields = {
            name: field_value(i, kind, value, content)
            for i, (name, (kind, value, content)) in enumerate(self.service.fields.items())
            if not name.startswith("?") or name[1:] in asked
        }
        fields = {name.lstrip("?"): value for name, value in fields.items()}
        content = "\n".join(f["content"] for f in fields.values())
        return {
            "apiVersion": API_VERSION,
            "modelId": model,
            "stringIndexType": "textElements",
            "content": content,
            "pages": [
                {
                    "pageNumber": 1,
                    "angle": 0,
                    "width": 1240,
                    "height": 900,
                    "unit": "pixel",
                    "words": [],
                    "lines": [],
                    "spans": [{"offset": 0, "length": len(content)}],
                }
            ],
            "documents": [
                {
                    "docType": "invoice" if model == "prebuilt-invoice" else "receipt.retailMeal",
                    "boundingRegions": [{"pageNumber": 1, "polygon": [0, 0, 1240, 0, 1240, 900, 0, 900]}],
                    "fields": fields,
                    "confidence": 1,
                    "spans": [{"offset": 0, "length": len(content)}],
                }
            ],
            "contentFormat": "text",
        }

    @staticmethod
    def _json(request: Any, status: int, body: bytes) -> _Response:
        headers = {"Content-Type": "application/json; charset=utf-8", "apim-request-id": str(uuid.uuid4())}
        return _Response(request, status, headers, body)
