"""Vision analyzer over Azure AI Vision 4.0 Image Analysis (Azure mode), authenticated with a token credential.

Requests go through the real ``ImageAnalysisClient`` (pinned to ``api-version=2024-02-01``): the request's feature
names (the REST names of ``imagepipe.ports.VISUAL_FEATURES``) become ``VisualFeatures``, and the result is the
service's own JSON (``result.as_dict()`` keeps the REST names: ``captionResult``, ``tagsResult``,
``readResult``, ``metadata``, ``modelVersion`` ...). Nothing is added: our extras (faces, barcodes, colors ...)
need local models and are absent here, never invented.

Throttling (the account's quota is shared by every instance of the app: S1 is 20 calls/s):

* ``VisionRetryPolicy`` retries 429, 408, 500, 502, 503 and 504 on the POST, waiting what the service asks
  (``Retry-After``, ``retry-after-ms``, ``x-ms-retry-after-ms``) or an exponential back-off, within a total
  wait budget per call. azure-core's own ``RetryPolicy`` retries a POST only on 500/503/504 or when a
  ``Retry-After`` header is present, ignores ``retry-after-ms`` there, and has no budget: it would sleep
  whatever the service says inside the activity.
* ``VisionThrottle`` (one per process, shared by every thread that runs activities) caps the calls in flight
  (``VISION_MAX_CONCURRENCY``) and spaces them (``VISION_RATE_LIMIT_PER_SECOND``), per HTTP attempt,
  retries included; the deployment sets both so that instances x limit stays within the quota.
* When the budget is spent (a long ``Retry-After``, or the local throttle saturated), the call raises
  ``TransientServiceError`` with the wait the service asked for, and the orchestration's retry takes over.

azure-core does not retry a POST after a connection or read error, so those surface at once as
``TransientServiceError``. Errors become ``imagepipe.errors``: 429, 5xx, timeouts and connection failures ->
``TransientServiceError`` (with the service's ``Retry-After``); a 400 naming a rejected image
(``InvalidImageFormat``, ``InvalidImageSize`` ...) -> ``PermanentImageError`` with the service's message;
401/403 -> ``ConfigurationError`` naming the ``Cognitive Services User`` role.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy, RetryPolicy

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
#: Statuses worth another attempt of the (side-effect free) analyze POST.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
#: Attempts after the first within one call (the wait budget usually ends a throttled call sooner).
RETRIES = 4
#: Seconds one call may spend waiting, on Retry-After, back-off and the local throttle together.
MAX_WAIT_S = 30.0
#: Pipeline-context key of a call's deadline (``time.monotonic()``), set by the retry policy.
DEADLINE_KEY = "imagepipe_vision_deadline"


# ---------------------------------------------------------------------------------------------------
# throttling: a process-wide limiter and a retry policy that honours Retry-After within a budget
# ---------------------------------------------------------------------------------------------------


class VisionThrottle:
    """At most ``max_concurrency`` calls in flight and ``rate_per_s`` call starts per second (0: no rate cap).

    Thread-safe: activities run in worker threads. Starts are spaced evenly (``1 / rate_per_s`` apart, no
    burst), so any one-second window holds at most ``rate_per_s`` starts. ``slot(deadline)`` raises
    ``TransientServiceError`` instead of waiting past ``deadline`` (a ``time.monotonic()`` value).
    """

    def __init__(
        self,
        max_concurrency: int,
        rate_per_s: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_concurrency < 1:
            raise ConfigurationError(f"VISION_MAX_CONCURRENCY must be at least 1, got {max_concurrency}")
        if rate_per_s < 0:
            raise ConfigurationError(f"VISION_RATE_LIMIT_PER_SECOND must not be negative, got {rate_per_s}")
        self.max_concurrency = max_concurrency
        self.rate_per_s = rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self._next_start = 0.0

    @contextmanager
    def slot(self, deadline: float) -> Iterator[None]:
        """Hold one of the concurrent slots, starting no earlier than the rate allows."""
        if not self._slots.acquire(timeout=max(0.0, deadline - self._clock())):
            raise TransientServiceError(
                f"all {self.max_concurrency} Azure AI Vision call slots of this instance stayed busy "
                "(VISION_MAX_CONCURRENCY); retry later",
                code="vision_throttled",
            )
        try:
            self._wait_for_start(deadline)
            yield
        finally:
            self._slots.release()

    def _wait_for_start(self, deadline: float) -> None:
        if self.rate_per_s <= 0:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            if start > deadline:
                raise TransientServiceError(
                    f"this instance's Azure AI Vision rate ({self.rate_per_s:g}/s, VISION_RATE_LIMIT_PER_SECOND) "
                    "is booked beyond the wait budget; retry later",
                    code="vision_throttled",
                    retry_after_s=round(start - now, 3),
                )
            self._next_start = start + 1.0 / self.rate_per_s
        if start > now:
            self._sleep(start - now)


class ThrottlePolicy(HTTPPolicy):  # type: ignore[type-arg]
    """Per-attempt pipeline policy (after the retry policy): every HTTP attempt passes the throttle."""

    def __init__(self, throttle: VisionThrottle, max_wait_s: float) -> None:
        super().__init__()
        self.throttle = throttle
        self.max_wait_s = max_wait_s

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        deadline = request.context.get(DEADLINE_KEY) or time.monotonic() + self.max_wait_s
        with self.throttle.slot(float(deadline)):
            return self.next.send(request)


class VisionRetryPolicy(RetryPolicy):  # type: ignore[type-arg]
    """Retries the analyze POST on ``RETRY_STATUSES``, waiting what the service asks, within ``max_wait_s``.

    The budget is one deadline per call (``max_wait_s`` after it starts), kept in the pipeline context so the
    throttle policy after it waits no longer either. A wait that would overrun the deadline is not taken:
    the throttled response surfaces (-> a ``TransientServiceError`` carrying the service's Retry-After) and
    the orchestration retries later.
    A little jitter (<= 10 %, <= 1 s) on top of the asked wait keeps instances from retrying in lockstep.
    """

    def __init__(self, *, retries: int = RETRIES, max_wait_s: float = MAX_WAIT_S, **kwargs: Any) -> None:
        kwargs.setdefault("retry_backoff_factor", 0.8)
        kwargs.setdefault("retry_backoff_max", 10)
        super().__init__(retry_total=retries, retry_status=retries, **kwargs)
        self.max_wait_s = max_wait_s

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        request.context[DEADLINE_KEY] = time.monotonic() + self.max_wait_s
        return super().send(request)

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        settings["next_wait"] = 0.0
        return settings

    def is_retry(self, settings: dict[str, Any], response: PipelineResponse[Any, Any]) -> bool:
        if response.http_response.status_code not in RETRY_STATUSES or settings["total"] <= 0:
            return False
        asked = self.get_retry_after(response)
        if asked is None:  # the back-off of the attempt after this one (history grows in increment())
            wait = self.get_backoff_time({**settings, "history": [*settings["history"], None]})
        else:
            wait = asked + min(1.0, 0.1 * asked) * random.random()
        deadline = response.context.get(DEADLINE_KEY) or time.monotonic() + self.max_wait_s
        if time.monotonic() + wait > deadline:
            return False
        settings["next_wait"] = wait
        return True

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        wait = float(settings.get("next_wait") or 0.0)
        settings["next_wait"] = 0.0
        if wait > 0:
            transport.sleep(wait)


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
                code="vision_rate_limited" if status == 429 else "vision_unavailable",  # 429: the quota entity pauses
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
        max_concurrency: int = 8,
        rate_limit_per_s: float = 0.0,
        max_wait_s: float = MAX_WAIT_S,
        retries: int = RETRIES,
        retry_backoff_factor: float = 0.8,
        throttle: VisionThrottle | None = None,
        transport: Any = None,
        **client_kwargs: Any,
    ) -> None:
        if not endpoint.startswith("https://"):
            raise ConfigurationError(
                f"VISION__endpoint must be https://<name>.cognitiveservices.azure.com, got '{endpoint}'"
            )
        self.timeout_s = timeout_s
        self.max_wait_s = max_wait_s
        self.throttle = throttle or VisionThrottle(max_concurrency, rate_limit_per_s)
        kwargs: dict[str, Any] = {
            "api_version": API_VERSION,
            "retry_policy": VisionRetryPolicy(
                retries=retries, max_wait_s=max_wait_s, retry_backoff_factor=retry_backoff_factor
            ),
            "per_retry_policies": [ThrottlePolicy(self.throttle, max_wait_s)],
        } | client_kwargs
        if transport is not None:
            kwargs["transport"] = transport
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
