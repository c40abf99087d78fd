"""The small set of named errors the whole app speaks.

Adapters translate SDK errors into these; the HTTP layer maps each to a status code and a JSON body
``{"error": {"code", "message"}}``; activities raise the transient ones (so Durable retries them) and
return the permanent ones as typed failures (so they are not retried).
"""

from __future__ import annotations


class ImagepipeError(Exception):
    """Base class: every error has a stable machine code, an HTTP status and an operator-readable message."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class InvalidInputError(ImagepipeError):
    """The request or the image is malformed (400)."""

    code = "invalid_input"
    http_status = 400


class PayloadTooLargeError(ImagepipeError):
    """The body or the image exceeds a configured limit (413)."""

    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaTypeError(ImagepipeError):
    """The bytes are not an image format we accept (415)."""

    code = "unsupported_media_type"
    http_status = 415


class NotFoundError(ImagepipeError):
    """The image, record or run does not exist (404)."""

    code = "not_found"
    http_status = 404


class ConflictError(ImagepipeError):
    """The request conflicts with the current state, e.g. replaying a running run (409)."""

    code = "conflict"
    http_status = 409


class TransientServiceError(ImagepipeError):
    """A dependency failed in a way that may succeed on retry: 429, 5xx, timeouts, connection resets."""

    code = "service_unavailable"
    http_status = 503

    def __init__(self, message: str, *, code: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_s = retry_after_s


class PermanentImageError(ImagepipeError):
    """The image itself cannot be processed (undecodable, rejected by the vision service). Never retried."""

    code = "invalid_image"
    http_status = 422


class ConfigurationError(ImagepipeError):
    """A required setting is missing or malformed; the message names the setting and how to fix it."""

    code = "configuration_error"
    http_status = 500


class ModelUnavailableError(ImagepipeError):
    """A local model's files are missing or failed to load; reported, never silently skipped."""

    code = "model_unavailable"
    http_status = 503
