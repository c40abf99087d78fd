"""Browser direct upload: the CORS rules of the images account, applied to Azurite as Terraform applies them
to Azure, and the blob service origin a page may send its signed PUT to.

A browser PUTs the image to the SAS URL from ``POST /api/uploads`` with ``x-ms-blob-type``, a
``Content-Type`` and ``x-ms-meta-*`` headers; that is a cross-origin request with a preflight, which the
blob service refuses unless a CORS rule allows the page's origin, the method and those headers. The rule's
methods and headers are data: ``config/cors.json``, which Terraform reads for the images account too
(``load_policy``); the origins are a deployment setting. ``apply_cors`` writes the rules through the real
SDK's ``set_service_properties``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.storage.blob import BlobServiceClient, CorsRule

from imagepipe.errors import ConfigurationError
from imagepipe.settings import Settings


@dataclass(frozen=True)
class CorsPolicy:
    """What a browser's direct upload needs, apart from the origins."""

    allowed_methods: tuple[str, ...]
    allowed_headers: tuple[str, ...]
    exposed_headers: tuple[str, ...]
    max_age_s: int


#: the shared rule file (Terraform's ``main.storage.tf`` reads the same one)
POLICY_FILE = Path(__file__).resolve().parent.parent / "config" / "cors.json"

#: the least a browser needs to PUT through a SAS URL, used where ``POLICY_FILE`` is absent
UPLOAD_POLICY = CorsPolicy(
    allowed_methods=("PUT", "OPTIONS"),
    allowed_headers=("content-type", "x-ms-blob-type", "x-ms-meta-*", "x-ms-version", "x-ms-client-request-id"),
    exposed_headers=("etag", "last-modified", "x-ms-request-id", "x-ms-version"),
    max_age_s=3600,
)

_METHODS = {"DELETE", "GET", "HEAD", "MERGE", "POST", "OPTIONS", "PUT", "PATCH"}


def load_policy(path: Path) -> CorsPolicy:
    """Read ``{"allowedMethods": [...], "allowedHeaders": [...], "exposedHeaders": [...], "maxAgeInSeconds": n}``."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"CORS policy {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigurationError(f"CORS policy {path}: expected a JSON object")

    def strings(key: str) -> tuple[str, ...]:
        value = raw.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigurationError(f"CORS policy {path}: '{key}' must be a non-empty list of strings")
        return tuple(v.strip() for v in value)

    methods = tuple(m.upper() for m in strings("allowedMethods"))
    unknown = sorted(set(methods) - _METHODS)
    if unknown:
        raise ConfigurationError(f"CORS policy {path}: unknown method(s) {', '.join(unknown)}")
    max_age = raw.get("maxAgeInSeconds")
    if not isinstance(max_age, int) or isinstance(max_age, bool) or not 0 <= max_age <= 86400:
        raise ConfigurationError(f"CORS policy {path}: 'maxAgeInSeconds' must be an integer from 0 to 86400")
    return CorsPolicy(methods, strings("allowedHeaders"), strings("exposedHeaders"), max_age)


def local_policy() -> CorsPolicy:
    """The shared rule file when the checkout has it, else ``UPLOAD_POLICY``."""
    return load_policy(POLICY_FILE) if POLICY_FILE.exists() else UPLOAD_POLICY


def check_origin(origin: str) -> str:
    """``scheme://host[:port]`` exactly as a browser sends it in ``Origin``; a wildcard or a path is refused."""
    parts = urlsplit(origin.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or "*" in origin
    ):
        raise ConfigurationError(
            f"CORS origin '{origin[:100]}' must be a scheme://host[:port] origin such as https://ops.example.com"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def cors_rules(origins: Sequence[str], policy: CorsPolicy | None = None) -> list[CorsRule]:
    """One rule for the given origins (none: no rule, so browsers cannot upload directly)."""
    checked = sorted({check_origin(o) for o in origins if o.strip()})
    if not checked:
        return []
    policy = policy or local_policy()
    return [
        CorsRule(
            checked,
            list(policy.allowed_methods),
            allowed_headers=list(policy.allowed_headers),
            exposed_headers=list(policy.exposed_headers),
            max_age_in_seconds=policy.max_age_s,
        )
    ]


def apply_cors(service: BlobServiceClient, rules: Sequence[CorsRule]) -> None:
    """Replace the blob service's CORS rules with ``rules`` (an empty list removes every rule)."""
    service.set_service_properties(cors=list(rules))


def devhost_origins(port: int, extra: str | None = None) -> list[str]:
    """The origins of a local devhost's pages (``127.0.0.1`` and ``localhost``) plus ``extra`` (comma-separated)."""
    own = [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]
    return own + [o.strip() for o in (extra or "").split(",") if o.strip()]


def apply_local_cors(connection_string: str, origins: Sequence[str]) -> list[CorsRule]:
    """Give the blob service of ``connection_string`` (Azurite) the shared rule for ``origins``; return it."""
    rules = cors_rules(origins)
    apply_cors(BlobServiceClient.from_connection_string(connection_string), rules)
    return rules


def blob_origin(settings: Settings) -> str | None:
    """The origin (scheme://host[:port]) of the images blob service, where a browser sends a signed PUT."""
    if settings.images_storage_blob_service_uri:
        parts = urlsplit(settings.images_storage_blob_service_uri)
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None
    raw = settings.images_storage_connection_string or ""
    fields = dict(p.split("=", 1) for p in raw.split(";") if "=" in p)
    if fields.get("UseDevelopmentStorage", "").lower() == "true":
        return "http://127.0.0.1:10000"
    if fields.get("BlobEndpoint"):
        parts = urlsplit(fields["BlobEndpoint"])
        return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None
    if fields.get("AccountName"):
        scheme = fields.get("DefaultEndpointsProtocol", "https")
        return f"{scheme}://{fields['AccountName']}.blob.{fields.get('EndpointSuffix', 'core.windows.net')}"
    return None
