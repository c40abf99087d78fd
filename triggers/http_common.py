"""HTTP helpers shared by the API modules: JSON responses, error mapping, off-loop work, absolute URLs and
query parsing.

The Functions worker runs ``async def`` handlers on one event loop, so a handler never makes a blocking call
(storage, records, image decoding) there: it hands that work to ``off_loop``, a bounded thread pool. Error
bodies carry our own messages only; the text of a server-side failure (SDK messages with URLs, paths,
tracebacks) goes to the log.
"""

import asyncio
import functools
import json
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import azure.functions as func

from imagepipe.composition import services
from imagepipe.errors import ImagepipeError, InvalidInputError, TransientServiceError

log = logging.getLogger("imagepipe.api")

F = TypeVar("F", bound=Callable[..., Awaitable[func.HttpResponse]])
P = ParamSpec("P")
T = TypeVar("T")

#: What a client reads for each server-side failure (by code); the detail is in the function logs.
PUBLIC_5XX_MESSAGES = {
    "storage_unavailable": "image storage is unavailable right now; nothing was changed. Retry in a few seconds; "
    "if it persists, tell the operator (the function logs name the failing storage call)",
    "records_unavailable": "the record store is unavailable right now; retry in a few seconds; if it persists, "
    "tell the operator",
    "configuration_error": "the service is misconfigured; tell the operator (the function logs name the setting)",
    "model_unavailable": "the analyzer is unavailable right now; retry later",
    "custom_labels_unavailable": "custom labels are not available in this deployment; tell the operator (the "
    "function logs name the missing part, docs/custom-labels.md the fix)",
}
TRANSIENT_MESSAGE = "a service this API depends on is unavailable right now; retry in a few seconds"
INTERNAL_MESSAGE = "unexpected server error; see the function logs"
DEFAULT_RETRY_AFTER_S = 5


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        mimetype="application/json",
        headers=headers or {},
    )


def error_response(error: ImagepipeError) -> func.HttpResponse:
    """A 4xx carries the error's own message (it names the client's mistake); a 5xx carries ours."""
    if error.http_status < 500:
        return json_response(error.to_json(), error.http_status)
    headers: dict[str, str] = {}
    if isinstance(error, TransientServiceError):
        message = PUBLIC_5XX_MESSAGES.get(error.code, TRANSIENT_MESSAGE)
        headers["Retry-After"] = str(max(1, round(error.retry_after_s or DEFAULT_RETRY_AFTER_S)))
    else:
        message = PUBLIC_5XX_MESSAGES.get(error.code, INTERNAL_MESSAGE)
    return json_response({"error": {"code": error.code, "message": message}}, error.http_status, headers)


def handles_errors(handler: F) -> F:
    """Turn named errors into their status + JSON body, and anything else into a logged 500."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return await handler(*args, **kwargs)
        except ImagepipeError as exc:
            if exc.http_status >= 500:
                log.error("request failed (%s): %s", exc.code, exc.message)
            return error_response(exc)
        except Exception:
            log.exception("unexpected error")
            return json_response({"error": {"code": "internal_error", "message": INTERNAL_MESSAGE}}, 500)

    return wrapper  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------------
# off-loop work
# ---------------------------------------------------------------------------------------------------

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            size = services().settings.http_worker_threads
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="imagepipe-http")
        return _pool


async def off_loop(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking call on the HTTP worker threads (HTTP_WORKER_THREADS) and await its result."""
    loop = asyncio.get_running_loop()
    executor = await loop.run_in_executor(None, _executor) if _pool is None else _pool
    return await loop.run_in_executor(executor, functools.partial(call, *args, **kwargs))


# ---------------------------------------------------------------------------------------------------
# URLs and query parameters
# ---------------------------------------------------------------------------------------------------

_LOCAL_HOST = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$")


def base_url(req: func.HttpRequest | None = None) -> str:
    """Scheme://host of this API as configured: PUBLIC_BASE_URL, else the app's own host name (WEBSITE_HOSTNAME),
    else empty (root-relative links). Never the request's Host header, which any client can forge.

    Blocking on first use (it reads settings); call it off the event loop. ``req`` is accepted for callers
    that pass it and is not read.
    """
    settings = services().settings
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    if settings.website_hostname:
        scheme = "http" if _LOCAL_HOST.match(settings.website_hostname) else "https"
        return f"{scheme}://{settings.website_hostname}"
    return ""


def query_int(req: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidInputError(f"query parameter '{name}' must be an integer, not '{raw[:40]}'") from exc
    if not low <= value <= high:
        raise InvalidInputError(f"query parameter '{name}' must be between {low} and {high}")
    return value


#: an offset whose '+' arrived as a space (an unencoded '+' in a query string means a space)
_SPACED_OFFSET = re.compile(r"(?<=\d) (?=\d{2}(:?\d{2})?$)")


def query_time(req: func.HttpRequest, name: str) -> datetime | None:
    """An ISO 8601 time parameter as an aware UTC datetime (a time without an offset is taken as UTC)."""
    raw = (req.params.get(name) or "").strip()
    if not raw:
        return None
    text = _SPACED_OFFSET.sub("+", raw)
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(
            f"query parameter '{name}' must be an ISO 8601 time such as 2026-01-31T12:00:00Z, not '{raw[:40]}'"
        ) from exc
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def json_object_body(req: func.HttpRequest) -> dict[str, Any]:
    """The request's JSON object body; an empty body is ``{}``, anything else than an object is a 400."""
    if not req.get_body():
        return {}
    try:
        value = req.get_json()
    except ValueError as exc:
        raise InvalidInputError("the body must be a JSON object") from exc
    if not isinstance(value, dict):
        raise InvalidInputError("the body must be a JSON object")
    return value
