"""HTTP helpers shared by the API modules: JSON responses, error mapping, absolute URLs, query parsing."""

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import azure.functions as func

from imagepipe.errors import ImagepipeError, InvalidInputError

log = logging.getLogger("imagepipe.api")

F = TypeVar("F", bound=Callable[..., Awaitable[func.HttpResponse]])


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":"), default=str),
        status_code=status,
        mimetype="application/json",
        headers=headers or {},
    )


def error_response(error: ImagepipeError) -> func.HttpResponse:
    return json_response(error.to_json(), error.http_status)


def handles_errors(handler: F) -> F:
    """Turn named errors into their status + JSON body, and anything else into a logged 500."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return await handler(*args, **kwargs)
        except ImagepipeError as exc:
            if exc.http_status >= 500:
                log.error("request failed: %s", exc.message)
            return error_response(exc)
        except Exception:
            log.exception("unexpected error")
            return json_response(
                {"error": {"code": "internal_error", "message": "unexpected server error; see the function logs"}},
                500,
            )

    return wrapper  # type: ignore[return-value]


def base_url(req: func.HttpRequest) -> str:
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}"


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


def query_time(req: func.HttpRequest, name: str) -> datetime | None:
    raw = req.params.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInputError(f"query parameter '{name}' must be an ISO 8601 time, not '{raw[:40]}'") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)
