"""Document fields through Azure AI Document Intelligence (v4, API 2024-11-30), authenticated with a token credential.

The real ``DocumentIntelligenceClient`` (package ``azure-ai-documentintelligence``) analyzes the image with the
profile's prebuilt model (``prebuilt-invoice`` or ``prebuilt-receipt``) and asks for our insurance fields as query
fields (``features=queryFields``; ``ClaimNumber``, ``PolicyNumber`` ...), so one call answers both the invoice
and the insurance fields. The call is a long-running operation: ``POST .../documentModels/{model}:analyze``
answers 202 with ``Operation-Location``; the SDK's poller GETs it until ``status`` is ``succeeded`` (or
``failed``). ``imagepipe.documents.azure_mapping`` turns the ``analyzeResult`` into our schema.

This is also the path off the AI Vision 3.2 Read API (retiring): Document Intelligence's read/layout and prebuilt
models are its successor for documents (docs/document-fields.md, "Migration").

Errors become ``imagepipe.errors``: 429, 5xx, timeouts and connection failures -> ``TransientServiceError``; a 400
or a failed operation naming the content (``InvalidContent``, ``UnsupportedContent``, ``InvalidContentLength``
...) -> ``PermanentImageError``; 401/403 -> ``ConfigurationError`` naming the ``Cognitive Services User`` role.
"""

from __future__ import annotations

import json
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from imagepipe.documents.azure_mapping import fields_from_analyze_result
from imagepipe.documents.schema import QUERY_FIELDS
from imagepipe.errors import ConfigurationError, ImagepipeError, PermanentImageError, TransientServiceError
from imagepipe.ports import FieldRequest, JsonDict

API_VERSION = "2024-11-30"
_ROLE = "Cognitive Services User"
#: Error codes (outer or inner) that mean "this image cannot be analyzed": never worth a retry.
CONTENT_ERROR_CODES = frozenset(
    {"InvalidContent", "InvalidContentLength", "UnsupportedContent", "InvalidImage", "ContentSourceNotAccessible"}
)


def _body_error(exc: HttpResponseError) -> dict[str, Any]:
    """The ``error`` object of the response body (a failed operation's poll answers 200 with one)."""
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else None
    except (ValueError, AttributeError):
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _codes(exc: HttpResponseError) -> tuple[str, str, str]:
    error = getattr(exc, "error", None)
    raw = _body_error(exc)
    code = str(getattr(error, "code", "") or raw.get("code") or "")
    message = str(getattr(error, "message", "") or raw.get("message") or exc.message or exc)
    inner = getattr(error, "innererror", None) or getattr(error, "inner_error", None) or raw.get("innererror")
    inner_code = str(getattr(inner, "code", "") or (inner.get("code") if isinstance(inner, dict) else "") or "")
    return code, inner_code, message


def translate_documents_error(exc: Exception) -> ImagepipeError:
    """The ``imagepipe.errors`` equivalent of a Document Intelligence SDK exception."""
    if isinstance(exc, HttpResponseError) and exc.status_code is not None and exc.status_code >= 400:
        status = exc.status_code
        code, inner_code, message = _codes(exc)
        if status == 429 or status >= 500 or status == 408:
            return TransientServiceError(
                f"Azure AI Document Intelligence answered {status} ({code or 'no code'}); retry later",
                code="documents_unavailable",
            )
        if status in (401, 403):
            return ConfigurationError(
                f"Azure AI Document Intelligence refused the identity ({status}: {message}). Grant it the "
                f"'{_ROLE}' role on the Document Intelligence account and check DOCUMENT_INTELLIGENCE__endpoint.",
                code="documents_forbidden",
            )
        if inner_code in CONTENT_ERROR_CODES or code in CONTENT_ERROR_CODES:
            return PermanentImageError(
                f"Azure AI Document Intelligence could not read the image: {message}",
                code=(inner_code or code).lower(),
            )
        return ImagepipeError(
            f"Azure AI Document Intelligence answered {status} ({code}/{inner_code}): {message}",
            code="documents_error",
        )
    if isinstance(exc, HttpResponseError):  # a failed operation (status "failed" in the polled answer)
        code, inner_code, message = _codes(exc)
        if inner_code in CONTENT_ERROR_CODES or code in CONTENT_ERROR_CODES:
            return PermanentImageError(f"Azure AI Document Intelligence could not read the image: {message}")
        return TransientServiceError(f"the Document Intelligence operation failed ({code}): {message}")
    if isinstance(exc, ClientAuthenticationError):
        return ConfigurationError(
            f"could not get a token for Azure AI Document Intelligence ({exc.message}); check the managed identity "
            f"(AZURE_CLIENT_ID) and its '{_ROLE}' role",
            code="documents_forbidden",
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, AzureError)):
        return TransientServiceError(
            f"Azure AI Document Intelligence did not answer ({type(exc).__name__}: {exc})",
            code="documents_unavailable",
        )
    return ImagepipeError(f"Azure AI Document Intelligence call failed: {exc}")


class AzureDocumentFieldExtractor:
    """``imagepipe.ports.DocumentFieldExtractor`` over one Document Intelligence endpoint (one client per process)."""

    provider = "azure-document-intelligence"

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        *,
        timeout_s: float = 60.0,
        polling_interval_s: float = 1.0,
        query_fields: tuple[str, ...] = QUERY_FIELDS,
        transport: Any = None,
        **client_kwargs: Any,
    ) -> None:
        if not endpoint.startswith("https://"):
            raise ConfigurationError(
                f"DOCUMENT_INTELLIGENCE__endpoint must be https://<name>.cognitiveservices.azure.com, got '{endpoint}'"
            )
        try:
            from azure.ai.documentintelligence import DocumentIntelligenceClient
        except ImportError as exc:
            raise ConfigurationError(
                "DOCUMENT_FIELDS_PROVIDER=azure needs the azure-ai-documentintelligence package (1.0.2), which is "
                f"not installed ({exc}); install the app's locked requirements"
            ) from exc
        self.timeout_s = timeout_s
        self.query_fields = list(query_fields)
        kwargs: dict[str, Any] = {"api_version": API_VERSION, "polling_interval": polling_interval_s} | client_kwargs
        if transport is not None:
            kwargs["transport"] = transport
        self._client = DocumentIntelligenceClient(endpoint=endpoint.rstrip("/"), credential=credential, **kwargs)

    def extract(self, image: bytes, read_result: JsonDict, request: FieldRequest) -> JsonDict:
        from azure.ai.documentintelligence.models import AnalyzeDocumentRequest, DocumentAnalysisFeature

        try:
            poller = self._client.begin_analyze_document(
                request.model,
                AnalyzeDocumentRequest(bytes_source=image),
                locale=request.locale,
                features=[DocumentAnalysisFeature.QUERY_FIELDS] if self.query_fields else None,
                query_fields=self.query_fields or None,
                connection_timeout=min(10.0, self.timeout_s),
                read_timeout=self.timeout_s,
            )
            result = poller.result(timeout=self.timeout_s)
        except AzureError as exc:
            raise translate_documents_error(exc) from exc
        return fields_from_analyze_result(dict(result.as_dict()), request.locale)

    def close(self) -> None:
        self._client.close()
