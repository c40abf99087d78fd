"""Vision analyzer over Azure AI Vision 4.0 Image Analysis (Azure mode), authenticated with a token credential.

Requests go through the real ``ImageAnalysisClient`` (pinned to ``api-version=2024-02-01``): the request's feature
names (the REST names of ``imagepipe.ports.VISUAL_FEATURES``) become ``VisualFeatures``, and the result is the
service's own JSON (``result.as_dict()`` keeps the REST names: ``captionResult``, ``tagsResult``,
``readResult``, ``metadata``, ``modelVersion`` ...). Nothing is added: our extras (faces, barcodes, colors ...)
need local models and are absent here, never invented.

The client's own retry policy is kept small (2 retries of 429/500/503/504, honouring ``Retry-After``)
because the orchestration retries the activity with its own back-off; azure-core does not retry a POST after
a connection or read error, so those surface at once as ``TransientServiceError``. Errors become
``imagepipe.errors``: 429, 5xx, timeouts and connection failures -> ``TransientServiceError`` (with the
service's ``Retry-After``); a 400 naming a rejected image (``InvalidImageFormat``, ``InvalidImageSize`` ...)
-> ``PermanentImageError`` with the service's message; 401/403 -> ``ConfigurationError`` naming the
``Cognitive Services User`` role.
"""

from __future__ import annotations

from typing import Any

from azure.ai.vision.imageanalysis import ImageAnalysisClient
from azure.ai.vision.imageanalysis.models import VisualFeatures
from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from imagepipe.errors import (
    ConfigurationError,
    ImagepipeError,
    InvalidInputError,
    PermanentImageError,
    TransientServiceError,
)
from imagepipe.ports import VISUAL_FEATURES, AnalysisRequest, JsonDict

#: Inner error codes of a 400 that mean "this image cannot be analyzed" (never worth a retry).
IMAGE_ERROR_CODES = frozenset(
    {
        "InvalidImageFormat",
        "InvalidImageSize",
        "InvalidImageDimension",
        "InvalidImageUrl",
        "NotSupportedImage",
        "InvalidImage",
    }
)
_ROLE = "Cognitive Services User"
#: The GA REST version we call (the SDK 1.0.0 default is 2023-10-01; the result schema is the same).
API_VERSION = "2024-02-01"
_FEATURES = {name.lower(): VisualFeatures(name) for name in VISUAL_FEATURES}


def _error_codes(exc: HttpResponseError) -> tuple[str, str, str]:
    """(code, inner code, message) of a service error body ``{"error": {"code", "message", "innererror"}}``."""
    error = exc.error
    code = getattr(error, "code", None) or ""
    message = getattr(error, "message", None) or exc.message or ""
    inner = getattr(error, "innererror", None) or {}
    inner_code = inner.get("code", "") if isinstance(inner, dict) else ""
    if isinstance(inner, dict) and inner.get("message"):
        message = str(inner["message"])
    return str(code), str(inner_code), str(message)


def _retry_after(exc: HttpResponseError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if headers.get(name):
            try:
                return float(headers[name]) / 1000
            except ValueError:
                pass
    value = headers.get("Retry-After")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def translate_vision_error(exc: Exception) -> ImagepipeError:
    """The ``imagepipe.errors`` equivalent of an Image Analysis SDK exception."""
    if isinstance(exc, HttpResponseError) and exc.status_code is not None:
        status = exc.status_code
        code, inner_code, message = _error_codes(exc)
        if status == 429 or status >= 500 or status == 408:
            return TransientServiceError(
                f"Azure AI Vision answered {status} ({code or 'no code'}); retry later",
                code="vision_unavailable",
                retry_after_s=_retry_after(exc),
            )
        if status in (401, 403):
            return ConfigurationError(
                f"Azure AI Vision refused the identity ({status}: {message}). Grant it the '{_ROLE}' role on the "
                "Azure AI services account and check VISION__endpoint.",
                code="vision_forbidden",
            )
        if status == 400 and (inner_code in IMAGE_ERROR_CODES or code in IMAGE_ERROR_CODES):
            return PermanentImageError(
                f"Azure AI Vision rejected the image: {message}", code=(inner_code or code).lower()
            )
        return ImagepipeError(
            f"Azure AI Vision answered {status} ({code}/{inner_code}): {message}", code="vision_error"
        )
    if isinstance(exc, ClientAuthenticationError):
        return ConfigurationError(
            f"could not get a token for Azure AI Vision ({exc.message}); check the managed identity "
            f"(AZURE_CLIENT_ID) and its '{_ROLE}' role",
            code="vision_forbidden",
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, AzureError)):
        return TransientServiceError(
            f"Azure AI Vision did not answer ({type(exc).__name__}: {exc})", code="vision_unavailable"
        )
    return ImagepipeError(f"Azure AI Vision call failed: {exc}")


class AzureVisionAnalyzer:
    """``imagepipe.ports.VisionAnalyzer`` over one Azure AI Vision endpoint (one client per process)."""

    provider = "azure"

    def __init__(
        self,
        endpoint: str,
        credential: TokenCredential,
        *,
        timeout_s: float = 30,
        transport: Any = None,
        **client_kwargs: Any,
    ) -> None:
        if not endpoint.startswith("https://"):
            raise ConfigurationError(
                f"VISION__endpoint must be https://<name>.cognitiveservices.azure.com, got '{endpoint}'"
            )
        kwargs: dict[str, Any] = {"retry_total": 2, "api_version": API_VERSION} | client_kwargs
        if transport is not None:
            kwargs["transport"] = transport
        self.timeout_s = timeout_s
        self._client = ImageAnalysisClient(endpoint=endpoint.rstrip("/"), credential=credential, **kwargs)

    def analyze(self, image: bytes, request: AnalysisRequest) -> JsonDict:
        features = []
        for name in request.features:
            feature = _FEATURES.get(name.lower())
            if feature is None:
                raise InvalidInputError(
                    f"'{name}' is not an Azure AI Vision feature (one of {', '.join(VISUAL_FEATURES)})"
                )
            if feature not in features:
                features.append(feature)
        if not features:
            raise InvalidInputError("an analysis needs at least one visual feature")
        return self._analyze(image, features, request.language)

    def read_text(self, image: bytes, request: AnalysisRequest) -> JsonDict:
        result = self._analyze(image, [VisualFeatures.READ], request.language)
        return {"readResult": result.get("readResult") or {"blocks": []}, "modelVersion": result.get("modelVersion")}

    def _analyze(self, image: bytes, features: list[VisualFeatures], language: str) -> JsonDict:
        try:
            result = self._client.analyze(
                image_data=image,
                visual_features=features,
                language=language or None,
                connection_timeout=min(10.0, self.timeout_s),
                read_timeout=self.timeout_s,
            )
        except AzureError as exc:
            raise translate_vision_error(exc) from exc
        return dict(result.as_dict())

    def close(self) -> None:
        self._client.close()
